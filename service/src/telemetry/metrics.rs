//! Prometheus metrics. Each component registers its own set under the `oplog_` prefix;
//! label values come from enums or configuration, never from error text.

use prometheus::{
    exponential_buckets, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry,
};

/// Metrics of the query API.
#[derive(Debug, Clone)]
pub struct QueryMetrics {
    /// Requests by method and gRPC status code.
    pub requests: IntCounterVec,
    /// Request duration by method.
    pub duration: HistogramVec,
}

impl QueryMetrics {
    /// Registers the query metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "oplog_query_requests_total",
                "Query API requests by method and gRPC status code.",
            ),
            &["method", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "oplog_query_duration_seconds",
                "Query API request duration by method.",
            )
            .buckets(exponential_buckets(0.0005, 2.0, 14)?),
            &["method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }
}

/// Metrics of event ingestion, shared by the consumer and the Append API.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    /// Events received, by source (`kafka`, `append`).
    pub received: IntCounterVec,
    /// Events rejected as invalid, by source.
    pub rejected: IntCounterVec,
    /// Events written to the store (a redelivered event counts again).
    pub inserted: IntCounter,
    /// Events per flushed batch.
    pub batch_events: Histogram,
    /// Duration of one batch write, transaction included.
    pub flush_duration: Histogram,
    /// Failed batch writes.
    pub flush_errors: IntCounter,
}

impl IngestMetrics {
    /// Registers the ingest metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let received = IntCounterVec::new(
            Opts::new("oplog_events_received_total", "Events received, by source."),
            &["source"],
        )?;
        let rejected = IntCounterVec::new(
            Opts::new(
                "oplog_events_rejected_total",
                "Events rejected as invalid, by source.",
            ),
            &["source"],
        )?;
        let inserted = IntCounter::new(
            "oplog_events_inserted_total",
            "Events written to the store; a redelivered event counts again.",
        )?;
        let batch_events = Histogram::with_opts(
            HistogramOpts::new("oplog_batch_events", "Events per flushed batch.")
                .buckets(exponential_buckets(1.0, 2.0, 16)?),
        )?;
        let flush_duration = Histogram::with_opts(
            HistogramOpts::new(
                "oplog_flush_duration_seconds",
                "Duration of one batch write.",
            )
            .buckets(exponential_buckets(0.001, 2.0, 15)?),
        )?;
        let flush_errors = IntCounter::new("oplog_flush_errors_total", "Failed batch writes.")?;
        registry.register(Box::new(received.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(inserted.clone()))?;
        registry.register(Box::new(batch_events.clone()))?;
        registry.register(Box::new(flush_duration.clone()))?;
        registry.register(Box::new(flush_errors.clone()))?;
        Ok(Self {
            received,
            rejected,
            inserted,
            batch_events,
            flush_duration,
            flush_errors,
        })
    }
}

/// Metrics of the Kafka consumer.
#[derive(Debug, Clone)]
pub struct ConsumerMetrics {
    /// Consumer lag per partition: high watermark minus the next stored offset.
    pub lag: IntGaugeVec,
    /// Events sent to the dead-letter topic, by reason.
    pub dead_lettered: IntCounterVec,
    /// Rebalance callbacks, by kind (`assign`, `revoke`).
    pub rebalances: IntCounterVec,
    /// Retries of batch writes after transient database errors.
    pub write_retries: IntCounter,
    /// Batch writes refused because another consumer had claimed a partition.
    pub fenced_writes: IntCounter,
    /// Partitions paused to bound memory while writes fall behind.
    pub paused_partitions: IntGauge,
    /// Bytes of events buffered in memory, written or waiting.
    pub buffered_bytes: IntGauge,
    /// Seconds since the last committed batch transaction.
    pub seconds_since_commit: Gauge,
}

impl ConsumerMetrics {
    /// Registers the consumer metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let lag = IntGaugeVec::new(
            Opts::new(
                "oplog_consumer_lag_messages",
                "High watermark minus the next offset stored in the database, per partition.",
            ),
            &["topic", "partition"],
        )?;
        let dead_lettered = IntCounterVec::new(
            Opts::new(
                "oplog_dead_lettered_total",
                "Events sent to the dead-letter topic, by reason.",
            ),
            &["reason"],
        )?;
        let rebalances = IntCounterVec::new(
            Opts::new(
                "oplog_consumer_rebalances_total",
                "Rebalance callbacks, by kind.",
            ),
            &["kind"],
        )?;
        let write_retries = IntCounter::new(
            "oplog_consumer_write_retries_total",
            "Retries of batch writes after transient database errors.",
        )?;
        let fenced_writes = IntCounter::new(
            "oplog_consumer_fenced_writes_total",
            "Batch writes refused because another consumer had claimed a partition.",
        )?;
        let paused_partitions = IntGauge::new(
            "oplog_consumer_paused_partitions",
            "Partitions paused to bound memory while writes fall behind.",
        )?;
        let buffered_bytes = IntGauge::new(
            "oplog_consumer_buffered_bytes",
            "Bytes of events buffered in memory, written or waiting.",
        )?;
        let seconds_since_commit = Gauge::new(
            "oplog_consumer_seconds_since_last_commit",
            "Seconds since the last committed batch transaction.",
        )?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(dead_lettered.clone()))?;
        registry.register(Box::new(rebalances.clone()))?;
        registry.register(Box::new(write_retries.clone()))?;
        registry.register(Box::new(fenced_writes.clone()))?;
        registry.register(Box::new(paused_partitions.clone()))?;
        registry.register(Box::new(buffered_bytes.clone()))?;
        registry.register(Box::new(seconds_since_commit.clone()))?;
        Ok(Self {
            lag,
            dead_lettered,
            rebalances,
            write_retries,
            fenced_writes,
            paused_partitions,
            buffered_bytes,
            seconds_since_commit,
        })
    }
}
