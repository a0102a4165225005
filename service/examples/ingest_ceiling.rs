//! Measures the database's own ceiling for the rows oplog writes, to put the consumer's
//! throughput in proportion. The same generated events are loaded into empty tables by
//! `LOAD DATA LOCAL INFILE` (through the `mariadb` client), by plain multi-row INSERTs
//! in one transaction per batch, and by oplog's store, which also hashes each event and
//! detects reused ids; each with one connection and with two working at once, as the
//! consumer's two default writers do. Plain INSERTs are also measured against fewer
//! secondary indexes.
//!
//! ```text
//! eval "$(scripts/services.sh env)"
//! cargo run --release --example ingest_ceiling -- 100000
//! ```
//!
//! It prints one line per figure; nothing is asserted.

mod common;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use common::SECONDARY_INDEXES;
use oplog::config::Config;
use oplog::event::{datetime_from_us, EventRecord};
use oplog::store::{MySqlStore, Store};
use sqlx::{MySql, MySqlPool, QueryBuilder};

/// Rows per transaction for the INSERT paths, oplog's default batch size.
const BATCH: usize = 4_000;

/// Rows per plain INSERT statement, as oplog's store writes them.
const STATEMENT_ROWS: usize = 500;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let base = std::env::var("OPLOG_TEST_MYSQL_URL")?;
    let generated = common::generate(events, Utc::now().timestamp_micros());
    let records: Vec<EventRecord> = generated
        .iter()
        .map(EventRecord::from_event)
        .collect::<Result<_, _>>()?;
    let hashes: Vec<[u8; 16]> = records.iter().map(EventRecord::content_hash).collect();
    let (records, hashes) = (Arc::new(records), Arc::new(hashes));
    println!(
        "events: {events}, transactions of {BATCH} events and statements of {STATEMENT_ROWS} rows for the INSERT paths"
    );

    let database = format!("oplog_ceiling_{}", std::process::id());
    let dir = tempfile::tempdir()?;

    let indexes = SECONDARY_INDEXES.len();
    for clients in [1, 2] {
        let url = common::fresh_database(&base, &database, common::yesterday()).await?;
        // Client c loads the batches c, c + clients, ..., as the writers split them.
        let mut files = Vec::new();
        for client in 0..clients {
            let part: Vec<usize> = (0..records.len())
                .filter(|i| (i / BATCH) % clients == client)
                .collect();
            files.push(write_tsv(dir.path(), client, &records, &hashes, &part)?);
        }
        common::settle(&base).await?;
        let started = Instant::now();
        let loads: Vec<_> = files
            .iter()
            .map(|(events_file, details_file)| load_data(&url, events_file, details_file))
            .collect::<Result<_, _>>()?;
        for mut load in loads {
            let status = load.wait()?;
            anyhow::ensure!(status.success(), "LOAD DATA failed: {status}");
        }
        report(
            &format!("LOAD DATA LOCAL INFILE, {indexes} secondary indexes, {clients} client(s)"),
            events,
            started,
        );
        check_rows(&url, events).await?;
    }

    for (kept, connections) in [(indexes, 1), (indexes, 2), (4, 1), (0, 1)] {
        let url = common::fresh_database(&base, &database, common::yesterday()).await?;
        let pool = MySqlPool::connect(&url).await?;
        for index in &SECONDARY_INDEXES[kept..] {
            sqlx::raw_sql(&format!("ALTER TABLE oplog_events DROP INDEX {index}"))
                .execute(&pool)
                .await?;
        }
        common::settle(&base).await?;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for connection in 0..connections {
            let pool = pool.clone();
            let (records, hashes) = (records.clone(), hashes.clone());
            tasks.push(tokio::spawn(async move {
                insert_plain(&pool, &records, &hashes, connection, connections).await
            }));
        }
        for task in tasks {
            task.await??;
        }
        report(
            &format!(
                "plain multi-row INSERT, {kept} secondary indexes, {connections} connection(s)"
            ),
            events,
            started,
        );
        check_rows(&url, events).await?;
    }

    for writers in [1, 2] {
        let url = common::fresh_database(&base, &database, common::yesterday()).await?;
        let mut config = Config::default();
        config.mysql.url = url;
        let store = Arc::new(MySqlStore::connect(&config.mysql.settings()).await?);
        common::settle(&base).await?;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let (store, records) = (store.clone(), records.clone());
            tasks.push(tokio::spawn(async move {
                for chunk in records.chunks(BATCH).skip(writer).step_by(writers) {
                    store.write_batch(chunk, &[]).await?;
                }
                anyhow::Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        report(
            &format!("oplog store write_batch (content hashes, both tables), {writers} writer(s)"),
            events,
            started,
        );
        check_rows(&config.mysql.url, events).await?;
    }

    common::drop_database(&base, &database).await
}

/// Fails unless both tables hold `events` rows, so a figure never hides a partial load.
async fn check_rows(url: &str, events: usize) -> anyhow::Result<()> {
    let pool = MySqlPool::connect(url).await?;
    for table in ["oplog_events", "oplog_event_details"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&pool)
            .await?;
        anyhow::ensure!(
            rows as usize == events,
            "{table} holds {rows} rows, not {events}"
        );
    }
    Ok(())
}

fn report(label: &str, events: usize, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{label}: {seconds:.2} s, {:.0} events/s",
        events as f64 / seconds
    );
}

/// Escapes a field for LOAD DATA's defaults: tab-separated, backslash escapes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

fn time(us: i64) -> String {
    datetime_from_us(us)
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the events at `part` to the files of client `client`.
fn write_tsv(
    dir: &std::path::Path,
    client: usize,
    records: &[EventRecord],
    hashes: &[[u8; 16]],
    part: &[usize],
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let events_path = dir.join(format!("events-{client}.tsv"));
    let details_path = dir.join(format!("details-{client}.tsv"));
    let mut events = std::io::BufWriter::new(std::fs::File::create(&events_path)?);
    let mut details = std::io::BufWriter::new(std::fs::File::create(&details_path)?);
    for (r, hash) in part.iter().map(|&i| (&records[i], &hashes[i])) {
        let fields = [
            time(r.occurred_at_us),
            escape(&r.event_id),
            escape(&r.service),
            escape(&r.tenant),
            escape(&r.actor_id),
            r.actor_type.to_string(),
            escape(&r.impersonator_id),
            r.impersonator_type.to_string(),
            escape(&r.action),
            r.action_type.to_string(),
            escape(&r.target_type),
            escape(&r.target_id),
            r.result.to_string(),
            escape(&r.error_code),
            escape(&r.trace_id),
            escape(&r.span_id),
            escape(&r.request_id),
            r.schema_version.to_string(),
            hex(hash),
        ];
        writeln!(events, "{}", fields.join("\t"))?;
        let fields = [
            time(r.occurred_at_us),
            escape(&r.event_id),
            escape(&r.actor_display_name),
            escape(&r.actor_ip),
            escape(&r.actor_user_agent),
            escape(&r.target_name),
            escape(&r.outcome_message),
            escape(&r.metadata_json),
            escape(&r.changes_json),
        ];
        writeln!(details, "{}", fields.join("\t"))?;
    }
    events.flush()?;
    details.flush()?;
    Ok((events_path, details_path))
}

/// Starts the `mariadb` command-line client, which sends LOCAL files, loading both
/// files.
fn load_data(
    url: &str,
    events: &std::path::Path,
    details: &std::path::Path,
) -> anyhow::Result<std::process::Child> {
    let rest = url.strip_prefix("mysql://").expect("a mysql:// URL");
    let (credentials, rest) = rest.split_once('@').expect("URL has credentials");
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let (host_port, database) = rest.split_once('/').expect("URL has a database");
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "3306"));
    let sql = format!(
        "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'); \
         LOAD DATA LOCAL INFILE '{}' INTO TABLE oplog_events \
         (occurred_at, event_id, service, tenant, actor_id, actor_type, impersonator_id, \
          impersonator_type, action, action_type, target_type, target_id, result, error_code, \
          trace_id, span_id, request_id, schema_version, @hash) \
         SET content_hash = UNHEX(@hash); \
         LOAD DATA LOCAL INFILE '{}' INTO TABLE oplog_event_details \
         (occurred_at, event_id, actor_display_name, actor_ip, actor_user_agent, target_name, \
          outcome_message, metadata, changes);",
        events.display(),
        details.display()
    );
    let child = std::process::Command::new("mariadb")
        .args([
            "--local-infile=1",
            "--protocol=tcp",
            "-h",
            host,
            "-P",
            port,
            "-u",
            user,
            &format!("-p{password}"),
            database,
            "-e",
            &sql,
        ])
        .spawn()?;
    Ok(child)
}

/// Inserts batches `connection`, `connection + connections`, ... of the events.
async fn insert_plain(
    pool: &MySqlPool,
    records: &[EventRecord],
    hashes: &[[u8; 16]],
    connection: usize,
    connections: usize,
) -> anyhow::Result<()> {
    let batches = records.chunks(BATCH).zip(hashes.chunks(BATCH));
    for (batch, batch_hashes) in batches.skip(connection).step_by(connections) {
        let mut tx = pool.begin().await?;
        for (chunk, chunk_hashes) in batch
            .chunks(STATEMENT_ROWS)
            .zip(batch_hashes.chunks(STATEMENT_ROWS))
        {
            let mut events: QueryBuilder<MySql> = QueryBuilder::new(
                "INSERT INTO oplog_events (occurred_at, event_id, service, tenant, actor_id, \
             actor_type, impersonator_id, impersonator_type, action, action_type, target_type, \
             target_id, result, error_code, trace_id, span_id, request_id, schema_version, \
             content_hash) ",
            );
            events.push_values(chunk.iter().zip(chunk_hashes), |mut row, (r, hash)| {
                row.push_bind(datetime_from_us(r.occurred_at_us).naive_utc())
                    .push_bind(&r.event_id)
                    .push_bind(&r.service)
                    .push_bind(&r.tenant)
                    .push_bind(&r.actor_id)
                    .push_bind(r.actor_type)
                    .push_bind(&r.impersonator_id)
                    .push_bind(r.impersonator_type)
                    .push_bind(&r.action)
                    .push_bind(r.action_type)
                    .push_bind(&r.target_type)
                    .push_bind(&r.target_id)
                    .push_bind(r.result)
                    .push_bind(&r.error_code)
                    .push_bind(&r.trace_id)
                    .push_bind(&r.span_id)
                    .push_bind(&r.request_id)
                    .push_bind(r.schema_version)
                    .push_bind(hash.as_slice());
            });
            events.build().persistent(false).execute(&mut *tx).await?;
            let mut details: QueryBuilder<MySql> = QueryBuilder::new(
                "INSERT INTO oplog_event_details (occurred_at, event_id, actor_display_name, \
             actor_ip, actor_user_agent, target_name, outcome_message, metadata, changes) ",
            );
            details.push_values(chunk, |mut row, r| {
                row.push_bind(datetime_from_us(r.occurred_at_us).naive_utc())
                    .push_bind(&r.event_id)
                    .push_bind(&r.actor_display_name)
                    .push_bind(&r.actor_ip)
                    .push_bind(&r.actor_user_agent)
                    .push_bind(&r.target_name)
                    .push_bind(&r.outcome_message)
                    .push_bind(&r.metadata_json)
                    .push_bind(&r.changes_json);
            });
            details.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}
