//! The SQLite store of the embedded mode.

use std::{collections::HashMap, path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use sqlx::sqlite::{
    Sqlite, SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::Row;

use super::dialect::{self, Dialect};
use super::row::{ColumnReader, Value};
use super::sql::{self, OnConflict};
use super::{EventQuery, OffsetUpdate, Store, StoreError, WriteSummary};
use crate::event::EventRecord;

/// Migrations of the SQLite schema, embedded from `migrations/sqlite`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// Events and offsets in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        Self::open_with(options).await
    }

    /// Opens a private in-memory database, for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        Self::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        // One connection: SQLite has a single writer anyway, and an in-memory database
        // exists only on the connection that created it.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

/// The SQLite dialect of the shared statements.
pub(crate) struct SqliteDialect;

impl Dialect for SqliteDialect {
    type Db = Sqlite;

    const ON_CONFLICT: OnConflict = OnConflict::Sqlite;
    const ON_CONFLICT_EVENTS: OnConflict = OnConflict::Sqlite;
    // SQLite has a single writer, so the stored hashes read before the insert are
    // still the stored ones when it runs.
    const REUSE_BY_AFFECTED_ROWS: bool = false;
    const CLAIM_PARTITION: &'static str = "INSERT INTO oplog_consumer_offsets \
         (consumer_group, topic, kafka_partition, next_offset, owner, updated_at) \
         VALUES (?, ?, ?, NULL, ?, ?) \
         ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE SET \
         owner = excluded.owner, updated_at = excluded.updated_at";
    // SQLITE_MAX_VARIABLE_NUMBER since SQLite 3.32.
    const MAX_PLACEHOLDERS: usize = 32_766;

    fn bind<'q>(
        query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
        value: Value<'q>,
    ) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
        match value {
            Value::Text(s) => query.bind(s),
            Value::Bytes(b) => query.bind(b),
            Value::Int(i) | Value::Time(i) => query.bind(i),
        }
    }

    fn reader(row: &SqliteRow) -> impl ColumnReader + '_ {
        Reader(row)
    }
}

struct Reader<'a>(&'a SqliteRow);

impl ColumnReader for Reader<'_> {
    fn text(&self, index: usize) -> Result<String, sqlx::Error> {
        self.0.try_get(index)
    }

    fn small_int(&self, index: usize) -> Result<i32, sqlx::Error> {
        self.0.try_get(index)
    }

    fn bytes(&self, index: usize) -> Result<Vec<u8>, sqlx::Error> {
        self.0.try_get(index)
    }

    fn time_us(&self, index: usize) -> Result<i64, sqlx::Error> {
        self.0.try_get(index)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn write_batch(
        &self,
        events: &[EventRecord],
        offsets: &[OffsetUpdate],
    ) -> Result<WriteSummary, StoreError> {
        let now = Utc::now().timestamp_micros();
        // SQLite has no packet limit; the byte bound only keeps statements a sane size.
        dialect::write_batch::<SqliteDialect>(&self.pool, 16 << 20, events, offsets, now).await
    }

    async fn claim_partitions(
        &self,
        consumer_group: &str,
        topic: &str,
        partitions: &[i32],
        owner: &str,
    ) -> Result<HashMap<i32, Option<i64>>, StoreError> {
        let now = Utc::now().timestamp_micros();
        dialect::claim_partitions::<SqliteDialect>(
            &self.pool,
            consumer_group,
            topic,
            partitions,
            owner,
            now,
        )
        .await
    }

    async fn load_offsets(
        &self,
        consumer_group: &str,
        topic: &str,
    ) -> Result<HashMap<i32, i64>, StoreError> {
        dialect::load_offsets::<SqliteDialect>(&self.pool, consumer_group, topic).await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        dialect::fetch_events::<SqliteDialect>(
            &self.pool,
            &sql::list_events(query, sql::IndexHint::None),
        )
        .await
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
        let events =
            dialect::fetch_events::<SqliteDialect>(&self.pool, &sql::get_event(event_id)).await?;
        Ok(events.into_iter().next())
    }

    async fn get_trace(&self, trace_id: &str, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        dialect::fetch_events::<SqliteDialect>(&self.pool, &sql::get_trace(trace_id, limit)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
