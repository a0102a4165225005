//! The `OplogIngest` gRPC service: validates a batch, then stores it directly (embedded
//! mode) or publishes it to Kafka.

use std::sync::Arc;

use async_trait::async_trait;
use tonic::{Request, Response, Status};

use crate::event::EventRecord;
use crate::kafka::EventProducer;
use crate::proto::oplog_ingest_server::OplogIngest;
use crate::proto::{AppendRequest, AppendResponse, OperationEvent};
use crate::store::{Store, StoreError};
use crate::telemetry::metrics::IngestMetrics;

/// Most invalid events an Append error lists; the count of the rest follows.
const MAX_LISTED_ERRORS: usize = 10;

/// Destination of accepted events.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Makes `events` durable: stored, or acknowledged by Kafka.
    async fn accept(
        &self,
        events: &[OperationEvent],
        records: &[EventRecord],
    ) -> Result<(), Status>;

    /// True when accepting an event stores it, rather than publishing it.
    fn stores_events(&self) -> bool {
        false
    }
}

/// Writes accepted events straight into a store.
pub struct StoreSink(pub Arc<dyn Store>);

#[async_trait]
impl EventSink for StoreSink {
    async fn accept(
        &self,
        events: &[OperationEvent],
        records: &[EventRecord],
    ) -> Result<(), Status> {
        match self.0.write_batch(records, &[]).await {
            Ok(_) => Ok(()),
            Err(StoreError::IdReused { indexes }) => {
                let listed: Vec<String> = indexes
                    .iter()
                    .take(MAX_LISTED_ERRORS)
                    .map(|&i| format!("events[{i}] ({:?})", events[i].event_id))
                    .collect();
                Err(Status::already_exists(format!(
                    "{} events reuse the event_id and occurred_at of a different stored event, so none was accepted: {}; give each event its own id",
                    indexes.len(),
                    listed.join(", ")
                )))
            }
            Err(e) => Err(crate::query::internal(e)),
        }
    }

    fn stores_events(&self) -> bool {
        true
    }
}

/// Publishes accepted events to the events topic.
pub struct KafkaSink(pub EventProducer);

#[async_trait]
impl EventSink for KafkaSink {
    async fn accept(
        &self,
        events: &[OperationEvent],
        _records: &[EventRecord],
    ) -> Result<(), Status> {
        self.0.send(events).await.map_err(|e| {
            tracing::error!(error = %e, events = events.len(), "failed to publish appended events");
            Status::unavailable("failed to publish the events to Kafka; retry later")
        })
    }
}

/// Accepts batches of events from producers.
pub struct IngestService {
    sink: Arc<dyn EventSink>,
    max_batch_events: usize,
    metrics: IngestMetrics,
}

impl IngestService {
    /// Creates the service writing to `sink`; a batch may hold at most `max_batch_events`.
    pub fn new(sink: Arc<dyn EventSink>, max_batch_events: usize, metrics: IngestMetrics) -> Self {
        Self {
            sink,
            max_batch_events,
            metrics,
        }
    }
}

#[tonic::async_trait]
impl OplogIngest for IngestService {
    async fn append(
        &self,
        request: Request<AppendRequest>,
    ) -> Result<Response<AppendResponse>, Status> {
        let events = request.into_inner().events;
        if events.len() > self.max_batch_events {
            return Err(Status::invalid_argument(format!(
                "the batch has {} events; at most {} are allowed, so split it",
                events.len(),
                self.max_batch_events
            )));
        }
        self.metrics
            .received
            .with_label_values(&["append"])
            .inc_by(events.len() as u64);
        let records = validate_batch(&events).inspect_err(|_| {
            self.metrics
                .rejected
                .with_label_values(&["append"])
                .inc_by(events.len() as u64);
        })?;
        self.sink.accept(&events, &records).await?;
        if self.sink.stores_events() {
            self.metrics.inserted.inc_by(events.len() as u64);
        }
        Ok(Response::new(AppendResponse {
            accepted: events.len() as u32,
        }))
    }
}

/// Validates every event; on failure lists the invalid ones by index.
fn validate_batch(events: &[OperationEvent]) -> Result<Vec<EventRecord>, Status> {
    let mut records = Vec::with_capacity(events.len());
    let mut errors = Vec::new();
    let mut invalid = 0;
    for (index, event) in events.iter().enumerate() {
        match EventRecord::from_event(event) {
            Ok(record) => records.push(record),
            Err(e) => {
                invalid += 1;
                if errors.len() < MAX_LISTED_ERRORS {
                    errors.push(format!("events[{index}] ({:?}): {e}", event.event_id));
                }
            }
        }
    }
    if invalid == 0 {
        return Ok(records);
    }
    let mut message = format!(
        "{invalid} of {} events are invalid and none was accepted: {}",
        events.len(),
        errors.join("; ")
    );
    if invalid > errors.len() {
        message.push_str(&format!("; and {} more", invalid - errors.len()));
    }
    Err(Status::invalid_argument(message))
}
