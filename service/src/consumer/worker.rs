//! The consume loop: reads messages into batches, writes them with retries, isolates
//! rows the database rejects, and pauses partitions while writes fall behind.
//!
//! Up to `writers` batches are written at once, each in its own transaction on its
//! own connection. A partition's events always go to the same writer, and a writer
//! has one batch in flight at a time, so each partition's offsets move forward in
//! order while the database works on several transactions.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::batch::Flush;
use super::context::{OplogConsumerContext, Shared};
use super::dead_letter::{DeadLetterProducer, SourceMessage};
use super::decode::{self, Rejection};
use super::{ConsumerSettings, Metrics, COMPONENT};
use crate::event::EventRecord;
use crate::health::Readiness;
use crate::kafka::CONTENT_TYPE_HEADER;
use crate::store::{OffsetUpdate, Store, StoreError, WriteSummary};

/// Maximum sleep of the loop, so that gauges stay fresh while nothing happens.
const TICK: Duration = Duration::from_secs(1);

/// How long a seek to a newly claimed partition's offset may block.
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);

/// Minimum interval between two log lines about Kafka client errors, which librdkafka
/// reports many times a second while the brokers are unreachable.
const KAFKA_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// State of one writer.
struct Writer {
    /// A batch taken for writing that is not stored yet, while no write of it runs.
    pending: Option<Flush>,
    /// The running write and the bytes of its batch.
    writing: Option<(JoinHandle<()>, usize)>,
    /// When the next write of `pending` is due; `None` means at once.
    retry_at: Option<Instant>,
    /// Delay before the next retry of a failed write.
    backoff: Duration,
    /// Whether the last write of this writer failed and has not succeeded since.
    failing: bool,
}

impl Writer {
    fn busy(&self) -> bool {
        self.pending.is_some() || self.writing.is_some()
    }
}

/// The outcome of one write, sent back by its task; `result` is `None` when the write
/// panicked.
struct Written {
    lane: usize,
    flush: Flush,
    result: Option<Result<WriteSummary, StoreError>>,
    elapsed: Duration,
}

pub(crate) struct Worker<'a> {
    settings: &'a ConsumerSettings,
    consumer: &'a StreamConsumer<OplogConsumerContext>,
    store: Arc<dyn Store>,
    shared: Arc<Shared>,
    dead_letters: DeadLetterProducer,
    metrics: Metrics,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
    writers: Vec<Writer>,
    /// Partitions this loop paused to bound memory.
    paused: BTreeSet<i32>,
    /// Reason to stop the consumer with an error, set when a write task panicked.
    pub(crate) fatal: Option<String>,
    /// Channel of the write tasks' outcomes. The loop takes the receiver while it runs.
    written_tx: mpsc::UnboundedSender<Written>,
    written_rx: Option<mpsc::UnboundedReceiver<Written>>,
    /// When the last transaction committed.
    last_commit: Instant,
    /// When unclaimed partitions are next claimed.
    claim_retry_at: Instant,
    claim_backoff: Duration,
    /// When a Kafka client error was last logged, and how many were not logged since.
    last_kafka_error_log: Option<Instant>,
    suppressed_kafka_errors: u64,
}

impl<'a> Worker<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        settings: &'a ConsumerSettings,
        consumer: &'a StreamConsumer<OplogConsumerContext>,
        store: Arc<dyn Store>,
        shared: Arc<Shared>,
        dead_letters: DeadLetterProducer,
        metrics: Metrics,
        readiness: Arc<Readiness>,
        shutdown: CancellationToken,
    ) -> Self {
        let (written_tx, written_rx) = mpsc::unbounded_channel();
        let writers = (0..settings.writers.max(1))
            .map(|_| Writer {
                pending: None,
                writing: None,
                retry_at: None,
                backoff: settings.retry_backoff,
                failing: false,
            })
            .collect();
        Self {
            settings,
            consumer,
            store,
            shared,
            dead_letters,
            metrics,
            readiness,
            shutdown,
            writers,
            paused: BTreeSet::new(),
            fatal: None,
            written_tx,
            written_rx: Some(written_rx),
            last_commit: Instant::now(),
            claim_retry_at: Instant::now(),
            claim_backoff: settings.retry_backoff,
            last_kafka_error_log: None,
            suppressed_kafka_errors: 0,
        }
    }

    fn kafka_error(&mut self, error: &rdkafka::error::KafkaError) {
        let due = self
            .last_kafka_error_log
            .is_none_or(|at| at.elapsed() >= KAFKA_ERROR_LOG_INTERVAL);
        if due {
            tracing::warn!(error = %error, suppressed = self.suppressed_kafka_errors, "kafka consumer error");
            self.last_kafka_error_log = Some(Instant::now());
            self.suppressed_kafka_errors = 0;
        } else {
            self.suppressed_kafka_errors += 1;
        }
    }

    /// Consumes until shutdown is requested.
    pub(crate) async fn consume(&mut self) {
        let consumer = self.consumer;
        let shutdown = self.shutdown.clone();
        let mut written = self.written_rx.take().expect("the loop runs once");
        loop {
            self.update_gauges();
            self.apply_backpressure();
            let wake = self.next_wake();
            let read = !self.write_in_the_way();
            tokio::select! {
                // Shutdown first: a message read after it could be pushed past one
                // that was not dead-lettered.
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = written.recv() => self.written(done).await,
                _ = tokio::time::sleep_until(wake.into()) => self.step().await,
                message = consumer.recv(), if read => match message {
                    Ok(message) => {
                        self.handle(&message).await;
                        let full = self.shared.batches().any_full(&self.settings.batch);
                        if full {
                            self.step().await;
                        }
                    }
                    Err(e) => self.kafka_error(&e),
                },
            }
        }
        self.written_rx = Some(written);
    }

    /// True while a writer's next batch has reached twice its limits and its previous
    /// one is still being written, so reading waits for that write (milliseconds).
    /// Until then the batch grows past its limits, so that the other writers keep
    /// receiving events, and it is written in parts within the limits. Pausing the
    /// partitions instead would make librdkafka drop and fetch again what it has
    /// prefetched for them, which costs far more.
    fn write_in_the_way(&self) -> bool {
        let batches = self.shared.batches();
        self.writers.iter().enumerate().any(|(lane, writer)| {
            // A failing writer's partitions are paused instead, so that the loop keeps
            // polling Kafka through a database outage.
            !writer.failing
                && writer.writing.is_some()
                && batches.lane(lane).is_overfull(&self.settings.batch)
        })
    }

    /// When the loop must act even without a message.
    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let mut wake = now + TICK;
        let batches = self.shared.batches();
        for (lane, writer) in self.writers.iter().enumerate() {
            if writer.writing.is_some() {
                continue;
            }
            let batch = batches.lane(lane);
            if writer.pending.is_some() {
                wake = wake.min(writer.retry_at.unwrap_or(now));
            } else if batch.is_full(&self.settings.batch) {
                // Filled while the writer was busy: write it now that it is free.
                wake = now;
            } else if let Some(flush_at) = batch.deadline(&self.settings.batch) {
                wake = wake.min(flush_at);
            }
        }
        drop(batches);
        if self.has_unclaimed() {
            wake = wake.min(self.claim_retry_at);
        }
        wake
    }

    /// Takes the due batches of idle writers, starts the writes that are due and
    /// retries claims that are due.
    async fn step(&mut self) {
        let now = Instant::now();
        for lane in 0..self.writers.len() {
            let writer = &self.writers[lane];
            if !writer.busy() {
                let due = {
                    let batches = self.shared.batches();
                    let batch = batches.lane(lane);
                    let limits = &self.settings.batch;
                    !batch.is_empty()
                        && (batch.is_full(limits)
                            || batch.deadline(limits).is_some_and(|at| at <= now))
                };
                if due {
                    let flush = self.take_batch(lane);
                    let writer = &mut self.writers[lane];
                    writer.pending = Some(flush);
                    writer.retry_at = None;
                }
            }
            let writer = &self.writers[lane];
            if writer.writing.is_none()
                && writer.pending.is_some()
                && writer.retry_at.is_none_or(|at| at <= now)
            {
                self.start_write(lane);
            }
        }
        if self.has_unclaimed() && self.claim_retry_at <= now {
            self.retry_claims().await;
        }
    }

    /// Adds one message to the batch, dead-lettering it first when it cannot be stored.
    async fn handle(&self, message: &BorrowedMessage<'_>) {
        // After shutdown began, nothing more is added: the batch must not pass a message
        // that an interrupted dead-letter publish left unstored.
        if self.shutdown.is_cancelled() {
            return;
        }
        let partition = message.partition();
        // Messages of a partition this consumer does not own (not claimed yet, or
        // fenced) are read again by their owner.
        if self.shared.owner(partition).is_none() {
            return;
        }
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
        let now_us = Utc::now().timestamp_micros();
        let decoded = decode::decode(
            message.payload(),
            content_type,
            &self.settings.decode,
            now_us,
        );
        let source = SourceMessage::from_message(message);
        let event = match decoded {
            Ok(record) => Some((record, source)),
            Err(rejection) => {
                if !self.dead_letter(&source, &rejection).await {
                    // Shutdown: the offset stays before this message.
                    return;
                }
                None
            }
        };
        self.shared
            .batches()
            .push(partition, message.offset(), event);
    }

    /// Publishes a rejected message to the dead-letter topic, retrying until the broker
    /// acknowledges it: the offset must not pass a message that is stored nowhere.
    /// Returns false when shutdown began first, so the message was not dead-lettered.
    async fn dead_letter(&self, source: &SourceMessage, rejection: &Rejection) -> bool {
        self.metrics
            .ingest
            .rejected
            .with_label_values(&["kafka"])
            .inc();
        let detail = rejection.to_string();
        let mut backoff = self.settings.retry_backoff;
        loop {
            let send = self.dead_letters.send(source, rejection.code(), &detail);
            let result = tokio::select! {
                _ = self.shutdown.cancelled() => return false,
                result = send => result,
            };
            match result {
                Ok(()) => break,
                Err(e) => {
                    let topic = self.dead_letters.topic();
                    let fix = match e.rdkafka_error_code() {
                        Some(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition) => {
                            "the dead-letter topic does not exist; create it"
                        }
                        _ => "check that the brokers are reachable and the topic is writable",
                    };
                    tracing::error!(
                        topic = %topic,
                        partition = source.partition,
                        offset = source.offset,
                        error = %e,
                        fix,
                        "failed to publish to the dead-letter topic; consumption waits and retries"
                    );
                    self.readiness.set_not_ready(
                        COMPONENT,
                        format!("failed to publish to the dead-letter topic {topic:?}: {fix}"),
                    );
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.settings.max_retry_backoff);
                }
            }
        }
        self.set_ready_unless_failing();
        self.metrics
            .consumer
            .dead_lettered
            .with_label_values(&[rejection.code()])
            .inc();
        tracing::warn!(
            partition = source.partition,
            offset = source.offset,
            reason = rejection.code(),
            detail = %detail,
            "message sent to the dead-letter topic"
        );
        true
    }

    /// Starts writing `lane`'s pending batch in a task of its own, so the loop goes on
    /// reading while the database works. The task reports on `written_tx`.
    fn start_write(&mut self, lane: usize) {
        let Some(mut flush) = self.writers[lane].pending.take() else {
            return;
        };
        let offsets = self.offset_updates(&mut flush);
        if offsets.is_empty() {
            // Every partition of the batch was revoked or fenced: nothing is left to
            // retry.
            self.writer_recovered(lane);
            return;
        }
        let store = self.store.clone();
        let report = self.written_tx.clone();
        let bytes = flush.bytes;
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let write = store.write_batch(&flush.records, &offsets);
            let result = std::panic::AssertUnwindSafe(write)
                .catch_unwind()
                .await
                .ok();
            let elapsed = started.elapsed();
            // The receiver is gone only when the consumer stopped without waiting.
            let _ = report.send(Written {
                lane,
                flush,
                result,
                elapsed,
            });
        });
        self.writers[lane].writing = Some((task, bytes));
    }

    /// Handles the outcome of a write: records a stored batch, or handles fenced
    /// partitions and rejected rows and writes the rest at once, or schedules a retry
    /// after a transient failure.
    async fn written(&mut self, done: Written) {
        let Written {
            lane,
            mut flush,
            result,
            elapsed,
        } = done;
        self.writers[lane].writing = None;
        self.metrics
            .ingest
            .flush_duration
            .observe(elapsed.as_secs_f64());
        let error = match result {
            Some(Ok(summary)) => {
                self.stored(lane, &flush, summary.events);
                return;
            }
            Some(Err(error)) => error,
            None => {
                // A bug: stop rather than go on without this writer's partitions.
                tracing::error!(writer = lane, events = flush.records.len(), "a batch write panicked; stopping the consumer, which resumes from the stored offsets when restarted");
                self.fatal = Some("a batch write panicked".into());
                self.shutdown.cancel();
                // finish() tries it once more before anything after it.
                self.writers[lane].pending = Some(flush);
                return;
            }
        };
        self.metrics.ingest.flush_errors.inc();
        match error {
            StoreError::Fenced { partition, .. } => self.fenced(&mut flush, partition),
            StoreError::IdReused { indexes } => {
                if !self.reused(&mut flush, &indexes).await {
                    // Shutdown: finish() writes the batch once more, and the reused
                    // ids make that write fail again, so nothing after it is written.
                    self.writers[lane].pending = Some(flush);
                    return;
                }
            }
            error if !error.is_row_rejection() || flush.records.is_empty() => {
                // Transient, or about the whole database (read-only, disk full):
                // retry the batch unchanged.
                self.schedule_retry(lane, flush, &error);
                return;
            }
            error => {
                tracing::warn!(events = flush.records.len(), error = %error, "the database rejected the batch; isolating the rejected rows");
                if let Err(error) = self.isolate_rejected(&mut flush).await {
                    self.schedule_retry(lane, flush, &error);
                    return;
                }
            }
        }
        // What is left of the batch is written at once, unless shutdown began: then
        // finish() writes it.
        let writer = &mut self.writers[lane];
        writer.pending = Some(flush);
        writer.retry_at = None;
        if !self.shutdown.is_cancelled() {
            self.start_write(lane);
        }
    }

    /// Takes the batch of writer `lane`, noting the claim each partition's events were
    /// read under.
    fn take_batch(&self, lane: usize) -> Flush {
        let mut flush = self.shared.batches().take(lane, &self.settings.batch);
        let partitions = self.shared.partitions();
        flush.owners = flush
            .next_offsets
            .keys()
            .filter_map(|p| {
                let owner = partitions.get(p)?.owner.clone()?;
                Some((*p, owner))
            })
            .collect();
        flush
    }

    /// Returns the offset updates of `flush`, after dropping the partitions whose claim
    /// is no longer the one the batch was read under (revoked, fenced, or assigned
    /// again). A new assignment starts over from the stored offset, so the old events
    /// must not move it.
    fn offset_updates(&self, flush: &mut Flush) -> Vec<OffsetUpdate> {
        let partitions: Vec<i32> = flush.next_offsets.keys().copied().collect();
        let mut updates = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let owner = self.shared.owner(partition);
            match owner {
                Some(owner) if flush.owners.get(&partition) == Some(&owner) => {
                    updates.push(OffsetUpdate {
                        consumer_group: self.settings.group_id.clone(),
                        topic: self.settings.topic.clone(),
                        partition,
                        next_offset: flush.next_offsets[&partition],
                        owner,
                    })
                }
                _ => flush.drop_partition(partition),
            }
        }
        updates
    }

    fn schedule_retry(&mut self, lane: usize, flush: Flush, error: &StoreError) {
        self.metrics.consumer.write_retries.inc();
        self.readiness
            .set_not_ready(COMPONENT, "failed to write to the database");
        let writer = &mut self.writers[lane];
        tracing::warn!(events = flush.records.len(), error = %error, backoff = ?writer.backoff, "failed to write batch; retrying");
        writer.retry_at = Some(Instant::now() + writer.backoff);
        writer.backoff = (writer.backoff * 2).min(self.settings.max_retry_backoff);
        writer.failing = true;
        writer.pending = Some(flush);
    }

    /// Clears writer `lane`'s retry state after a success, or after its failed batch
    /// was dropped whole, and marks the consumer ready when no writer is failing.
    fn writer_recovered(&mut self, lane: usize) {
        let writer = &mut self.writers[lane];
        writer.backoff = self.settings.retry_backoff;
        writer.retry_at = None;
        writer.failing = false;
        self.set_ready_unless_failing();
    }

    /// Marks the consumer ready unless a writer is retrying a failed write.
    fn set_ready_unless_failing(&self) {
        if self.writers.iter().all(|w| !w.failing) {
            self.readiness.set_ready(COMPONENT);
        }
    }

    /// Dead-letters events that reuse the time and id of a different stored event, so
    /// that the stored one is never overwritten and the rest of the batch goes on.
    async fn reused(&self, flush: &mut Flush, indexes: &[usize]) -> bool {
        for &index in indexes {
            let record = &flush.records[index];
            let rejection = reused_rejection(record);
            if !self.dead_letter(&flush.sources[index], &rejection).await {
                return false;
            }
        }
        flush.remove(indexes);
        true
    }

    /// Handles a write rejected because `partition`'s stored claim is no longer the one
    /// the batch was taken under. When this consumer's claim changed meanwhile
    /// (revoked, or assigned again), only the batch's events of the partition are
    /// dropped. Otherwise another consumer took the partition over, and this one gives
    /// it up.
    fn fenced(&self, flush: &mut Flush, partition: i32) {
        let current = self.shared.owner(partition);
        let taken_under = flush.owners.get(&partition).cloned();
        flush.drop_partition(partition);
        if current.is_none() || current != taken_under {
            return;
        }
        self.metrics.consumer.fenced_writes.inc();
        tracing::warn!(topic = %self.settings.topic, partition, "partition claimed by another consumer; dropping its buffered events");
        self.shared.partitions().remove(&partition);
        self.shared.batches().drop_partitions(&[partition]);
        let _ = self
            .metrics
            .consumer
            .lag
            .remove_label_values(&[&self.settings.topic, &partition.to_string()]);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.settings.topic, partition);
        if let Err(e) = self.consumer.pause(&tpl) {
            tracing::warn!(partition, error = %e, "failed to pause a fenced partition");
        }
    }

    /// Finds the rows the database rejects by writing ever smaller parts of the batch
    /// without offsets, dead-letters them, and leaves only the offsets in `flush`:
    /// every other row is stored by then, and storing a row twice is a no-op.
    async fn isolate_rejected(&self, flush: &mut Flush) -> Result<(), StoreError> {
        if flush.records.is_empty() {
            return Ok(());
        }
        let rejected = self.find_rejected(&flush.records).await?;
        for (index, rejection) in &rejected {
            if !self.dead_letter(&flush.sources[*index], rejection).await {
                // Shutdown: the batch stays unwritten and is consumed again.
                return Err(StoreError::Timeout(Duration::ZERO));
            }
        }
        flush.records.clear();
        flush.sources.clear();
        Ok(())
    }

    /// Writes ever smaller parts of `records` without offsets until each part is stored
    /// or is a single event the database refuses for its values or as a reused id.
    async fn find_rejected(
        &self,
        records: &[EventRecord],
    ) -> Result<Vec<(usize, Rejection)>, StoreError> {
        let mut rejected = Vec::new();
        let mut ranges = Vec::new();
        ranges.push(0..records.len());
        while let Some(range) = ranges.pop() {
            let error = match self.store.write_batch(&records[range.clone()], &[]).await {
                Ok(_) => continue,
                Err(error) => error,
            };
            let reused = matches!(error, StoreError::IdReused { .. });
            if !reused && !error.is_row_rejection() {
                return Err(error);
            }
            if range.len() > 1 {
                let middle = range.start + range.len() / 2;
                ranges.push(middle..range.end);
                ranges.push(range.start..middle);
                continue;
            }
            let record = &records[range.start];
            let rejection = if reused {
                reused_rejection(record)
            } else {
                Rejection::RejectedByDatabase(error.to_string())
            };
            rejected.push((range.start, rejection));
        }
        rejected.sort_unstable_by_key(|(index, _)| *index);
        Ok(rejected)
    }

    /// Records a batch stored by writer `lane`: positions, metrics, readiness and the
    /// commit to Kafka.
    fn stored(&mut self, lane: usize, flush: &Flush, events: u64) {
        self.writer_recovered(lane);
        self.last_commit = Instant::now();
        self.metrics.ingest.inserted.inc_by(events);
        self.metrics.ingest.batch_events.observe(events as f64);
        let mut tpl = TopicPartitionList::new();
        let mut partitions = self.shared.partitions();
        for (&partition, &next) in &flush.next_offsets {
            if let Some(state) = partitions.get_mut(&partition) {
                // A claim made since starts from what it read; leave its position.
                if state.owner.is_some() && state.owner.as_ref() == flush.owners.get(&partition) {
                    state.next = Some(next);
                }
            }
            let _ = tpl.add_partition_offset(&self.settings.topic, partition, Offset::Offset(next));
        }
        drop(partitions);
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

    fn has_unclaimed(&self) -> bool {
        self.shared.partitions().values().any(|s| s.owner.is_none())
    }

    /// Claims the partitions whose claim failed at assignment, seeks them to their
    /// stored offsets and resumes them.
    async fn retry_claims(&mut self) {
        let unclaimed: Vec<i32> = self
            .shared
            .partitions()
            .iter()
            .filter(|(_, s)| s.owner.is_none())
            .map(|(&p, _)| p)
            .collect();
        let owner = self.consumer.context().next_owner();
        let result = self
            .store
            .claim_partitions(
                &self.settings.group_id,
                &self.settings.topic,
                &unclaimed,
                &owner,
            )
            .await;
        let stored = match result {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(partitions = ?unclaimed, error = %e, "failed to claim partitions; retrying");
                self.claim_retry_at = Instant::now() + self.claim_backoff;
                self.claim_backoff = (self.claim_backoff * 2).min(self.settings.max_retry_backoff);
                return;
            }
        };
        self.claim_backoff = self.settings.retry_backoff;
        let mut resumed = TopicPartitionList::new();
        for partition in unclaimed {
            let next = stored.get(&partition).copied().flatten();
            let offset = next.map_or(Offset::Beginning, Offset::Offset);
            let seek = tokio::task::block_in_place(|| {
                self.consumer
                    .seek(&self.settings.topic, partition, offset, SEEK_TIMEOUT)
            });
            if let Err(e) = seek {
                tracing::warn!(partition, error = %e, "failed to seek a claimed partition; retrying");
                continue;
            }
            if let Some(state) = self.shared.partitions().get_mut(&partition) {
                state.owner = Some(owner.clone());
                state.next = next;
            }
            tracing::info!(topic = %self.settings.topic, partition, ?offset, "partition claimed");
            resumed.add_partition(&self.settings.topic, partition);
        }
        // Backpressure pauses them again on the next turn of the loop if it must.
        if resumed.count() > 0 {
            if let Err(e) = self.consumer.resume(&resumed) {
                tracing::warn!(error = %e, "failed to resume claimed partitions");
            }
        }
    }

    /// Pauses a failing writer's partitions once its next batch is full, and every
    /// owned partition while the buffers are over their bound. Resumes them once
    /// writes have caught up. The loop keeps polling Kafka meanwhile, so the consumer
    /// stays in its group through a database outage.
    fn apply_backpressure(&mut self) {
        let batches = self.shared.batches();
        let buffered = batches.bytes() + self.bytes_in_writers();
        let over = buffered >= self.settings.max_buffered_bytes;
        let stalled: Vec<bool> = self
            .writers
            .iter()
            .enumerate()
            .map(|(lane, w)| w.failing && batches.lane(lane).is_full(&self.settings.batch))
            .collect();
        // The usual case, checked on every message: nothing to pause or resume.
        if !over && self.paused.is_empty() && !stalled.contains(&true) {
            return;
        }
        let owned: BTreeSet<i32> = self
            .shared
            .partitions()
            .iter()
            .filter(|(_, s)| s.owner.is_some())
            .map(|(&p, _)| p)
            .collect();
        let wanted: BTreeSet<i32> = owned
            .iter()
            .copied()
            .filter(|&p| over || batches.lane_of(p).is_some_and(|lane| stalled[lane]))
            .collect();
        drop(batches);
        // Partitions no longer owned were unassigned, or paused for good by fenced().
        self.paused.retain(|p| owned.contains(p));
        let mut pause = TopicPartitionList::new();
        for p in wanted.difference(&self.paused) {
            pause.add_partition(&self.settings.topic, *p);
        }
        let mut resume = TopicPartitionList::new();
        for p in self.paused.difference(&wanted) {
            resume.add_partition(&self.settings.topic, *p);
        }
        if pause.count() > 0 {
            match self.consumer.pause(&pause) {
                Ok(()) => self
                    .paused
                    .extend(pause.elements().iter().map(|e| e.partition())),
                Err(e) => tracing::warn!(error = %e, "failed to pause partitions"),
            }
        }
        if resume.count() > 0 {
            match self.consumer.resume(&resume) {
                Ok(()) => {
                    for e in resume.elements() {
                        self.paused.remove(&e.partition());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "failed to resume partitions"),
            }
        }
        if pause.count() > 0 || resume.count() > 0 {
            tracing::info!(
                paused = pause.count(),
                resumed = resume.count(),
                buffered_bytes = buffered,
                "consumption paused or resumed for backpressure"
            );
        }
        self.metrics
            .consumer
            .paused_partitions
            .set(self.paused.len() as i64);
    }

    /// Returns the bytes of the batches that writers have taken: pending or being
    /// written.
    fn bytes_in_writers(&self) -> usize {
        self.writers
            .iter()
            .map(|w| {
                w.pending.as_ref().map_or(0, |f| f.bytes)
                    + w.writing.as_ref().map_or(0, |(_, bytes)| *bytes)
            })
            .sum()
    }

    fn update_gauges(&self) {
        let buffered = self.shared.batches().bytes() + self.bytes_in_writers();
        self.metrics.consumer.buffered_bytes.set(buffered as i64);
        self.metrics
            .consumer
            .seconds_since_commit
            .set(self.last_commit.elapsed().as_secs_f64());
    }

    /// Waits for the running writes, then writes each writer's pending and filling
    /// batches once, all within the shutdown timeout. A writer whose write fails
    /// writes nothing more: its partitions must not move past unstored events.
    pub(crate) async fn finish(&mut self) {
        let deadline = Instant::now() + self.settings.shutdown_timeout;
        let mut written = self.written_rx.take().expect("finish runs once");
        let mut failed = BTreeSet::new();
        while self.writers.iter().any(|w| w.writing.is_some()) {
            match tokio::time::timeout_at(deadline.into(), written.recv()).await {
                Ok(Some(done)) => {
                    self.writers[done.lane].writing = None;
                    match done.result {
                        Some(Ok(summary)) => self.stored(done.lane, &done.flush, summary.events),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, events = done.flush.records.len(), "failed to write buffered events at shutdown; they will be consumed again");
                            failed.insert(done.lane);
                        }
                        None => {
                            tracing::error!(writer = done.lane, "a batch write panicked at shutdown; its events will be consumed again");
                            failed.insert(done.lane);
                        }
                    }
                }
                _ => {
                    tracing::warn!("timed out writing buffered events at shutdown; they will be consumed again");
                    self.abort_writes();
                    return;
                }
            }
        }
        for lane in 0..self.writers.len() {
            if failed.contains(&lane) {
                continue;
            }
            let mut pending = self.writers[lane].pending.take();
            loop {
                let mut flush = match pending.take() {
                    Some(flush) => flush,
                    None if self.shared.batches().lane(lane).is_empty() => break,
                    None => self.take_batch(lane),
                };
                let offsets = self.offset_updates(&mut flush);
                if offsets.is_empty() {
                    continue;
                }
                let write = self.store.write_batch(&flush.records, &offsets);
                match tokio::time::timeout_at(deadline.into(), write).await {
                    Ok(Ok(summary)) => self.stored(lane, &flush, summary.events),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, events = flush.records.len(), "failed to write buffered events at shutdown; they will be consumed again");
                        break;
                    }
                    Err(_) => {
                        tracing::warn!(events = flush.records.len(), "timed out writing buffered events at shutdown; they will be consumed again");
                        return;
                    }
                }
            }
        }
    }

    /// Stops the running writes; the server rolls their transactions back.
    fn abort_writes(&mut self) {
        for writer in &mut self.writers {
            if let Some((task, _)) = writer.writing.take() {
                task.abort();
            }
        }
    }
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        self.abort_writes();
    }
}

/// Builds the dead-letter reason of an event that reuses a stored event's time and id.
fn reused_rejection(record: &EventRecord) -> Rejection {
    Rejection::EventIdReused {
        event_id: record.event_id.clone(),
        occurred_at: record
            .occurred_at()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    }
}
