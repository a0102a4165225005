//! The MySQL store (MySQL 8.0 or MariaDB 10.11 and later).

use std::{collections::HashMap, str::FromStr, time::Duration};

use async_trait::async_trait;
use chrono::Utc;
use sqlx::mysql::{
    MySql, MySqlArguments, MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow,
};
use sqlx::{Connection, Executor, Row};

use super::dialect::{self, Dialect};
use super::row::{ColumnReader, Value};
use super::sql::{self, OnConflict};
use super::{EventQuery, OffsetUpdate, Store, StoreError, WriteSummary};
use crate::event::{datetime_from_us, EventRecord};

/// Migrations of the MySQL schema, embedded from `migrations/mysql`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/mysql");

/// Connection settings of the MySQL store.
#[derive(Debug, Clone)]
pub struct MySqlSettings {
    /// Connection URL, `mysql://user:password@host:port/database`.
    pub url: String,
    /// Maximum connections in the pool.
    pub max_connections: u32,
    /// Maximum wait for a pooled connection.
    pub acquire_timeout: Duration,
    /// Maximum bytes of one INSERT statement; kept below the server's
    /// `max_allowed_packet`.
    pub max_statement_bytes: usize,
    /// Maximum wait of one statement, lock waits included. A batch write, which runs
    /// several statements, is abandoned after twice this.
    pub statement_timeout: Duration,
}

/// Events and offsets in MySQL.
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    max_statement_bytes: usize,
    write_timeout: Duration,
}

impl MySqlStore {
    /// Connects, checks the server's packet limit and returns the store. Does not run
    /// migrations; see [`MySqlStore::migrate`].
    pub async fn connect(settings: &MySqlSettings) -> Result<Self, StoreError> {
        let scheme = settings.url.split("://").next().unwrap_or_default();
        if !matches!(scheme, "mysql" | "mariadb") || !settings.url.contains("://") {
            return Err(StoreError::Config(format!(
                "mysql.url must look like mysql://USER:PASSWORD@HOST:PORT/DATABASE, not {:?}",
                crate::server::redact(&settings.url)
            )));
        }
        let options = MySqlConnectOptions::from_str(&settings.url)?.timezone(Some("+00:00".into()));
        // One direct connection first: the pool would report a refused connection or
        // an unknown database only as a timeout.
        if let Err(e) = sqlx::MySqlConnection::connect_with(&options).await {
            return Err(connect_error(e));
        }
        let statement_timeout = settings.statement_timeout;
        let pool = MySqlPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // Strict mode makes the server reject, not truncate, a value that
                    // does not fit; oplog relies on that to never store a damaged event.
                    conn.execute(
                        "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES')",
                    )
                    .await?;
                    let version: String = sqlx::query_scalar("SELECT VERSION()")
                        .fetch_one(&mut *conn)
                        .await?;
                    conn.execute(session_timeouts(statement_timeout, &version).as_str())
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let max_allowed_packet: u64 = sqlx::query_scalar("SELECT @@max_allowed_packet")
            .fetch_one(&pool)
            .await?;
        // Leave room for the packet header and the statement text around the values.
        let server_limit = usize::try_from(max_allowed_packet).unwrap_or(usize::MAX) / 10 * 9;
        if settings.max_statement_bytes > server_limit {
            return Err(StoreError::Config(format!(
                "mysql.max_statement_bytes {} is above 90% of the server's max_allowed_packet ({max_allowed_packet}); lower it to at most {server_limit} or raise max_allowed_packet",
                settings.max_statement_bytes
            )));
        }
        Ok(Self {
            pool,
            max_statement_bytes: settings.max_statement_bytes,
            write_timeout: settings.statement_timeout * 2,
        })
    }

    /// Applies pending migrations. Safe to run again: applied ones are skipped.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Returns the connection pool, for maintenance commands.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }
}

/// Adds the fix to connection errors whose cause is clear.
fn connect_error(error: sqlx::Error) -> StoreError {
    let number = error
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .map(|e| e.number());
    let hint = match number {
        Some(1049) => "the database does not exist; create it with CREATE DATABASE <name> CHARACTER SET utf8mb4",
        Some(1045) => "the server rejected the user or password in mysql.url",
        _ => return StoreError::Database(error),
    };
    StoreError::Config(format!("{error}; {hint}"))
}

/// Builds the session settings that bound how long one statement may wait. Lock waits (row
/// locks and metadata locks such as `LOCK TABLES`) are in whole seconds on both servers;
/// MariaDB also bounds the whole statement with `max_statement_time`, while MySQL 8's
/// `max_execution_time` covers only SELECT.
fn session_timeouts(timeout: Duration, version: &str) -> String {
    let seconds = timeout.as_secs().max(1);
    let mut sql =
        format!("SET SESSION lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {seconds}");
    if version.contains("MariaDB") {
        sql.push_str(&format!(", max_statement_time = {}", timeout.as_secs_f64()));
    } else {
        sql.push_str(&format!(", max_execution_time = {}", timeout.as_millis()));
    }
    sql
}

/// The MySQL dialect of the shared statements.
pub(crate) struct MySqlDialect;

impl Dialect for MySqlDialect {
    type Db = MySql;

    const ON_CONFLICT: OnConflict = OnConflict::MySql;
    const ON_CONFLICT_EVENTS: OnConflict = OnConflict::MySqlFlagReuse;
    const REUSE_BY_AFFECTED_ROWS: bool = true;
    // VALUES() in ON DUPLICATE KEY UPDATE is deprecated in MySQL 8.0.20 but is the only
    // form MariaDB accepts; both still support it.
    const CLAIM_PARTITION: &'static str = "INSERT INTO oplog_consumer_offsets \
         (consumer_group, topic, kafka_partition, next_offset, owner, updated_at) \
         VALUES (?, ?, ?, NULL, ?, ?) \
         ON DUPLICATE KEY UPDATE owner = VALUES(owner), updated_at = VALUES(updated_at)";
    const MAX_PLACEHOLDERS: usize = 65_535;

    fn bind<'q>(
        query: sqlx::query::Query<'q, MySql, MySqlArguments>,
        value: Value<'q>,
    ) -> sqlx::query::Query<'q, MySql, MySqlArguments> {
        match value {
            Value::Text(s) => query.bind(s),
            Value::Bytes(b) => query.bind(b),
            Value::Int(i) => query.bind(i),
            Value::Time(us) => query.bind(datetime_from_us(us).naive_utc()),
        }
    }

    fn reader(row: &MySqlRow) -> impl ColumnReader + '_ {
        Reader(row)
    }
}

struct Reader<'a>(&'a MySqlRow);

impl ColumnReader for Reader<'_> {
    fn text(&self, index: usize) -> Result<String, sqlx::Error> {
        // Read as bytes: sqlx refuses `String` for columns with a binary collation such
        // as utf8mb4_bin, although their content is UTF-8.
        let bytes: Vec<u8> = self.0.try_get(index)?;
        String::from_utf8(bytes).map_err(|e| sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source: Box::new(e),
        })
    }

    fn small_int(&self, index: usize) -> Result<i32, sqlx::Error> {
        self.0.try_get::<i16, _>(index).map(i32::from)
    }

    fn bytes(&self, index: usize) -> Result<Vec<u8>, sqlx::Error> {
        self.0.try_get(index)
    }

    fn time_us(&self, index: usize) -> Result<i64, sqlx::Error> {
        let time: chrono::NaiveDateTime = self.0.try_get(index)?;
        Ok(time.and_utc().timestamp_micros())
    }
}

#[async_trait]
impl Store for MySqlStore {
    async fn write_batch(
        &self,
        events: &[EventRecord],
        offsets: &[OffsetUpdate],
    ) -> Result<WriteSummary, StoreError> {
        let now = Utc::now().timestamp_micros();
        let write = dialect::write_batch::<MySqlDialect>(
            &self.pool,
            self.max_statement_bytes,
            events,
            offsets,
            now,
        );
        // Dropping the write on timeout drops its connection, and the server rolls the
        // transaction back.
        tokio::time::timeout(self.write_timeout, write)
            .await
            .map_err(|_| StoreError::Timeout(self.write_timeout))?
    }

    async fn claim_partitions(
        &self,
        consumer_group: &str,
        topic: &str,
        partitions: &[i32],
        owner: &str,
    ) -> Result<HashMap<i32, Option<i64>>, StoreError> {
        let now = Utc::now().timestamp_micros();
        let claim = dialect::claim_partitions::<MySqlDialect>(
            &self.pool,
            consumer_group,
            topic,
            partitions,
            owner,
            now,
        );
        tokio::time::timeout(self.write_timeout, claim)
            .await
            .map_err(|_| StoreError::Timeout(self.write_timeout))?
    }

    async fn load_offsets(
        &self,
        consumer_group: &str,
        topic: &str,
    ) -> Result<HashMap<i32, i64>, StoreError> {
        dialect::load_offsets::<MySqlDialect>(&self.pool, consumer_group, topic).await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        dialect::fetch_events::<MySqlDialect>(
            &self.pool,
            &sql::list_events(query, sql::IndexHint::Force),
        )
        .await
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
        let events =
            dialect::fetch_events::<MySqlDialect>(&self.pool, &sql::get_event(event_id)).await?;
        Ok(events.into_iter().next())
    }

    async fn get_trace(&self, trace_id: &str, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        dialect::fetch_events::<MySqlDialect>(&self.pool, &sql::get_trace(trace_id, limit)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
