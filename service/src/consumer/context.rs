//! The consumer's rebalance and statistics callbacks.
//!
//! On assignment the consumer seeks each partition to the next offset stored in the
//! database, because the database, not Kafka, stores the committed position: it moves in
//! the same transaction as the rows. On revocation the partition's buffered events are
//! dropped; its next owner reads them again from the stored offset.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use super::batch::Batch;
use crate::store::Store;
use crate::telemetry::metrics::ConsumerMetrics;

/// State shared by the consume loop and the callbacks, which run inside `recv()` on the
/// same task, so the locks are never contended for long.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Events waiting for the next flush.
    pub batch: Mutex<Batch>,
    /// Next stored offset of each assigned partition; `None` until something of a
    /// partition that was never consumed into this database is stored.
    pub positions: Mutex<HashMap<i32, Option<i64>>>,
}

impl Shared {
    pub(crate) fn batch(&self) -> MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn positions(&self) -> MutexGuard<'_, HashMap<i32, Option<i64>>> {
        self.positions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Context of the oplog consumer.
pub(crate) struct OplogConsumerContext {
    pub store: Arc<dyn Store>,
    pub group: String,
    pub topic: String,
    pub runtime: tokio::runtime::Handle,
    pub shared: Arc<Shared>,
    pub metrics: ConsumerMetrics,
}

/// How long an assignment waits for the stored offsets before falling back to Kafka's.
const LOAD_OFFSETS_TIMEOUT: Duration = Duration::from_secs(30);

impl OplogConsumerContext {
    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        self.metrics.rebalances.with_label_values(&["assign"]).inc();
        let stored = self.load_offsets();
        let mut positions = self.shared.positions();
        let partitions: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        for partition in partitions {
            let offset = match &stored {
                Some(stored) => match stored.get(&partition) {
                    Some(&next) => Offset::Offset(next),
                    // Nothing stored yet: the partition has never been consumed into
                    // this database, so read it from its first retained message.
                    None => Offset::Beginning,
                },
                // Kafka's committed offset trails the stored one, so starting there can
                // only re-read events, which the store deduplicates.
                None => Offset::Stored,
            };
            let next = match offset {
                Offset::Offset(next) => Some(next),
                _ => None,
            };
            positions.insert(partition, next);
            tracing::info!(topic = %self.topic, partition, ?offset, "partition assigned");
            if let Err(e) = tpl.set_partition_offset(&self.topic, partition, offset) {
                tracing::error!(partition, error = %e, "failed to set the start offset");
            }
        }
        drop(positions);
        let result = match consumer.rebalance_protocol() {
            rdkafka::consumer::RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
            _ => consumer.assign(tpl),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "failed to assign partitions");
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        self.metrics.rebalances.with_label_values(&["revoke"]).inc();
        let revoked: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        self.shared.batch().drop_partitions(&revoked);
        let mut positions = self.shared.positions();
        for partition in &revoked {
            positions.remove(partition);
            let _ = self
                .metrics
                .lag
                .remove_label_values(&[&self.topic, &partition.to_string()]);
            tracing::info!(topic = %self.topic, partition, "partition revoked");
        }
        drop(positions);
        let result = match consumer.rebalance_protocol() {
            rdkafka::consumer::RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
            _ => consumer.unassign(),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "failed to unassign partitions");
        }
    }

    /// Reads the stored offsets, blocking this thread: the callback must return the
    /// positions before librdkafka starts fetching.
    fn load_offsets(&self) -> Option<HashMap<i32, i64>> {
        let load = tokio::time::timeout(
            LOAD_OFFSETS_TIMEOUT,
            self.store.load_offsets(&self.group, &self.topic),
        );
        let result = tokio::task::block_in_place(|| self.runtime.block_on(load));
        match result {
            Ok(Ok(offsets)) => Some(offsets),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "failed to load stored offsets; starting from Kafka's committed offsets");
                None
            }
            Err(_) => {
                tracing::error!(
                    "timed out loading stored offsets; starting from Kafka's committed offsets"
                );
                None
            }
        }
    }
}

impl ClientContext for OplogConsumerContext {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let positions = self.shared.positions();
        for (&partition, &next) in positions.iter() {
            let Some(stats) = topic.partitions.get(&partition) else {
                continue;
            };
            // hi_offset is -1 until the first fetch response; report nothing until then.
            if stats.hi_offset < 0 {
                continue;
            }
            // Without a stored offset, everything still retained is lag; an empty
            // partition has lo_offset == hi_offset and so a lag of 0.
            let Some(next) = next.or((stats.lo_offset >= 0).then_some(stats.lo_offset)) else {
                continue;
            };
            let lag = (stats.hi_offset - next).max(0);
            self.metrics
                .lag
                .with_label_values(&[&self.topic, &partition.to_string()])
                .set(lag);
        }
    }
}

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
