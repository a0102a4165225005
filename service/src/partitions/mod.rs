//! Day partitions of the MySQL event tables.
//!
//! Both tables are RANGE COLUMNS partitioned on `occurred_at`. A day partition is named
//! `pYYYYMMDD` after the day it contains and bounded by `VALUES LESS THAN` the next day;
//! the catch-all `p_future` contains everything later. New days are split off the
//! catch-all with `REORGANIZE PARTITION`, which also moves rows that arrived early.

pub mod maintain;

use chrono::{Days, NaiveDate};
use sqlx::MySqlPool;

/// The partitioned tables.
pub const TABLES: [&str; 2] = ["oplog_events", "oplog_event_details"];

/// Name of the catch-all partition.
pub const CATCH_ALL: &str = "p_future";

/// One partition as `information_schema.PARTITIONS` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Partition name.
    pub name: String,
    /// Exclusive upper bound; `None` for the catch-all (`MAXVALUE`).
    pub less_than: Option<NaiveDate>,
}

/// Errors of partition maintenance.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// A statement failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The plan would exceed the partitions a table may have.
    #[error("table {table} would have {count} partitions, over the limit of 8192; lower --ahead or --retention")]
    TooMany {
        /// Table name.
        table: String,
        /// Partitions it would have.
        count: usize,
    },
    /// Another run holds the maintenance lock.
    #[error("another `oplog partitions maintain` holds the lock {0:?}; wait for it to finish")]
    Locked(String),
    /// A statement kept waiting for a metadata lock, for example behind a long
    /// transaction, and the retries ran out.
    #[error("gave up on {statement:?} after {attempts} attempts: a metadata lock was held each time (a long-running transaction on the table?): {last_error}")]
    GaveUp {
        /// The statement.
        statement: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last_error: String,
    },
    /// The table is not partitioned the way oplog creates it.
    #[error("table {table} has an unexpected partition {name:?} bounded by {bound:?}; run `oplog migrate` on an empty database or fix the partitions by hand")]
    Unexpected {
        /// Table name.
        table: String,
        /// Partition name.
        name: String,
        /// The bound as the server prints it.
        bound: String,
    },
}

/// Lists the partitions of `table` in the current database, in bound order.
pub async fn list(pool: &MySqlPool, table: &str) -> Result<Vec<Partition>, PartitionError> {
    let mut conn = pool.acquire().await?;
    list_on(&mut conn, table).await
}

/// [`list`] on one connection.
pub async fn list_on(
    conn: &mut sqlx::MySqlConnection,
    table: &str,
) -> Result<Vec<Partition>, PartitionError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(PARTITION_NAME AS CHAR), CAST(PARTITION_DESCRIPTION AS CHAR) \
         FROM information_schema.PARTITIONS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND PARTITION_NAME IS NOT NULL \
         ORDER BY PARTITION_ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(name, bound)| {
            let less_than = parse_bound(&bound).ok_or_else(|| PartitionError::Unexpected {
                table: table.to_owned(),
                name: name.clone(),
                bound: bound.clone(),
            })?;
            Ok(Partition { name, less_than })
        })
        .collect()
}

/// Parses `'2026-12-05 00:00:00'` (MySQL) or `'2026-12-05 00:00:00.000000'` into a date,
/// and `MAXVALUE` into `None`. Returns `Some(None)` for the catch-all.
fn parse_bound(bound: &str) -> Option<Option<NaiveDate>> {
    let bound = bound.trim().trim_matches('\'');
    if bound == "MAXVALUE" {
        return Some(None);
    }
    let date = bound.get(..10)?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok().map(Some)
}

/// Returns the name of the partition of `day`.
pub fn partition_name(day: NaiveDate) -> String {
    day.format("p%Y%m%d").to_string()
}

/// Days that need a partition so that every day up to `today + ahead_days` has one,
/// given the existing partitions of a table. Days between the last existing bound and
/// today are created too, so that each partition contains exactly the day it is named
/// after, but none before `earliest` (days already past the retention). With only the
/// catch-all, the first partition is today's.
pub fn missing_days(
    existing: &[Partition],
    today: NaiveDate,
    ahead_days: u32,
    earliest: Option<NaiveDate>,
) -> Vec<NaiveDate> {
    let Some(last) = today.checked_add_days(Days::new(u64::from(ahead_days))) else {
        return Vec::new();
    };
    let mut day = existing
        .iter()
        .filter_map(|p| p.less_than)
        .max()
        .unwrap_or(today);
    if let Some(earliest) = earliest {
        day = day.max(earliest);
    }
    let mut days = Vec::new();
    while day <= last {
        days.push(day);
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    days
}

/// Builds the statement that splits `days` off the catch-all partition of `table`.
pub fn reorganize_statement(table: &str, days: &[NaiveDate]) -> String {
    let mut parts: Vec<String> = days
        .iter()
        .map(|day| {
            let next = *day + Days::new(1);
            format!(
                "PARTITION {} VALUES LESS THAN ('{}')",
                partition_name(*day),
                next.format("%Y-%m-%d")
            )
        })
        .collect();
    parts.push(format!("PARTITION {CATCH_ALL} VALUES LESS THAN (MAXVALUE)"));
    format!(
        "ALTER TABLE {table} REORGANIZE PARTITION {CATCH_ALL} INTO ({})",
        parts.join(", ")
    )
}

/// Creates the missing day partitions up to `today + ahead_days` in both tables, and
/// returns the days created per table.
pub async fn create_ahead(
    pool: &MySqlPool,
    today: NaiveDate,
    ahead_days: u32,
) -> Result<Vec<(&'static str, Vec<NaiveDate>)>, PartitionError> {
    let mut created = Vec::new();
    for table in TABLES {
        let existing = list(pool, table).await?;
        let days = missing_days(&existing, today, ahead_days, None);
        if !days.is_empty() {
            sqlx::raw_sql(&reorganize_statement(table, &days))
                .execute(pool)
                .await?;
            tracing::info!(table, first = %days[0], count = days.len(), "created day partitions");
        }
        created.push((table, days));
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn bounds_of_both_servers_parse() {
        assert_eq!(
            parse_bound("'2026-12-05 00:00:00'"),
            Some(Some(date("2026-12-05")))
        );
        assert_eq!(
            parse_bound("'2026-12-05 00:00:00.000000'"),
            Some(Some(date("2026-12-05")))
        );
        assert_eq!(parse_bound("MAXVALUE"), Some(None));
        assert_eq!(parse_bound("42"), None);
    }

    #[test]
    fn missing_days_start_after_the_last_bound() {
        let existing = vec![
            Partition {
                name: "p20261204".into(),
                less_than: Some(date("2026-12-05")),
            },
            Partition {
                name: CATCH_ALL.into(),
                less_than: None,
            },
        ];
        let days = missing_days(&existing, date("2026-12-04"), 2, None);
        assert_eq!(days, vec![date("2026-12-05"), date("2026-12-06")]);
        assert!(missing_days(&existing, date("2026-12-04"), 0, None).is_empty());
    }

    #[test]
    fn missing_days_fill_the_gap_up_to_today() {
        let existing = vec![
            Partition {
                name: "p20261201".into(),
                less_than: Some(date("2026-12-02")),
            },
            Partition {
                name: CATCH_ALL.into(),
                less_than: None,
            },
        ];
        let days = missing_days(&existing, date("2026-12-04"), 1, None);
        assert_eq!(
            days,
            vec![
                date("2026-12-02"),
                date("2026-12-03"),
                date("2026-12-04"),
                date("2026-12-05")
            ]
        );
    }

    #[test]
    fn missing_days_skip_days_past_the_retention() {
        let existing = vec![
            Partition {
                name: "p20200101".into(),
                less_than: Some(date("2020-01-02")),
            },
            Partition {
                name: CATCH_ALL.into(),
                less_than: None,
            },
        ];
        let days = missing_days(&existing, date("2026-12-04"), 1, Some(date("2026-12-03")));
        assert_eq!(
            days,
            vec![date("2026-12-03"), date("2026-12-04"), date("2026-12-05")]
        );
        assert!(missing_days(&existing, date("2026-12-04"), u32::MAX, None).is_empty());
    }

    #[test]
    fn only_catch_all_starts_today() {
        let existing = vec![Partition {
            name: CATCH_ALL.into(),
            less_than: None,
        }];
        let days = missing_days(&existing, date("2026-12-04"), 1, None);
        assert_eq!(days, vec![date("2026-12-04"), date("2026-12-05")]);
    }

    #[test]
    fn reorganize_keeps_the_catch_all_last() {
        let sql = reorganize_statement("t", &[date("2026-12-31")]);
        assert_eq!(
            sql,
            "ALTER TABLE t REORGANIZE PARTITION p_future INTO (PARTITION p20261231 VALUES LESS THAN ('2027-01-01'), PARTITION p_future VALUES LESS THAN (MAXVALUE))"
        );
    }
}
