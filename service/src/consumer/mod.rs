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

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

pub use batch::BatchLimits;
use batch::Flush;
use context::{OplogConsumerContext, Shared};
use dead_letter::DeadLetterProducer;

use crate::health::Readiness;
use crate::kafka::{KafkaSettings, CONTENT_TYPE_HEADER};
use crate::store::{OffsetUpdate, Store};
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
    /// Largest message value accepted; larger ones are dead-lettered.
    pub max_event_bytes: usize,
    /// Interval of librdkafka statistics, which carry the high watermarks for the lag
    /// metric.
    pub statistics_interval: Duration,
    /// Kafka session timeout of the group member.
    pub session_timeout: Duration,
    /// First delay between retries of a failed write; it doubles up to `max_retry_backoff`.
    pub retry_backoff: Duration,
    /// Maximum delay between retries of a failed write.
    pub max_retry_backoff: Duration,
    /// How long shutdown may spend writing the last batch.
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
    let shared = Arc::new(Shared::default());
    let context = OplogConsumerContext {
        store: store.clone(),
        group: settings.group_id.clone(),
        topic: settings.topic.clone(),
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
            "statistics.interval.ms",
            settings.statistics_interval.as_millis().to_string(),
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
    tracing::info!(topic = %settings.topic, group = %settings.group_id, "consumer started");

    let mut worker = Worker {
        settings: &settings,
        consumer: &consumer,
        store,
        shared,
        dead_letters,
        metrics,
        readiness,
        shutdown: shutdown.clone(),
    };
    worker.consume().await;
    worker.finish().await;
    consumer.unsubscribe();
    tracing::info!(topic = %settings.topic, group = %settings.group_id, "consumer stopped");
    Ok(())
}

struct Worker<'a> {
    settings: &'a ConsumerSettings,
    consumer: &'a StreamConsumer<OplogConsumerContext>,
    store: Arc<dyn Store>,
    shared: Arc<Shared>,
    dead_letters: DeadLetterProducer,
    metrics: Metrics,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
}

impl Worker<'_> {
    async fn consume(&mut self) {
        loop {
            let deadline = self.shared.batch().deadline(&self.settings.batch);
            let flush_due = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = flush_due => self.flush().await,
                message = self.consumer.recv() => match message {
                    Ok(message) => {
                        self.handle(&message).await;
                        if self.shared.batch().is_full(&self.settings.batch) {
                            self.flush().await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "kafka consumer error"),
                },
            }
        }
    }

    /// Adds one message to the batch, dead-lettering it first when it cannot be stored.
    async fn handle(&self, message: &BorrowedMessage<'_>) {
        self.metrics
            .ingest
            .received
            .with_label_values(&["kafka"])
            .inc();
        let content_type = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|h| h.key.eq_ignore_ascii_case(CONTENT_TYPE_HEADER))
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
        });
        let record = match decode::decode(
            message.payload(),
            content_type,
            self.settings.max_event_bytes,
        ) {
            Ok(record) => Some(record),
            Err(rejection) => {
                self.dead_letter(message, &rejection).await;
                None
            }
        };
        self.shared
            .batch()
            .push(message.partition(), message.offset(), record);
    }

    /// Publishes a rejected message to the dead-letter topic, retrying until the broker
    /// acknowledges it: the offset must not pass a message that is stored nowhere.
    async fn dead_letter(&self, message: &BorrowedMessage<'_>, rejection: &decode::Rejection) {
        self.metrics
            .ingest
            .rejected
            .with_label_values(&["kafka"])
            .inc();
        let mut backoff = self.settings.retry_backoff;
        loop {
            match self.dead_letters.send(message, rejection).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(
                        topic = %self.dead_letters.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        error = %e,
                        "failed to publish to the dead-letter topic; retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.settings.max_retry_backoff);
                }
            }
        }
        self.metrics
            .consumer
            .dead_lettered
            .with_label_values(&[rejection.code()])
            .inc();
        tracing::warn!(
            partition = message.partition(),
            offset = message.offset(),
            reason = rejection.code(),
            detail = %rejection,
            "message sent to the dead-letter topic"
        );
    }

    /// Writes the batch, retrying until it is stored or shutdown begins.
    async fn flush(&self) {
        if self.shared.batch().is_empty() {
            return;
        }
        let flush = self.shared.batch().take();
        let offsets = self.offset_updates(&flush);
        let mut backoff = self.settings.retry_backoff;
        loop {
            let started = Instant::now();
            let result = self.store.write_batch(&flush.records, &offsets).await;
            self.metrics
                .ingest
                .flush_duration
                .observe(started.elapsed().as_secs_f64());
            match result {
                Ok(summary) => {
                    self.readiness.set_ready(COMPONENT);
                    self.stored(&flush, summary.events);
                    return;
                }
                Err(e) => {
                    self.metrics.ingest.flush_errors.inc();
                    self.readiness
                        .set_not_ready(COMPONENT, "failed to write to the database");
                    tracing::warn!(events = flush.records.len(), error = %e, ?backoff, "failed to write batch; retrying");
                    tokio::select! {
                        _ = self.shutdown.cancelled() => {
                            tracing::warn!(events = flush.records.len(), "shutting down with an unwritten batch; it will be consumed again");
                            return;
                        }
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.settings.max_retry_backoff);
                }
            }
        }
    }

    fn offset_updates(&self, flush: &Flush) -> Vec<OffsetUpdate> {
        flush
            .next_offsets
            .iter()
            .map(|(&partition, &next_offset)| OffsetUpdate {
                consumer_group: self.settings.group_id.clone(),
                topic: self.settings.topic.clone(),
                partition,
                next_offset,
            })
            .collect()
    }

    /// Records a stored batch: positions, metrics and the commit to Kafka.
    fn stored(&self, flush: &Flush, events: u64) {
        self.metrics.ingest.inserted.inc_by(events);
        self.metrics.ingest.batch_events.observe(events as f64);
        let mut tpl = TopicPartitionList::new();
        let mut positions = self.shared.positions();
        for (&partition, &next) in &flush.next_offsets {
            positions.insert(partition, Some(next));
            let _ = tpl.add_partition_offset(&self.settings.topic, partition, Offset::Offset(next));
        }
        drop(positions);
        tracing::debug!(
            events,
            partitions = flush.next_offsets.len(),
            "batch stored"
        );
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            // Only lag tools read Kafka's offsets; the stored ones are authoritative.
            tracing::debug!(error = %e, "failed to commit offsets to Kafka");
        }
    }

    /// Writes what is buffered, bounded by the shutdown timeout.
    async fn finish(&self) {
        if self.shared.batch().is_empty() {
            return;
        }
        let flush = self.shared.batch().take();
        let offsets = self.offset_updates(&flush);
        let write = self.store.write_batch(&flush.records, &offsets);
        match tokio::time::timeout(self.settings.shutdown_timeout, write).await {
            Ok(Ok(summary)) => self.stored(&flush, summary.events),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "failed to write the last batch; it will be consumed again")
            }
            Err(_) => tracing::warn!("timed out writing the last batch; it will be consumed again"),
        }
    }
}
