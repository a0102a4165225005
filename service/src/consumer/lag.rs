//! The lag monitor. It requests each assigned partition's high watermark from the
//! brokers on its own client, so the lag metric stays true while the consume loop is
//! blocked or its partitions are paused. It also reports missing topics and unreachable
//! brokers through readiness.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use super::context::Shared;
use crate::health::Readiness;
use crate::telemetry::metrics::ConsumerMetrics;

/// Readiness component of the topics and brokers.
const COMPONENT: &str = "kafka";

/// Maximum wait for one metadata or watermark request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Inputs of the lag monitor.
pub(crate) struct LagMonitor {
    pub client: Arc<BaseConsumer>,
    pub topic: String,
    pub dead_letter_topic: String,
    pub shared: Arc<Shared>,
    pub metrics: ConsumerMetrics,
    pub readiness: Arc<Readiness>,
    pub interval: Duration,
}

/// One round's findings, gathered on a blocking thread.
enum Round {
    /// Watermarks `(partition, low, high)` of the assigned partitions.
    Watermarks(Vec<(i32, i64, i64)>),
    /// A topic that does not exist.
    MissingTopic(String),
    /// The brokers did not respond.
    Unreachable(String),
}

impl LagMonitor {
    /// Refreshes the lag metric every interval until `shutdown` is cancelled.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let partitions: Vec<i32> = self.shared.partitions().keys().copied().collect();
            let client = self.client.clone();
            let topics = [self.topic.clone(), self.dead_letter_topic.clone()];
            let round = tokio::task::spawn_blocking(move || fetch(&client, &topics, &partitions))
                .await
                .unwrap_or_else(|e| Round::Unreachable(format!("lag task failed: {e}")));
            self.apply(round);
        }
    }

    fn apply(&self, round: Round) {
        match round {
            Round::Watermarks(watermarks) => {
                self.readiness.set_ready(COMPONENT);
                let states = self.shared.partitions();
                for (partition, low, high) in watermarks {
                    // An unclaimed partition's stored offset is not known yet.
                    let Some(state) = states.get(&partition).filter(|s| s.owner.is_some()) else {
                        continue;
                    };
                    // Without a stored offset everything retained is lag; an empty
                    // partition has low == high and so a lag of 0.
                    let next = state.next.unwrap_or(low);
                    self.metrics
                        .lag
                        .with_label_values(&[&self.topic, &partition.to_string()])
                        .set((high - next).max(0));
                }
            }
            Round::MissingTopic(topic) => {
                let reason = format!(
                    "topic {topic:?} does not exist; create it, or let the operator create it"
                );
                tracing::error!(topic = %topic, "topic does not exist; create it");
                self.readiness.set_not_ready(COMPONENT, reason);
            }
            Round::Unreachable(error) => {
                tracing::warn!(error = %error, "failed to reach the Kafka brokers");
                self.readiness
                    .set_not_ready(COMPONENT, format!("Kafka brokers unreachable: {error}"));
            }
        }
    }
}

fn fetch(client: &BaseConsumer, topics: &[String], partitions: &[i32]) -> Round {
    for topic in topics {
        let metadata = match client.fetch_metadata(Some(topic), REQUEST_TIMEOUT) {
            Ok(metadata) => metadata,
            Err(e) => return Round::Unreachable(e.to_string()),
        };
        let missing = metadata.topics().iter().any(|t| {
            t.name() == topic
                && (t.partitions().is_empty()
                    || t.error().map(RDKafkaErrorCode::from)
                        == Some(RDKafkaErrorCode::UnknownTopicOrPartition))
        });
        if missing {
            return Round::MissingTopic(topic.clone());
        }
    }
    let mut watermarks = Vec::with_capacity(partitions.len());
    for &partition in partitions {
        match client.fetch_watermarks(&topics[0], partition, REQUEST_TIMEOUT) {
            Ok((low, high)) => watermarks.push((partition, low, high)),
            Err(e) => return Round::Unreachable(e.to_string()),
        }
    }
    Round::Watermarks(watermarks)
}
