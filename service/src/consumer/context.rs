//! The consumer's rebalance callback.
//!
//! On assignment the consumer claims each partition in the database and seeks it to the
//! stored next offset. The database, not Kafka, stores the committed position, because
//! it moves in the same transaction as the rows, and only for the partition's owner. On
//! revocation the partition's buffered events are dropped; its next owner reads them
//! again from the stored offset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::batch::Batches;
use crate::store::Store;
use crate::telemetry::metrics::ConsumerMetrics;

/// State of one assigned partition in this consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionState {
    /// Token of this consumer's claim; `None` while the claim has not succeeded, and the
    /// partition stays paused until it does.
    pub owner: Option<String>,
    /// Next offset stored in the database; `None` while nothing of it is stored.
    pub next: Option<i64>,
}

/// State shared by the consume loop and the callbacks, which run inside `recv()` on the
/// same task, so the locks are never contended for long.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Events waiting for the next flush, one batch per writer.
    pub batches: Mutex<Batches>,
    /// Assigned partitions.
    pub partitions: Mutex<HashMap<i32, PartitionState>>,
}

impl Shared {
    /// State for a consumer with `writers` concurrent writes.
    pub(crate) fn new(writers: usize) -> Self {
        Self {
            batches: Mutex::new(Batches::new(writers)),
            partitions: Mutex::default(),
        }
    }

    pub(crate) fn batches(&self) -> MutexGuard<'_, Batches> {
        self.batches.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn partitions(&self) -> MutexGuard<'_, HashMap<i32, PartitionState>> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the claim token of `partition` when this consumer owns it.
    pub(crate) fn owner(&self, partition: i32) -> Option<String> {
        self.partitions()
            .get(&partition)
            .and_then(|state| state.owner.clone())
    }
}

/// Context of the oplog consumer.
pub(crate) struct OplogConsumerContext {
    pub store: Arc<dyn Store>,
    pub group: String,
    pub topic: String,
    /// Prefix of claim tokens: host, process and a random part, unique per process.
    pub instance: String,
    pub claims: AtomicU64,
    pub runtime: tokio::runtime::Handle,
    pub shared: Arc<Shared>,
    pub metrics: ConsumerMetrics,
}

/// How long an assignment waits for its claim before it pauses the partitions and lets
/// the consume loop retry.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(10);

impl OplogConsumerContext {
    /// Returns a new claim token.
    pub(crate) fn next_owner(&self) -> String {
        let n = self.claims.fetch_add(1, Ordering::Relaxed);
        format!("{}/{n}", self.instance)
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        self.metrics.rebalances.with_label_values(&["assign"]).inc();
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        let owner = self.next_owner();
        let claimed = self.claim(&partitions, &owner);
        let mut unclaimed = TopicPartitionList::new();
        let mut states = self.shared.partitions();
        for &partition in &partitions {
            let (state, offset) = match &claimed {
                Some(stored) => {
                    let next = stored.get(&partition).copied().flatten();
                    // Nothing stored yet: the partition has never been consumed into
                    // this database, so read it from its first retained message.
                    let offset = next.map_or(Offset::Beginning, Offset::Offset);
                    let state = PartitionState {
                        owner: Some(owner.clone()),
                        next,
                    };
                    (state, offset)
                }
                None => {
                    unclaimed.add_partition(&self.topic, partition);
                    let state = PartitionState {
                        owner: None,
                        next: None,
                    };
                    (state, Offset::Stored)
                }
            };
            tracing::info!(topic = %self.topic, partition, ?offset, claimed = state.owner.is_some(), "partition assigned");
            if let Err(e) = tpl.set_partition_offset(&self.topic, partition, offset) {
                tracing::error!(partition, error = %e, "failed to set the start offset");
            }
            states.insert(partition, state);
        }
        drop(states);
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
            _ => consumer.assign(tpl),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "failed to assign partitions");
        }
        // Unclaimed partitions wait, paused, until the consume loop claims them and
        // seeks them to their stored offsets.
        if unclaimed.count() > 0 {
            if let Err(e) = consumer.pause(&unclaimed) {
                tracing::error!(error = %e, "failed to pause unclaimed partitions");
            }
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        self.metrics.rebalances.with_label_values(&["revoke"]).inc();
        let revoked: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        // A batch already taken for writing is checked against the claims before each
        // write, so only the batches being filled need the revoked events dropped.
        self.shared.batches().drop_partitions(&revoked);
        let mut states = self.shared.partitions();
        for partition in &revoked {
            states.remove(partition);
            let _ = self
                .metrics
                .lag
                .remove_label_values(&[&self.topic, &partition.to_string()]);
            tracing::info!(topic = %self.topic, partition, "partition revoked");
        }
        drop(states);
        let result = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
            _ => consumer.unassign(),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "failed to unassign partitions");
        }
    }

    /// Claims `partitions`, blocking this thread: the callback must return the start
    /// positions before librdkafka starts fetching.
    fn claim(&self, partitions: &[i32], owner: &str) -> Option<HashMap<i32, Option<i64>>> {
        if partitions.is_empty() {
            return Some(HashMap::new());
        }
        let claim = tokio::time::timeout(
            CLAIM_TIMEOUT,
            self.store
                .claim_partitions(&self.group, &self.topic, partitions, owner),
        );
        match tokio::task::block_in_place(|| self.runtime.block_on(claim)) {
            Ok(Ok(offsets)) => Some(offsets),
            Ok(Err(e)) => {
                tracing::warn!(?partitions, error = %e, "failed to claim partitions; they stay paused until a retry succeeds");
                None
            }
            Err(_) => {
                tracing::warn!(
                    ?partitions,
                    "timed out claiming partitions; they stay paused until a retry succeeds"
                );
                None
            }
        }
    }
}

impl ClientContext for OplogConsumerContext {}

impl ConsumerContext for OplogConsumerContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, tpl),
            other => {
                tracing::error!(error = ?other, "rebalance failed");
                if let Err(e) = consumer.unassign() {
                    tracing::error!(error = %e, "failed to unassign partitions");
                }
            }
        }
    }
}
