//! `oplog partitions maintain`: creates day partitions ahead and drops those past the
//! retention, under a named lock, with bounded metadata-lock waits, recording each drop
//! as an oplog event.

use std::time::Duration;

use chrono::{Days, NaiveDate, Utc};
use sqlx::{Connection, Executor, MySqlConnection};

use super::{list_on, missing_days, partition_name, reorganize_statement, PartitionError, TABLES};
use crate::event::{timestamp_from_us, EventRecord};
use crate::proto::{
    ActionType, Actor, ActorType, OperationEvent, Outcome, Result as ResultCode, Target,
};
use crate::store::{MySqlStore, Store};

/// Name of the server-wide lock that keeps two runs apart.
pub const LOCK_NAME: &str = "oplog.partitions.maintain";

/// MySQL error number of a lock wait timeout, metadata locks included.
const LOCK_WAIT_TIMEOUT: u16 = 1205;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The current UTC day; partitions of this day and later are never dropped.
    pub today: NaiveDate,
    /// Days after today that must have a partition.
    pub ahead_days: u32,
    /// Days kept: a partition whose whole range is older than `today - retention_days`
    /// is dropped. At least 1.
    pub retention_days: u32,
    /// Print the plan and change nothing.
    pub dry_run: bool,
    /// Maximum wait for a metadata lock per attempt; kept short so that inserts never
    /// queue long behind a waiting ALTER.
    pub lock_wait_timeout: Duration,
    /// Attempts per statement before giving up.
    pub max_attempts: u32,
    /// Maximum wait for the named lock held by another run.
    pub named_lock_timeout: Duration,
    /// Identity running the maintenance, recorded in the audit events.
    pub actor: String,
    /// Only create partitions ahead, drop nothing (what `oplog migrate` does).
    pub create_only: bool,
}

/// One change the run makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Split day partitions off the catch-all.
    Create {
        /// Table name.
        table: &'static str,
        /// Days to create.
        days: Vec<NaiveDate>,
    },
    /// Drop a day partition.
    Drop {
        /// Table name.
        table: &'static str,
        /// Partition name.
        partition: String,
        /// Exclusive upper bound of the partition.
        less_than: NaiveDate,
        /// Rows in the partition when the plan was made.
        rows: u64,
    },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Create { table, days } => write!(
                f,
                "create {} day partitions in {table}: {} to {}",
                days.len(),
                partition_name(days[0]),
                partition_name(*days.last().expect("a create has days"))
            ),
            Action::Drop {
                table,
                partition,
                less_than,
                rows,
            } => write!(
                f,
                "drop {table} partition {partition} (before {less_than}, {rows} rows)"
            ),
        }
    }
}

/// Outcome of a run, for the exit code of a CronJob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Everything planned was done.
    Success,
    /// Some actions were done, others were left.
    Partial,
    /// Nothing could be done.
    Failure,
}

/// Actions of a run, done and left.
#[derive(Debug, Default)]
pub struct Report {
    /// Actions carried out.
    pub done: Vec<Action>,
    /// Actions not carried out, with why.
    pub left: Vec<(Action, String)>,
}

impl Report {
    /// Returns the run's outcome.
    pub fn outcome(&self) -> RunOutcome {
        match (self.done.is_empty(), self.left.is_empty()) {
            (_, true) => RunOutcome::Success,
            (false, false) => RunOutcome::Partial,
            (true, false) => RunOutcome::Failure,
        }
    }
}

/// Most partitions a table may have in MySQL and MariaDB.
const MAX_PARTITIONS: usize = 8192;

/// Plans the run: the partitions to create ahead and those to drop, per table. Drops
/// are bounded by the real clock too, so a `today` in the future cannot reach data
/// within the retention.
pub async fn plan(
    conn: &mut MySqlConnection,
    options: &Options,
) -> Result<Vec<Action>, PartitionError> {
    let real_today = Utc::now().date_naive();
    let retention = Days::new(u64::from(options.retention_days));
    let cutoff = options.today.min(real_today).checked_sub_days(retention);
    let mut actions = Vec::new();
    for table in TABLES {
        let existing = list_on(conn, table).await?;
        // Days already past the retention need no partition of their own.
        let earliest = options.today.checked_sub_days(retention);
        let days = missing_days(&existing, options.today, options.ahead_days, earliest);
        if existing.len() + days.len() > MAX_PARTITIONS {
            return Err(PartitionError::TooMany {
                table: table.to_owned(),
                count: existing.len() + days.len(),
            });
        }
        if !days.is_empty() {
            actions.push(Action::Create { table, days });
        }
        if options.create_only {
            continue;
        }
        for partition in existing {
            let Some(less_than) = partition.less_than else {
                continue;
            };
            // The whole range is older than the cutoff; the cutoff is before today.
            if cutoff.is_none_or(|cutoff| less_than > cutoff) {
                continue;
            }
            // Only partitions named the way oplog names them are dropped; anything
            // else was made by hand and is left for a person to decide.
            let own_name = less_than
                .pred_opt()
                .map(partition_name)
                .is_some_and(|name| name == partition.name);
            if !own_name {
                tracing::warn!(table, partition = %partition.name, "partition is not named by oplog; not dropped");
                continue;
            }
            let rows: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {table} PARTITION (`{}`)",
                partition.name
            ))
            .fetch_one(&mut *conn)
            .await?;
            actions.push(Action::Drop {
                table,
                partition: partition.name,
                less_than,
                rows: rows as u64,
            });
        }
    }
    Ok(actions)
}

/// Returns the name of the named lock of the current database, so that runs against
/// different databases on one server do not wait for each other.
async fn lock_name(conn: &mut MySqlConnection) -> Result<String, PartitionError> {
    let database: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&mut *conn)
        .await?;
    let database: String = database.unwrap_or_default().chars().take(40).collect();
    Ok(format!("{LOCK_NAME}.{database}"))
}

/// Lifts the session statement time limits of the pool's connections: an ALTER that
/// MariaDB interrupts late through `max_statement_time` can keep the new partition
/// layout without the rows it was moving. Only the lock waits stay bounded.
async fn lift_statement_limits(conn: &mut MySqlConnection) -> Result<(), PartitionError> {
    for statement in [
        "SET SESSION max_statement_time = 0",
        "SET SESSION max_execution_time = 0",
    ] {
        // Each variable exists on one of the two servers only (error 1193 elsewhere).
        if let Err(e) = conn.execute(statement).await {
            let unknown = e
                .as_database_error()
                .and_then(|e| e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
                .is_some_and(|e| e.number() == 1193);
            if !unknown {
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// Runs the maintenance: takes the named lock, plans, and carries the plan out unless
/// `dry_run`, recording each dropped partition as an oplog event in `store`.
pub async fn run(
    store: &MySqlStore,
    options: &Options,
) -> Result<(Vec<Action>, Report), PartitionError> {
    assert!(
        options.retention_days >= 1,
        "the command line rejects a retention of 0"
    );
    let mut conn = store.pool().acquire().await?.detach();
    lift_statement_limits(&mut conn).await?;
    let lock = lock_name(&mut conn).await?;
    let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
        .bind(&lock)
        .bind(options.named_lock_timeout.as_secs_f64())
        .fetch_one(&mut conn)
        .await?;
    if locked != Some(1) {
        return Err(PartitionError::Locked(lock));
    }
    let result = run_locked(&mut conn, store, options).await;
    // The lock is also released when the connection closes, should this fail.
    let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(&lock)
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    result
}

async fn run_locked(
    conn: &mut MySqlConnection,
    store: &MySqlStore,
    options: &Options,
) -> Result<(Vec<Action>, Report), PartitionError> {
    let plan = plan(conn, options).await?;
    let mut report = Report::default();
    if options.dry_run {
        return Ok((plan, report));
    }
    let set_timeout = format!(
        "SET SESSION lock_wait_timeout = {}",
        options.lock_wait_timeout.as_secs().max(1)
    );
    conn.execute(set_timeout.as_str()).await?;
    for action in &plan {
        let statement = match action {
            Action::Create { table, days } => reorganize_statement(table, days),
            Action::Drop {
                table, partition, ..
            } => {
                format!("ALTER TABLE {table} DROP PARTITION `{partition}`")
            }
        };
        match execute_with_retries(conn, &statement, options).await {
            Ok(()) => {
                tracing::info!(action = %action, "partition maintenance step done");
                if let Action::Drop { .. } = action {
                    record_drop(store, action, options).await;
                }
                report.done.push(action.clone());
            }
            Err(e) => {
                tracing::error!(action = %action, error = %e, "partition maintenance step failed");
                report.left.push((action.clone(), e.to_string()));
            }
        }
    }
    Ok((plan, report))
}

/// Runs a DDL statement, retrying lock wait timeouts with backoff.
async fn execute_with_retries(
    conn: &mut MySqlConnection,
    statement: &str,
    options: &Options,
) -> Result<(), PartitionError> {
    let mut backoff = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match conn.execute(statement).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let lock_wait = error
            .as_database_error()
            .and_then(|e| e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
            .is_some_and(|e| e.number() == LOCK_WAIT_TIMEOUT);
        if !lock_wait {
            return Err(error.into());
        }
        if attempt >= options.max_attempts {
            return Err(PartitionError::GaveUp {
                statement: statement.to_owned(),
                attempts: attempt,
                last_error: error.to_string(),
            });
        }
        tracing::warn!(
            attempt,
            ?backoff,
            statement,
            "metadata lock wait timed out; retrying"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Records a dropped partition as an oplog event, so retention is audited too. A
/// failure is logged and does not undo the drop.
async fn record_drop(store: &MySqlStore, action: &Action, options: &Options) {
    let event = drop_event(action, options, Utc::now().timestamp_micros());
    let record = match EventRecord::from_event(&event) {
        Ok(record) => record,
        Err(e) => {
            tracing::error!(error = %e, "the partition drop event is invalid");
            return;
        }
    };
    if let Err(e) = store.write_batch(&[record], &[]).await {
        tracing::error!(action = %action, error = %e, "failed to record the partition drop as an event");
    }
}

/// Builds the oplog event of a dropped partition.
pub fn drop_event(action: &Action, options: &Options, now_us: i64) -> OperationEvent {
    let Action::Drop {
        table,
        partition,
        less_than,
        rows,
    } = action
    else {
        unreachable!("only drops are recorded");
    };
    let actor_type = if options.actor.starts_with("system:serviceaccount:") {
        ActorType::ServiceAccount
    } else if options.actor.starts_with("system:") {
        ActorType::System
    } else {
        ActorType::User
    };
    let metadata = serde_json::json!({
        "table": table,
        "partition": partition,
        "lessThan": less_than.to_string(),
        "rows": rows,
        "retentionDays": options.retention_days,
        "today": options.today.to_string(),
    });
    OperationEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at: Some(timestamp_from_us(now_us)),
        service: "oplog".into(),
        actor: Some(Actor {
            id: options.actor.clone(),
            r#type: actor_type as i32,
            ..Default::default()
        }),
        action: "partition.drop".into(),
        action_type: ActionType::Delete as i32,
        target: Some(Target {
            r#type: "mysql.partition".into(),
            id: format!("{table}/{partition}"),
            name: partition.clone(),
        }),
        outcome: Some(Outcome {
            result: ResultCode::Success as i32,
            ..Default::default()
        }),
        metadata_json: metadata.to_string(),
        schema_version: 1,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            today: NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
            ahead_days: 3,
            retention_days: 30,
            dry_run: false,
            lock_wait_timeout: Duration::from_secs(1),
            max_attempts: 2,
            named_lock_timeout: Duration::from_secs(1),
            actor: "system:serviceaccount:oplog:maintenance".into(),
            create_only: false,
        }
    }

    #[test]
    fn drop_event_is_valid_and_names_the_partition() {
        let action = Action::Drop {
            table: "oplog_events",
            partition: "p20261101".into(),
            less_than: NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            rows: 42,
        };
        let event = drop_event(&action, &options(), 1_764_806_400_000_000);
        let record = EventRecord::from_event(&event).expect("valid event");
        assert_eq!(record.target_id, "oplog_events/p20261101");
        assert_eq!(record.actor_type, ActorType::ServiceAccount as i32);
        assert!(
            record.metadata_json.contains("\"rows\":42"),
            "{}",
            record.metadata_json
        );
    }

    #[test]
    fn outcome_follows_what_was_left() {
        let create = Action::Create {
            table: "oplog_events",
            days: vec![NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()],
        };
        let mut report = Report::default();
        assert_eq!(report.outcome(), RunOutcome::Success);
        report.left.push((create.clone(), "locked".into()));
        assert_eq!(report.outcome(), RunOutcome::Failure);
        report.done.push(create);
        assert_eq!(report.outcome(), RunOutcome::Partial);
    }
}
