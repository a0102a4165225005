//! SQL text shared by the MySQL and SQLite stores. Both use `?` placeholders; the only
//! difference in values is the time, bound as [`Param::Time`].

use std::fmt::Write as _;

use super::EventQuery;

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// Text.
    Text(String),
    /// Integer.
    Int(i64),
    /// Time as microseconds since the epoch, UTC; each store binds its own column type.
    Time(i64),
}

/// SQL text with its parameters in placeholder order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// SQL text with `?` placeholders.
    pub sql: String,
    /// Values for the placeholders.
    pub params: Vec<Param>,
}

/// Columns of the events table, in insert order.
pub const EVENT_COLUMNS: [&str; 19] = [
    "occurred_at",
    "event_id",
    "service",
    "tenant",
    "actor_id",
    "actor_type",
    "impersonator_id",
    "impersonator_type",
    "action",
    "action_type",
    "target_type",
    "target_id",
    "result",
    "error_code",
    "trace_id",
    "span_id",
    "request_id",
    "schema_version",
    "content_hash",
];

/// Columns of the details table, in insert order.
pub const DETAIL_COLUMNS: [&str; 9] = [
    "occurred_at",
    "event_id",
    "actor_display_name",
    "actor_ip",
    "actor_user_agent",
    "target_name",
    "outcome_message",
    "metadata",
    "changes",
];

/// Conflict handling appended to an insert so that a redelivered event is a no-op.
#[derive(Debug, Clone, Copy)]
pub enum OnConflict {
    /// MySQL: `ON DUPLICATE KEY UPDATE` with a no-op assignment. Unlike `INSERT IGNORE`,
    /// this keeps strict-mode errors (truncation, invalid values) as errors.
    MySql,
    /// MySQL, for the events table: a duplicate key takes the new content hash. A
    /// redelivery leaves the row unchanged (1 affected row, as sqlx connects with
    /// CLIENT_FOUND_ROWS), while a different event changes it (2 affected rows). So the
    /// statement's affected-row count reveals a reused id, and the caller rolls the
    /// transaction back before the change can persist.
    MySqlFlagReuse,
    /// SQLite: `ON CONFLICT DO NOTHING`.
    Sqlite,
}

/// Builds a multi-row insert of `rows` rows into `table`.
pub fn insert(table: &str, columns: &[&str], rows: usize, on_conflict: OnConflict) -> String {
    let row = format!("({})", vec!["?"; columns.len()].join(", "));
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&row);
    }
    match on_conflict {
        OnConflict::MySql => sql.push_str(" ON DUPLICATE KEY UPDATE event_id = event_id"),
        OnConflict::MySqlFlagReuse => {
            sql.push_str(" ON DUPLICATE KEY UPDATE content_hash = VALUES(content_hash)")
        }
        OnConflict::Sqlite => sql.push_str(" ON CONFLICT DO NOTHING"),
    }
    sql
}

/// Columns selected for a full event: the events table as `e`, details as `d`. The
/// decoder in `row.rs` reads them in this order.
const SELECT_EVENT: &str = "SELECT e.occurred_at, e.event_id, e.service, e.tenant, \
     e.actor_id, e.actor_type, e.impersonator_id, e.impersonator_type, e.action, \
     e.action_type, e.target_type, e.target_id, e.result, e.error_code, e.trace_id, \
     e.span_id, e.request_id, e.schema_version, d.actor_display_name, d.actor_ip, \
     d.actor_user_agent, d.target_name, d.outcome_message, d.metadata, d.changes \
     FROM oplog_events e \
     JOIN oplog_event_details d ON d.occurred_at = e.occurred_at AND d.event_id = e.event_id";

/// Index hint of a page query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexHint {
    /// MySQL and MariaDB: `FORCE INDEX` on the index of the most selective filter.
    /// Without it, the optimizer often reads the primary key in time order and checks
    /// the filter on every row, expecting to stop early because the order matches.
    /// For a rare actor or service that reads thousands of rows per page, not 101.
    Force,
    /// SQLite: no hint; its planner picks the filter's index.
    None,
}

/// Returns the index that reads `query`'s rows in keyset order: the index of its most
/// selective filter that has one value. A filter with several values spans several index
/// ranges, whose rows need sorting, so it is left to the optimizer.
fn page_index(query: &EventQuery) -> Option<&'static str> {
    let one = |values: usize| values == 1;
    let candidates = [
        (query.trace_id.is_some(), "idx_events_trace"),
        (one(query.actor_ids.len()), "idx_events_actor"),
        (
            query.target_type.is_some() && query.target_id.is_some(),
            "idx_events_target",
        ),
        (
            query.service.is_some() && query.result.is_some(),
            "idx_events_service_result",
        ),
        (one(query.actions.len()), "idx_events_action"),
        (query.service.is_some(), "idx_events_service"),
        (query.tenant.is_some(), "idx_events_tenant"),
        (one(query.action_types.len()), "idx_events_action_type"),
        (query.result.is_some(), "idx_events_result"),
    ];
    candidates
        .into_iter()
        .find(|(applies, _)| *applies)
        .map(|(_, index)| index)
}

/// Builds the page query of `ListEvents`.
pub fn list_events(query: &EventQuery, hint: IndexHint) -> Statement {
    let mut conditions = Conditions::default();
    if let Some(from) = query.from_us {
        conditions.push("e.occurred_at >= ?", [Param::Time(from)]);
    }
    if let Some(to) = query.to_us {
        conditions.push("e.occurred_at < ?", [Param::Time(to)]);
    }
    conditions.any_of(
        "e.actor_id",
        query.actor_ids.iter().cloned().map(Param::Text),
    );
    conditions.any_of(
        "e.action_type",
        query.action_types.iter().map(|t| Param::Int(i64::from(*t))),
    );
    conditions.any_of("e.action", query.actions.iter().cloned().map(Param::Text));
    conditions.equal_text("e.service", &query.service);
    conditions.equal_text("e.target_type", &query.target_type);
    conditions.equal_text("e.target_id", &query.target_id);
    if let Some(result) = query.result {
        conditions.push("e.result = ?", [Param::Int(i64::from(result))]);
    }
    conditions.equal_text("e.trace_id", &query.trace_id);
    conditions.equal_text("e.tenant", &query.tenant);
    if let Some(after) = &query.after {
        // Written as a range on occurred_at plus a tie-break, because MySQL turns this
        // form into an index range, unlike a row comparison `(a, b) < (?, ?)`.
        conditions.push(
            "e.occurred_at <= ? AND (e.occurred_at < ? OR e.event_id < ?)",
            [
                Param::Time(after.occurred_at_us),
                Param::Time(after.occurred_at_us),
                Param::Text(after.event_id.clone()),
            ],
        );
    }
    let mut sql = String::from(SELECT_EVENT);
    if let (IndexHint::Force, Some(index)) = (hint, page_index(query)) {
        sql = sql.replace(
            "FROM oplog_events e ",
            &format!("FROM oplog_events e FORCE INDEX ({index}) "),
        );
    }
    conditions.write_where(&mut sql);
    write!(
        sql,
        " ORDER BY e.occurred_at DESC, e.event_id DESC LIMIT {}",
        query.limit
    )
    .expect("writing to a String cannot fail");
    Statement {
        sql,
        params: conditions.params,
    }
}

/// Builds the query of `GetEvent`: the newest event with the id.
pub fn get_event(event_id: &str) -> Statement {
    Statement {
        sql: format!("{SELECT_EVENT} WHERE e.event_id = ? ORDER BY e.occurred_at DESC LIMIT 1"),
        params: vec![Param::Text(event_id.to_owned())],
    }
}

/// Builds the query of `GetTrace`: up to `limit` events of the trace, oldest first.
pub fn get_trace(trace_id: &str, limit: u32) -> Statement {
    Statement {
        sql: format!(
            "{SELECT_EVENT} WHERE e.trace_id = ? ORDER BY e.occurred_at, e.event_id LIMIT {limit}"
        ),
        params: vec![Param::Text(trace_id.to_owned())],
    }
}

/// Builds the query of the stored content hashes of `ids` ids within a time range,
/// which tells a redelivery from a different event reusing an id. The id placeholders
/// follow the two times.
pub fn existing_hashes(ids: usize) -> String {
    format!(
        "SELECT occurred_at, event_id, content_hash FROM oplog_events \
         WHERE occurred_at >= ? AND occurred_at <= ? AND event_id IN ({})",
        vec!["?"; ids].join(", ")
    )
}

/// The stored offsets of one consumer group and topic.
pub const LOAD_OFFSETS: &str = "SELECT kafka_partition, next_offset FROM oplog_consumer_offsets \
     WHERE consumer_group = ? AND topic = ? AND next_offset IS NOT NULL";

/// The offsets of the partitions one owner has claimed.
pub const CLAIMED_OFFSETS: &str =
    "SELECT kafka_partition, next_offset FROM oplog_consumer_offsets \
     WHERE consumer_group = ? AND topic = ? AND owner = ?";

/// Moves one partition's offset forward, only for its owner. The update matches no row
/// when another consumer has claimed the partition since, or when the offset would
/// move backwards. The caller then rolls the transaction back.
pub const ADVANCE_OFFSET: &str =
    "UPDATE oplog_consumer_offsets SET next_offset = ?, updated_at = ? \
     WHERE consumer_group = ? AND topic = ? AND kafka_partition = ? AND owner = ? \
     AND (next_offset IS NULL OR next_offset <= ?)";

#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Conditions {
    fn push(&mut self, clause: &str, params: impl IntoIterator<Item = Param>) {
        self.clauses.push(clause.to_owned());
        self.params.extend(params);
    }

    fn equal_text(&mut self, column: &str, value: &Option<String>) {
        if let Some(value) = value {
            self.push(&format!("{column} = ?"), [Param::Text(value.clone())]);
        }
    }

    fn any_of(&mut self, column: &str, values: impl ExactSizeIterator<Item = Param>) {
        match values.len() {
            0 => {}
            1 => self.push(&format!("{column} = ?"), values),
            n => {
                let placeholders = vec!["?"; n].join(", ");
                self.push(&format!("{column} IN ({placeholders})"), values);
            }
        }
    }

    fn write_where(&self, sql: &mut String) {
        if !self.clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.clauses.join(" AND "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Cursor;

    #[test]
    fn insert_has_one_placeholder_per_value() {
        let sql = insert("t", &["a", "b"], 3, OnConflict::Sqlite);
        assert_eq!(sql.matches('?').count(), 6);
        assert!(sql.ends_with("ON CONFLICT DO NOTHING"));
    }

    #[test]
    fn list_events_combines_filters_with_and() {
        let query = EventQuery {
            from_us: Some(1),
            to_us: Some(2),
            actor_ids: vec!["a".into(), "b".into()],
            service: Some("s".into()),
            after: Some(Cursor {
                occurred_at_us: 5,
                event_id: "x".into(),
            }),
            limit: 10,
            ..EventQuery::default()
        };
        let statement = list_events(&query, IndexHint::None);
        assert!(statement.sql.contains(
            "WHERE e.occurred_at >= ? AND e.occurred_at < ? AND e.actor_id IN (?, ?) AND e.service = ?"
        ));
        assert!(statement.sql.ends_with("LIMIT 10"));
        assert_eq!(statement.sql.matches('?').count(), statement.params.len());
        assert_eq!(statement.params.len(), 8);
    }

    #[test]
    fn list_events_without_filters_has_no_where() {
        let statement = list_events(
            &EventQuery {
                limit: 1,
                ..EventQuery::default()
            },
            IndexHint::Force,
        );
        assert!(!statement.sql.contains("WHERE"));
        assert!(!statement.sql.contains("FORCE INDEX"));
        assert!(statement.params.is_empty());
    }

    #[test]
    fn page_index_prefers_the_most_selective_filter() {
        let hinted = |query: EventQuery| {
            let sql = list_events(&query, IndexHint::Force).sql;
            let start = sql.find("FORCE INDEX (")? + "FORCE INDEX (".len();
            let end = start + sql[start..].find(')')?;
            Some(sql[start..end].to_owned())
        };
        let service = Some("svc".to_owned());
        assert_eq!(
            hinted(EventQuery {
                actor_ids: vec!["a".into()],
                service: service.clone(),
                ..EventQuery::default()
            })
            .as_deref(),
            Some("idx_events_actor")
        );
        assert_eq!(
            hinted(EventQuery {
                service: service.clone(),
                result: Some(3),
                ..EventQuery::default()
            })
            .as_deref(),
            Some("idx_events_service_result")
        );
        // Two actors are two index ranges: the optimizer chooses, with the service
        // index as the only single-value filter here.
        assert_eq!(
            hinted(EventQuery {
                actor_ids: vec!["a".into(), "b".into()],
                service,
                ..EventQuery::default()
            })
            .as_deref(),
            Some("idx_events_service")
        );
        assert_eq!(
            hinted(EventQuery {
                target_type: Some("order".into()),
                ..EventQuery::default()
            }),
            None
        );
        let plain = list_events(
            &EventQuery {
                actor_ids: vec!["a".into()],
                ..EventQuery::default()
            },
            IndexHint::None,
        );
        assert!(!plain.sql.contains("FORCE INDEX"));
    }
}
