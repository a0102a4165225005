//! Measures the consumer on a real broker and MariaDB: fills a topic with generated
//! events, then runs the `oplog consume` binary on it and reports how fast it stores
//! them, and its peak resident memory. Then it sends `ListEvents` requests filtered by
//! actor over 24 hours through the gRPC API.
//!
//! Run with the services of `scripts/services.sh` started and the binary built:
//!
//! ```text
//! eval "$(scripts/services.sh env)"
//! cargo build --release --bins --examples
//! target/release/examples/pipeline_bench --events 100000 --batch 4000 --writers 2
//! ```
//!
//! It prints one line per figure; nothing is asserted. `--indexes K` keeps only the
//! first K secondary indexes of the events table, to show what each costs.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;

mod common;

use common::{generate, Rng, ACTORS, SECONDARY_INDEXES};
use oplog::config::Config;
use oplog::kafka::{self, EventProducer, KafkaSettings};
use oplog::proto::oplog_query_client::OplogQueryClient;
use oplog::proto::ListEventsRequest;
use oplog::store::{MySqlStore, Store};

/// Options of the benchmark.
#[derive(Parser)]
struct Options {
    /// Events to publish and consume.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// `ListEvents` requests sent after consuming; 0 skips them.
    #[arg(long, default_value_t = 2_000)]
    queries: usize,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// `consumer.max_batch_events`. `consumer.max_batch_bytes` is set to 4 KiB per
    /// event, so that for these events the count binds, as with the defaults.
    #[arg(long, default_value_t = 4_000)]
    batch: usize,
    /// `consumer.writers`.
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Secondary indexes of the events table to keep, in migration order.
    #[arg(long, default_value_t = SECONDARY_INDEXES.len())]
    indexes: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let events = options.events;
    let brokers = std::env::var("OPLOG_TEST_KAFKA_BROKERS")?;
    let mysql = std::env::var("OPLOG_TEST_MYSQL_URL")?;

    let kafka = KafkaSettings {
        brokers: brokers.clone(),
        properties: Default::default(),
    };
    let topic = format!("oplog_bench_{}", std::process::id());
    kafka::ensure_topic(&kafka, &topic, options.partitions, 1).await?;
    kafka::ensure_topic(&kafka, &format!("{topic}.dead-letter"), 1, 1).await?;

    let now_us = Utc::now().timestamp_micros();
    let generated = generate(events, now_us);
    let bytes: usize = generated.iter().map(prost::Message::encoded_len).sum();
    println!(
        "events: {events}, protobuf bytes: {bytes} ({} per event), {} partitions, batches of {}, {} writers, {} secondary indexes",
        bytes / events,
        options.partitions,
        options.batch,
        options.writers,
        options.indexes
    );

    let producer = EventProducer::new(&kafka, &topic, Duration::from_secs(60))?;
    let started = Instant::now();
    for chunk in generated.chunks(5_000) {
        producer.send(chunk).await?;
    }
    let produce = started.elapsed();
    drop(generated);
    println!(
        "produce: {:.1} s, {:.0} events/s",
        produce.as_secs_f64(),
        events as f64 / produce.as_secs_f64()
    );

    let database = format!("oplog_bench_{}", std::process::id());
    let url = common::fresh_database(&mysql, &database, common::yesterday()).await?;
    let mut config = Config::default();
    config.mysql.url = url.clone();
    let store = Arc::new(MySqlStore::connect(&config.mysql.settings()).await?);
    for index in SECONDARY_INDEXES.iter().skip(options.indexes) {
        sqlx::raw_sql(&format!("ALTER TABLE oplog_events DROP INDEX {index}"))
            .execute(store.pool())
            .await?;
    }

    common::settle(&mysql).await?;
    let mut consumer = spawn_consume(&url, &brokers, &topic, &options)?;
    let started = Instant::now();
    let mut first_commit = None;
    loop {
        if let Some(status) = consumer.try_wait()? {
            anyhow::bail!("oplog consume exited early: {status}");
        }
        let stored = store
            .load_offsets(&topic, &topic)
            .await?
            .values()
            .sum::<i64>() as usize;
        if stored > 0 && first_commit.is_none() {
            first_commit = Some((Instant::now(), stored));
        }
        if stored >= events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain = started.elapsed();
    let peak_rss = peak_rss_kib(consumer.id())?;
    stop(&mut consumer)?;
    let (first_at, first_events) = first_commit.expect("a commit before the last");
    let after_first = first_at.elapsed();
    println!(
        "consume into MariaDB: {:.0} events/s from the first commit to the last ({:.2} s); {:.0} events/s from process start ({:.2} s); peak RSS of oplog consume {} MiB",
        (events - first_events) as f64 / after_first.as_secs_f64(),
        after_first.as_secs_f64(),
        events as f64 / drain.as_secs_f64(),
        drain.as_secs_f64(),
        peak_rss / 1024
    );

    if options.queries > 0 {
        query(store.clone(), now_us, options.queries).await?;
    }
    if std::env::var_os("OPLOG_BENCH_KEEP").is_some() {
        println!("kept database {database}");
        return Ok(());
    }
    common::drop_database(&mysql, &database).await
}

/// Starts the `oplog` binary next to this example's directory as `oplog consume`,
/// configured through its environment variables.
fn spawn_consume(
    url: &str,
    brokers: &str,
    topic: &str,
    options: &Options,
) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let binary: PathBuf = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|dir| dir.join("oplog"))
        .filter(|path| path.exists())
        .ok_or_else(|| anyhow::anyhow!("the oplog binary is not built next to {}; run cargo build --bins with the same profile", exe.display()))?;
    let child = Command::new(binary)
        .arg("consume")
        .env("OPLOG__MYSQL__URL", url)
        .env("OPLOG__KAFKA__BROKERS", brokers)
        .env("OPLOG__KAFKA__TOPIC", topic)
        .env("OPLOG__CONSUMER__GROUP_ID", topic)
        .env(
            "OPLOG__CONSUMER__MAX_BATCH_EVENTS",
            options.batch.to_string(),
        )
        .env(
            "OPLOG__CONSUMER__MAX_BATCH_BYTES",
            (options.batch << 12).to_string(),
        )
        .env("OPLOG__CONSUMER__WRITERS", options.writers.to_string())
        .env(
            "OPLOG__MYSQL__MAX_CONNECTIONS",
            (options.writers + 4).to_string(),
        )
        .env("OPLOG__HTTP__LISTEN", "127.0.0.1:0")
        .env(
            "OPLOG__LOG__FILTER",
            std::env::var("OPLOG_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(if std::env::var_os("OPLOG_BENCH_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()?;
    Ok(child)
}

/// Peak resident memory of process `pid` (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("malformed line {line:?}"))?
        .parse()?)
}

/// Stops `oplog consume` with SIGTERM, as Kubernetes does, and waits for it.
fn stop(child: &mut Child) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -TERM failed: {status}");
    let status = child.wait()?;
    anyhow::ensure!(status.success(), "oplog consume exited with {status}");
    Ok(())
}

/// Sends `queries` `ListEvents` requests, each for one actor over the 24 hours of the
/// events, and prints the latency percentiles seen by the client.
async fn query(store: Arc<MySqlStore>, now_us: i64, queries: usize) -> anyhow::Result<()> {
    let (addr, server_stop) = common::serve_query_api(store).await?;
    let mut client = OplogQueryClient::connect(format!("http://{addr}")).await?;
    let mut rng = Rng(42);
    let mut latencies = Vec::with_capacity(queries);
    let mut returned = 0;
    let mut actors = HashSet::new();
    let started = Instant::now();
    for _ in 0..queries {
        // Actors drawn like the events, so popular actors are queried more often.
        let actor = format!("user-{:05}", rng.power_law(ACTORS));
        actors.insert(actor.clone());
        let request = ListEventsRequest {
            from: Some(oplog::event::timestamp_from_us(now_us - 86_400_000_000)),
            to: Some(oplog::event::timestamp_from_us(now_us + 1)),
            actor_ids: vec![actor],
            page_size: 100,
            ..Default::default()
        };
        let t = Instant::now();
        let page = client.list_events(request).await?.into_inner();
        latencies.push(t.elapsed());
        returned += page.events.len();
    }
    let total = started.elapsed();
    server_stop.cancel();
    latencies.sort();
    println!(
        "ListEvents by actor over 24 h, page size 100: {queries} queries over {} actors, {:.1} events per page, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.0} queries/s (one client)",
        actors.len(),
        returned as f64 / queries as f64,
        common::percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        common::percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        queries as f64 / total.as_secs_f64()
    );
    Ok(())
}
