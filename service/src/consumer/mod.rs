//! `oplog consume`: the Kafka consumer group that stores events in batches.
//!
//! Each batch is written in one transaction together with the next offset of every
//! partition it covers, so after a crash the consumer resumes exactly after the last
//! stored event. Offsets are also committed to Kafka after each transaction, only so
//! that standard lag tools see the group.

mod batch;
mod context;
pub mod dead_letter;
pub mod decode;
mod lag;
mod worker;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio_util::sync::CancellationToken;

pub use batch::BatchLimits;
use context::{OplogConsumerContext, Shared};
use dead_letter::DeadLetterProducer;
pub use decode::DecodeLimits;

use crate::health::Readiness;
use crate::kafka::KafkaSettings;
use crate::store::Store;
use crate::telemetry::metrics::{ConsumerMetrics, IngestMetrics};

/// Readiness component name of the consumer.
const COMPONENT: &str = "consumer";

/// Settings of `oplog consume`.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Topic the services publish events to.
    pub topic: String,
    /// Kafka consumer group; also the key of the stored offsets.
    pub group_id: String,
    /// Topic that receives messages that cannot be stored.
    pub dead_letter_topic: String,
    /// When a batch is written.
    pub batch: BatchLimits,
    /// Batches written at once, each in its own transaction. A partition's batches
    /// are always written by the same writer, in order, so a consumer uses at most as
    /// many writers as it has partitions.
    pub writers: usize,
    /// Limits a message must meet to be stored.
    pub decode: DecodeLimits,
    /// Bytes of buffered events (the batches being written and those filling) above
    /// which the consumer pauses its partitions.
    pub max_buffered_bytes: usize,
    /// Kilobytes librdkafka may prefetch per partition
    /// (`queued.max.messages.kbytes`).
    pub fetch_queue_kbytes: usize,
    /// Interval at which the lag metric is refreshed from the brokers' high watermarks.
    pub lag_interval: Duration,
    /// Kafka session timeout of the group member.
    pub session_timeout: Duration,
    /// First delay between retries of a failed write; it doubles up to
    /// `max_retry_backoff`.
    pub retry_backoff: Duration,
    /// Maximum delay between retries of a failed write.
    pub max_retry_backoff: Duration,
    /// How long shutdown may spend writing the buffered events.
    pub shutdown_timeout: Duration,
}

/// Metrics the consumer updates.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Consumer-specific metrics.
    pub consumer: ConsumerMetrics,
    /// Ingest metrics shared with the Append API.
    pub ingest: IngestMetrics,
}

/// Errors that stop the consumer.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The Kafka client failed.
    #[error("kafka error: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A batch write failed in a way the consumer cannot recover from; a restart
    /// resumes from the stored offsets.
    #[error("the consumer stopped: {0}")]
    Stopped(String),
}

/// Consumes `settings.topic` into `store` until `shutdown` is cancelled.
pub async fn run(
    settings: ConsumerSettings,
    kafka: &KafkaSettings,
    store: Arc<dyn Store>,
    metrics: Metrics,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    let shared = Arc::new(Shared::new(settings.writers));
    let context = OplogConsumerContext {
        store: store.clone(),
        group: settings.group_id.clone(),
        topic: settings.topic.clone(),
        instance: instance_name(),
        claims: AtomicU64::new(0),
        runtime: tokio::runtime::Handle::current(),
        shared: shared.clone(),
        metrics: metrics.consumer.clone(),
    };
    let consumer: StreamConsumer<OplogConsumerContext> = kafka
        .client_config()
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set(
            "session.timeout.ms",
            settings.session_timeout.as_millis().to_string(),
        )
        .set(
            "queued.max.messages.kbytes",
            settings.fetch_queue_kbytes.to_string(),
        )
        .create_with_context(context)?;
    let producer = kafka
        .client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    let dead_letters = DeadLetterProducer::new(
        producer,
        &settings.dead_letter_topic,
        Duration::from_secs(30),
    );
    consumer.subscribe(&[&settings.topic])?;
    readiness.set_ready(COMPONENT);
    let monitor = lag::LagMonitor {
        client: Arc::new(
            kafka
                .client_config()
                .set("group.id", format!("{}.lag-monitor", settings.group_id))
                .create()?,
        ),
        topic: settings.topic.clone(),
        dead_letter_topic: settings.dead_letter_topic.clone(),
        shared: shared.clone(),
        metrics: metrics.consumer.clone(),
        readiness: readiness.clone(),
        interval: settings.lag_interval,
    };
    let monitor_stop = shutdown.child_token();
    let monitor_task = tokio::spawn(monitor.run(monitor_stop.clone()));
    tracing::info!(topic = %settings.topic, group = %settings.group_id, "consumer started");

    let mut worker = worker::Worker::new(
        &settings,
        &consumer,
        store,
        shared,
        dead_letters,
        metrics,
        readiness,
        shutdown,
    );
    worker.consume().await;
    worker.finish().await;
    let fatal = worker.fatal.take();
    drop(worker);
    monitor_stop.cancel();
    let _ = monitor_task.await;
    consumer.unsubscribe();
    tracing::info!(topic = %settings.topic, group = %settings.group_id, "consumer stopped");
    match fatal {
        Some(reason) => Err(ConsumerError::Stopped(reason)),
        None => Ok(()),
    }
}

/// Returns a name unique to this process, for claim tokens: host, process id and a
/// random part.
fn instance_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    let host: String = host.chars().take(64).collect();
    let random = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[20..])
}
