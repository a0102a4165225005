//! The statements both stores run, written once over [`Dialect`], which supplies what
//! differs: the driver, the time column type and the conflict clauses.

use std::collections::HashMap;

use sqlx::{Database, Executor, IntoArguments, Pool, Row};

use super::row::{self, ColumnReader, Value};
use super::sql::{self, OnConflict, Param, Statement};
use super::{OffsetUpdate, StoreError, WriteSummary};
use crate::event::EventRecord;

/// Differences between the SQL databases oplog stores events in.
pub(crate) trait Dialect: Send + Sync + 'static {
    /// The sqlx driver.
    type Db: Database + sqlx::database::HasStatementCache;

    /// Conflict clause for event inserts.
    const ON_CONFLICT: OnConflict;
    /// Conflict clause for the events table, which may reveal a reused id through the
    /// affected-row count (see [`OnConflict::MySqlFlagReuse`]).
    const ON_CONFLICT_EVENTS: OnConflict;
    /// True when the affected-row count of the events insert reveals a reused id; else
    /// the stored hashes are read before the insert.
    const REUSE_BY_AFFECTED_ROWS: bool;
    /// Claim of one partition: group, topic, partition, owner, time. Inserts the row
    /// with no offset, or sets the owner of an existing one.
    const CLAIM_PARTITION: &'static str;
    /// Maximum placeholders in one statement.
    const MAX_PLACEHOLDERS: usize;

    /// Binds one value, converting times to the store's column type.
    fn bind<'q>(
        query: sqlx::query::Query<'q, Self::Db, <Self::Db as Database>::Arguments<'q>>,
        value: Value<'q>,
    ) -> sqlx::query::Query<'q, Self::Db, <Self::Db as Database>::Arguments<'q>>;

    /// Column reader over one result row.
    fn reader(row: &<Self::Db as Database>::Row) -> impl ColumnReader + '_;
}

fn bind_all<'q, D: Dialect>(
    sql: &'q str,
    values: impl IntoIterator<Item = Value<'q>>,
) -> sqlx::query::Query<'q, D::Db, <D::Db as Database>::Arguments<'q>> {
    values
        .into_iter()
        .fold(sqlx::query(sql), |query, value| D::bind(query, value))
}

fn param_values(params: &[Param]) -> impl Iterator<Item = Value<'_>> {
    params.iter().map(|p| match p {
        Param::Text(s) => Value::Text(s),
        Param::Int(i) => Value::Int(*i),
        Param::Time(t) => Value::Time(*t),
    })
}

/// Rows per INSERT statement. Batches are inserted in statements of this many rows,
/// which each connection keeps prepared: parsing a statement of hundreds of rows again
/// for every batch cost MariaDB about 15% of its CPU time. A prepared statement of 500
/// rows takes an estimated 4 MB of server memory for the events table and 2 MB for
/// the details, per connection: MariaDB 10.11's `Memory_used` grew by 17.5 MB for one
/// prepared 2,000-row events insert.
pub(crate) const PREPARED_ROWS: usize = 500;

/// Inserts events and offsets in one transaction.
pub(crate) async fn write_batch<D: Dialect>(
    pool: &Pool<D::Db>,
    max_statement_bytes: usize,
    events: &[EventRecord],
    offsets: &[OffsetUpdate],
    now_us: i64,
) -> Result<WriteSummary, StoreError>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    <D::Db as Database>::QueryResult: RowsAffected,
{
    let mut tx = pool.begin().await?;
    let mut statements = 0;
    let max_rows = (D::MAX_PLACEHOLDERS / sql::EVENT_COLUMNS.len()).min(PREPARED_ROWS);
    let hashes: Vec<[u8; 16]> = events.iter().map(EventRecord::content_hash).collect();
    let mut start = 0;
    for chunk in row::chunks(events, max_rows, max_statement_bytes) {
        let chunk_hashes = &hashes[start..start + chunk.len()];
        if !D::REUSE_BY_AFFECTED_ROWS {
            let reused = find_reused::<D>(&mut tx, chunk, chunk_hashes).await?;
            if !reused.is_empty() {
                // Dropping the transaction rolls it back: none of the batch is stored.
                return Err(reused_error(start, reused));
            }
        }
        let events_sql = sql::insert(
            "oplog_events",
            &sql::EVENT_COLUMNS,
            chunk.len(),
            D::ON_CONFLICT_EVENTS,
        );
        let values = chunk
            .iter()
            .zip(chunk_hashes)
            .flat_map(|(record, hash)| row::event_values(record, hash));
        // Only full-size inserts are kept prepared: other sizes would fill the
        // statement cache with statements used once.
        let keep = chunk.len() == PREPARED_ROWS;
        let result = bind_all::<D>(&events_sql, values)
            .persistent(keep)
            .execute(&mut *tx)
            .await?;
        if D::REUSE_BY_AFFECTED_ROWS && result.rows_affected() > chunk.len() as u64 {
            // A stored row took a different event's hash: roll that back first, then
            // read the stored hashes to name the events at fault. InnoDB checks
            // duplicates against the latest committed row, so an event inserted by a
            // concurrent transaction is caught too.
            tx.rollback().await?;
            let mut conn = pool.acquire().await?;
            let reused = find_reused::<D>(&mut conn, chunk, chunk_hashes).await?;
            return Err(reused_error(start, reused));
        }

        let details_sql = sql::insert(
            "oplog_event_details",
            &sql::DETAIL_COLUMNS,
            chunk.len(),
            D::ON_CONFLICT,
        );
        let values = chunk.iter().flat_map(row::detail_values);
        bind_all::<D>(&details_sql, values)
            .persistent(keep)
            .execute(&mut *tx)
            .await?;
        statements += 2;
        start += chunk.len();
    }
    for offset in offsets {
        let values = [
            Value::Int(offset.next_offset),
            Value::Time(now_us),
            Value::Text(&offset.consumer_group),
            Value::Text(&offset.topic),
            Value::Int(offset.partition.into()),
            Value::Text(&offset.owner),
            Value::Int(offset.next_offset),
        ];
        let result = bind_all::<D>(sql::ADVANCE_OFFSET, values)
            .execute(&mut *tx)
            .await?;
        statements += 1;
        if result.rows_affected() == 0 {
            // Dropping the transaction rolls it back: none of the batch is stored.
            return Err(StoreError::Fenced {
                topic: offset.topic.clone(),
                partition: offset.partition,
            });
        }
    }
    tx.commit().await?;
    Ok(WriteSummary {
        events: events.len() as u64,
        statements,
    })
}

/// Runs a statement that selects full events.
pub(crate) async fn fetch_events<D: Dialect>(
    pool: &Pool<D::Db>,
    statement: &Statement,
) -> Result<Vec<EventRecord>, StoreError>
where
    for<'c> &'c Pool<D::Db>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
{
    let rows = bind_all::<D>(&statement.sql, param_values(&statement.params))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| row::decode_event(&D::reader(row)).map_err(StoreError::from))
        .collect()
}

/// Loads the stored offsets of one group and topic.
pub(crate) async fn load_offsets<D: Dialect>(
    pool: &Pool<D::Db>,
    consumer_group: &str,
    topic: &str,
) -> Result<HashMap<i32, i64>, StoreError>
where
    for<'c> &'c Pool<D::Db>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'r> i32: sqlx::Decode<'r, D::Db> + sqlx::Type<D::Db>,
    for<'r> i64: sqlx::Decode<'r, D::Db> + sqlx::Type<D::Db>,
    usize: sqlx::ColumnIndex<<D::Db as Database>::Row>,
{
    let rows = bind_all::<D>(
        sql::LOAD_OFFSETS,
        [Value::Text(consumer_group), Value::Text(topic)],
    )
    .fetch_all(pool)
    .await?;
    let mut offsets = HashMap::with_capacity(rows.len());
    for row in rows {
        offsets.insert(row.try_get::<i32, _>(0)?, row.try_get::<i64, _>(1)?);
    }
    Ok(offsets)
}

/// Claims partitions for `owner` and returns their stored offsets, in one transaction.
pub(crate) async fn claim_partitions<D: Dialect>(
    pool: &Pool<D::Db>,
    consumer_group: &str,
    topic: &str,
    partitions: &[i32],
    owner: &str,
    now_us: i64,
) -> Result<HashMap<i32, Option<i64>>, StoreError>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'r> i32: sqlx::Decode<'r, D::Db> + sqlx::Type<D::Db>,
    for<'r> Option<i64>: sqlx::Decode<'r, D::Db> + sqlx::Type<D::Db>,
    usize: sqlx::ColumnIndex<<D::Db as Database>::Row>,
{
    let mut tx = pool.begin().await?;
    for &partition in partitions {
        let values = [
            Value::Text(consumer_group),
            Value::Text(topic),
            Value::Int(partition.into()),
            Value::Text(owner),
            Value::Time(now_us),
        ];
        bind_all::<D>(D::CLAIM_PARTITION, values)
            .execute(&mut *tx)
            .await?;
    }
    let rows = bind_all::<D>(
        sql::CLAIMED_OFFSETS,
        [
            Value::Text(consumer_group),
            Value::Text(topic),
            Value::Text(owner),
        ],
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut offsets = HashMap::with_capacity(rows.len());
    for row in rows {
        let partition: i32 = row.try_get(0)?;
        if partitions.contains(&partition) {
            offsets.insert(partition, row.try_get::<Option<i64>, _>(1)?);
        }
    }
    Ok(offsets)
}

/// Access to the number of rows a statement matched, which sqlx's drivers each offer
/// under the same name but no shared trait.
pub(crate) trait RowsAffected {
    /// Rows the statement matched.
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::mysql::MySqlQueryResult {
    fn rows_affected(&self) -> u64 {
        // sqlx connects with CLIENT_FOUND_ROWS, so this counts matched rows, also
        // those an UPDATE left unchanged.
        sqlx::mysql::MySqlQueryResult::rows_affected(self)
    }
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

/// Returns the indexes in `chunk` of events whose (time, id) is stored, by another
/// event or earlier in the chunk, with different content.
async fn find_reused<D: Dialect>(
    conn: &mut <D::Db as Database>::Connection,
    chunk: &[EventRecord],
    hashes: &[[u8; 16]],
) -> Result<Vec<usize>, StoreError>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
{
    let (Some(first), Some(last)) = (
        chunk.iter().map(|r| r.occurred_at_us).min(),
        chunk.iter().map(|r| r.occurred_at_us).max(),
    ) else {
        return Ok(Vec::new());
    };
    let mut ids: Vec<&str> = chunk.iter().map(|r| r.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let sql = sql::existing_hashes(ids.len());
    let values = [Value::Time(first), Value::Time(last)]
        .into_iter()
        .chain(ids.iter().map(|id| Value::Text(id)));
    let rows = bind_all::<D>(&sql, values)
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
    let mut known: HashMap<(i64, String), Vec<u8>> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let reader = D::reader(row);
        known.insert((reader.time_us(0)?, reader.text(1)?), reader.bytes(2)?);
    }
    let mut reused = Vec::new();
    for (index, (record, hash)) in chunk.iter().zip(hashes).enumerate() {
        let key = (record.occurred_at_us, record.event_id.clone());
        match known.get(&key) {
            Some(stored) if stored.as_slice() != hash.as_slice() => reused.push(index),
            Some(_) => {}
            None => {
                known.insert(key, hash.to_vec());
            }
        }
    }
    Ok(reused)
}

/// Builds the error of a batch with reused ids. `indexes` are relative to the chunk
/// that starts at `start`. With none found (the conflicting row changed in between), the
/// error still stops the batch, and the consumer writes it again.
fn reused_error(start: usize, indexes: Vec<usize>) -> StoreError {
    StoreError::IdReused {
        indexes: indexes.into_iter().map(|i| start + i).collect(),
    }
}
