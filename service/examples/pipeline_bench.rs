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
use oplog::config::Config;
use oplog::consumer;
use oplog::health::Readiness;
use oplog::ingest::{EventSink, StoreSink};
use oplog::kafka::{self, EventProducer, KafkaSettings};
use oplog::proto::oplog_query_client::OplogQueryClient;
use oplog::proto::{
    ActionType, Actor, ActorType, Change, ListEventsRequest, OperationEvent, Outcome,
    Result as ResultCode, Target,
};
use oplog::store::{MySqlStore, Store};
use oplog::telemetry::metrics::{ConsumerMetrics, IngestMetrics};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

const ACTORS: usize = 10_000;
const ACTIONS: [(&str, ActionType); 8] = [
    ("order.view", ActionType::Read),
    ("order.list", ActionType::Read),
    ("order.update", ActionType::Update),
    ("order.create", ActionType::Create),
    ("order.refund", ActionType::Update),
    ("session.login", ActionType::Login),
    ("report.export", ActionType::Export),
    ("role.grant", ActionType::Grant),
];

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A Zipf-like index in `0..n`: the inverse of a power-law CDF with exponent ~1.
    fn power_law(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (((n as f64 + 1.0).powf(u) - 1.0) as usize).min(n - 1)
    }
}

fn generate(count: usize, now_us: i64) -> Vec<OperationEvent> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let day_us = 86_400_000_000;
    (0..count)
        .map(|i| {
            let actor = rng.power_law(ACTORS);
            let (action, action_type) = ACTIONS[rng.power_law(ACTIONS.len())];
            let metadata_len = 200 + rng.below(1800) as usize;
            let filler: String =
                std::iter::repeat_n('x', metadata_len.saturating_sub(60)).collect();
            let changes = if rng.below(20) == 0 {
                vec![Change {
                    field: "status".into(),
                    before_json: "\"open\"".into(),
                    after_json: "\"closed\"".into(),
                }]
            } else {
                Vec::new()
            };
            OperationEvent {
                event_id: format!("bench-{i:09}"),
                occurred_at: Some(oplog::event::timestamp_from_us(
                    now_us - day_us + (rng.below(day_us as u64) as i64),
                )),
                service: format!("svc-{}", rng.power_law(20)),
                tenant: format!("tenant-{}", rng.power_law(50)),
                actor: Some(Actor {
                    id: format!("user-{actor:05}"),
                    r#type: ActorType::User as i32,
                    display_name: format!("User {actor}"),
                    ip: format!("198.51.100.{}", rng.below(250) + 1),
                    user_agent: "bench/1.0".into(),
                    impersonator: None,
                }),
                action: action.into(),
                action_type: action_type as i32,
                target: Some(Target {
                    r#type: "order".into(),
                    id: format!("o-{}", rng.power_law(100_000)),
                    name: String::new(),
                }),
                outcome: Some(Outcome {
                    result: if rng.below(50) == 0 {
                        ResultCode::Denied
                    } else {
                        ResultCode::Success
                    } as i32,
                    error_code: String::new(),
                    message: String::new(),
                }),
                trace_id: format!("{:016x}{:016x}", rng.next() | 1, rng.next()),
                span_id: format!("{:016x}", rng.next() | 1),
                request_id: format!("req-{i}"),
                metadata_json: format!("{{\"ticket\":\"T-{i}\",\"note\":\"{filler}\"}}"),
                changes,
                schema_version: 1,
            }
        })
        .collect()
}

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
    let mut conn = sqlx::MySqlConnection::connect(&mysql).await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {database}"))
        .execute(&mut conn)
        .await?;
    let (prefix, _) = mysql.rsplit_once('/').expect("URL has a database");
    let mut config = Config::default();
    config.mysql.url = format!("{prefix}/{database}");
    config.kafka.topic = topic.clone();
    config.consumer.group_id = topic.clone();
    let store = MySqlStore::connect(&config.mysql.settings()).await?;
    store.migrate().await?;
    oplog::partitions::create_ahead(store.pool(), Utc::now().date_naive(), 2).await?;
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
    sqlx::raw_sql(&format!("DROP DATABASE {database}"))
        .execute(&mut conn)
        .await?;
    Ok(())
}
