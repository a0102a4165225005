//! Measures the pipeline on a real broker and MariaDB: how fast the consumer drains a
//! topic of generated events into MySQL, and the latency of `ListEvents` filtered by
//! actor over 24 hours through the gRPC API.
//!
//! Run with the services of `scripts/services.sh` started:
//!
//! ```text
//! eval "$(scripts/services.sh env)"
//! cargo run --release --example pipeline_bench -- 100000 2000
//! ```
//!
//! The arguments are the number of events (default 100000) and of queries (default
//! 2000). It prints one line per figure; nothing is asserted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
mod common;

use common::{generate, Rng, ACTORS};
use oplog::config::Config;
use oplog::consumer;
use oplog::health::Readiness;
use oplog::ingest::{EventSink, StoreSink};
use oplog::kafka::{self, EventProducer, KafkaSettings};
use oplog::proto::oplog_query_client::OplogQueryClient;
use oplog::proto::ListEventsRequest;
use oplog::store::{MySqlStore, Store};
use oplog::telemetry::metrics::{ConsumerMetrics, IngestMetrics};
use tokio_util::sync::CancellationToken;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let queries: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let brokers = std::env::var("OPLOG_TEST_KAFKA_BROKERS")?;
    let mysql = std::env::var("OPLOG_TEST_MYSQL_URL")?;

    let kafka = KafkaSettings {
        brokers,
        properties: Default::default(),
    };
    let topic = format!("oplog_bench_{}", std::process::id());
    kafka::ensure_topic(&kafka, &topic, 3, 1).await?;
    kafka::ensure_topic(&kafka, &format!("{topic}.dead-letter"), 1, 1).await?;

    let now_us = Utc::now().timestamp_micros();
    let generated = generate(events, now_us);
    let bytes: usize = generated.iter().map(prost::Message::encoded_len).sum();
    println!(
        "events: {events}, protobuf bytes: {bytes} ({} per event)",
        bytes / events
    );

    let producer = EventProducer::new(&kafka, &topic, Duration::from_secs(60))?;
    let started = Instant::now();
    for chunk in generated.chunks(5_000) {
        producer.send(chunk).await?;
    }
    let produce = started.elapsed();
    println!(
        "produce: {:.1} s, {:.0} events/s",
        produce.as_secs_f64(),
        events as f64 / produce.as_secs_f64()
    );

    let database = format!("oplog_bench_{}", std::process::id());
    let mut config = Config::default();
    config.mysql.url = common::fresh_database(&mysql, &database).await?;
    config.kafka.topic = topic.clone();
    config.consumer.group_id = topic.clone();
    let store = MySqlStore::connect(&config.mysql.settings()).await?;
    let store = Arc::new(store);

    let registry = prometheus::Registry::new();
    let metrics = consumer::Metrics {
        consumer: ConsumerMetrics::register(&registry)?,
        ingest: IngestMetrics::register(&registry)?,
    };
    let stop = CancellationToken::new();
    let settings = config.consumer_settings();
    let consumer_store: Arc<dyn Store> = store.clone();
    let token = stop.clone();
    let kafka_settings = kafka.clone();
    let started = Instant::now();
    let task = tokio::spawn(async move {
        consumer::run(
            settings,
            &kafka_settings,
            consumer_store,
            metrics,
            Arc::new(Readiness::default()),
            token,
        )
        .await
    });
    loop {
        let offsets = store.load_offsets(&topic, &topic).await?;
        if offsets.values().sum::<i64>() as usize >= events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain = started.elapsed();
    stop.cancel();
    task.await??;
    println!(
        "consume into MariaDB: {:.1} s, {:.0} events/s (from consumer start to the last offset stored)",
        drain.as_secs_f64(),
        events as f64 / drain.as_secs_f64()
    );

    let sink: Arc<dyn EventSink> = Arc::new(StoreSink(store.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server_stop = CancellationToken::new();
    let server_token = server_stop.clone();
    let server_store: Arc<dyn Store> = store.clone();
    tokio::spawn(async move {
        let registry = prometheus::Registry::new();
        oplog::server::serve_grpc(
            listener,
            server_store,
            sink,
            &Config::default(),
            &registry,
            server_token,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
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
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        queries as f64 / total.as_secs_f64()
    );
    if std::env::var_os("OPLOG_BENCH_KEEP").is_some() {
        println!("kept database {database}");
        return Ok(());
    }
    common::drop_database(&mysql, &database).await
}
