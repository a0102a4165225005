//! Storage of events and consumer offsets: MySQL in production, SQLite in the embedded
//! mode. Both run the same SQL text from [`sql`], so they cannot drift apart.

mod dialect;
pub mod mysql;
mod row;
pub mod sql;
pub mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;

use crate::event::EventRecord;

pub use mysql::MySqlStore;
pub use sqlite::SqliteStore;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database rejected or failed a statement, or the connection failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("failed to apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row does not decode into an event.
    #[error("stored row of event {event_id:?} is invalid: {problem}")]
    CorruptRow {
        /// Id of the event whose row is invalid.
        event_id: String,
        /// Description of the problem.
        problem: String,
    },
    /// The store's configuration is invalid.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// Another consumer owns the partition now, so this one may not move its offset.
    #[error(
        "partition {partition} of {topic:?} is owned by another consumer; its offset was not moved"
    )]
    Fenced {
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: i32,
    },
    /// Events reuse the (time, id) of stored events with different content; nothing of
    /// the batch was stored.
    #[error("{} events reuse the time and id of a different stored event", indexes.len())]
    IdReused {
        /// Indexes of those events in the batch.
        indexes: Vec<usize>,
    },
    /// A write did not finish within the configured time.
    #[error("the database did not finish the write within {0:?}")]
    Timeout(std::time::Duration),
}

/// MySQL and MariaDB error numbers that a retry can cure: lock waits, deadlocks, lost
/// connections, server shutdown, statement time limits.
const TRANSIENT_MYSQL_ERRORS: [u16; 13] = [
    1040, // too many connections
    1053, // server shutdown in progress
    1158, 1159, 1160, 1161, // network read and write errors
    1205, // lock wait timeout exceeded
    1213, // deadlock found
    1317, // query execution was interrupted
    1927, // connection was killed (MariaDB)
    1969, // max_statement_time exceeded (MariaDB)
    3024, // max_execution_time exceeded (MySQL)
    4031, // disconnected by the server for inactivity (MySQL)
];

/// MySQL and MariaDB error numbers that reject a row for its values, so that splitting
/// the batch finds the rows at fault. Any other error concerns the whole database
/// (read-only, disk full, lost privileges) and is retried instead.
const ROW_REJECTION_MYSQL_ERRORS: [u16; 11] = [
    1048, // column cannot be null
    1264, // out of range value
    1265, // data truncated
    1292, // incorrect value
    1364, // field has no default value
    1366, // incorrect string value
    1406, // data too long
    1452, // foreign key constraint fails
    3140, // invalid JSON text (MySQL)
    3819, // check constraint violated (MySQL)
    4025, // CONSTRAINT failed (MariaDB)
];

impl StoreError {
    /// True when the database refused rows for their values: splitting the batch
    /// isolates the rows at fault.
    pub fn is_row_rejection(&self) -> bool {
        let Self::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            return ROW_REJECTION_MYSQL_ERRORS.contains(&mysql.number());
        }
        // SQLite: SQLITE_CONSTRAINT and SQLITE_MISMATCH, with or without extended codes.
        matches!(
            db.code().as_deref().and_then(|c| c.parse::<i32>().ok()),
            Some(c) if c & 0xff == 19 || c & 0xff == 20
        )
    }

    /// True when the same write may succeed later unchanged: the database was
    /// unreachable, busy or slow. False when it rejected the data itself.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout(_) => true,
            Self::Database(e) => is_transient_sqlx(e),
            Self::Migrate(_)
            | Self::CorruptRow { .. }
            | Self::Config(_)
            | Self::Fenced { .. }
            | Self::IdReused { .. } => false,
        }
    }
}

fn is_transient_sqlx(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                return TRANSIENT_MYSQL_ERRORS.contains(&mysql.number());
            }
            // SQLite: SQLITE_BUSY and SQLITE_LOCKED, with or without extended codes.
            matches!(db.code().as_deref().and_then(|c| c.parse::<i32>().ok()), Some(c) if c & 0xff == 5 || c & 0xff == 6)
        }
        _ => false,
    }
}

/// Filters and keyset position of one page of events, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Inclusive lower bound, microseconds since the epoch.
    pub from_us: Option<i64>,
    /// Exclusive upper bound, microseconds since the epoch.
    pub to_us: Option<i64>,
    /// Actor ids, any of which matches.
    pub actor_ids: Vec<String>,
    /// Action type numbers, any of which matches.
    pub action_types: Vec<i32>,
    /// Actions, any of which matches.
    pub actions: Vec<String>,
    /// Source service.
    pub service: Option<String>,
    /// Target type.
    pub target_type: Option<String>,
    /// Target id; only together with `target_type`.
    pub target_id: Option<String>,
    /// Result number.
    pub result: Option<i32>,
    /// W3C trace id.
    pub trace_id: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// Position after which the page starts: the last event of the previous page.
    pub after: Option<Cursor>,
    /// Maximum number of events to return.
    pub limit: u32,
}

/// Keyset position: events strictly older than this one, or as old with a smaller id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Event time, microseconds since the epoch.
    pub occurred_at_us: i64,
    /// Event id, the tie-break between equal times.
    pub event_id: String,
}

/// The next offset of one consumed partition, written in the same transaction as the
/// events read up to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetUpdate {
    /// Kafka consumer group.
    pub consumer_group: String,
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Offset of the next message to consume.
    pub next_offset: i64,
    /// Token the consumer claimed the partition with.
    pub owner: String,
}

/// Counts of one batch write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Events in the batch, including any already stored.
    pub events: u64,
    /// Statements executed.
    pub statements: u64,
}

/// A database that stores events and consumer offsets.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts `events` and advances `offsets` in one transaction. An event whose
    /// `(occurred_at, event_id)` is already stored is left as it is, so a redelivered
    /// batch stores nothing twice. Fails with [`StoreError::Fenced`], storing nothing,
    /// when an offset's owner no longer owns its partition.
    async fn write_batch(
        &self,
        events: &[EventRecord],
        offsets: &[OffsetUpdate],
    ) -> Result<WriteSummary, StoreError>;

    /// Makes `owner` the owner of `partitions`, so that an earlier owner can no longer
    /// move their offsets, and returns each partition's stored next offset (`None`
    /// when nothing of it is stored yet).
    async fn claim_partitions(
        &self,
        consumer_group: &str,
        topic: &str,
        partitions: &[i32],
        owner: &str,
    ) -> Result<HashMap<i32, Option<i64>>, StoreError>;

    /// Returns the stored next offset of each partition of `topic` for `consumer_group`.
    async fn load_offsets(
        &self,
        consumer_group: &str,
        topic: &str,
    ) -> Result<HashMap<i32, i64>, StoreError>;

    /// Returns one page of events matching `query`, newest first.
    async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError>;

    /// Returns the newest event with `event_id`, if any.
    async fn get_event(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError>;

    /// Returns up to `limit` events of a trace, oldest first.
    async fn get_trace(&self, trace_id: &str, limit: u32) -> Result<Vec<EventRecord>, StoreError>;

    /// Checks that the database responds.
    async fn ping(&self) -> Result<(), StoreError>;
}
