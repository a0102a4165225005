//! The dead-letter topic: messages that cannot be stored, with the original bytes and
//! headers, their source position and the reason.

use std::time::Duration;

use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

use super::decode::Rejection;

/// Header with the rejection's stable code, such as `invalid_event`.
pub const REASON_HEADER: &str = "oplog-dead-letter-reason";
/// Header with the rejection in words.
pub const DETAIL_HEADER: &str = "oplog-dead-letter-detail";
/// Header with the source topic.
pub const SOURCE_TOPIC_HEADER: &str = "oplog-source-topic";
/// Header with the source partition, as decimal text.
pub const SOURCE_PARTITION_HEADER: &str = "oplog-source-partition";
/// Header with the source offset, as decimal text.
pub const SOURCE_OFFSET_HEADER: &str = "oplog-source-offset";

/// Publishes rejected messages to the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetterProducer {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl DeadLetterProducer {
    /// Creates the producer of `topic`.
    pub fn new(producer: FutureProducer, topic: &str, timeout: Duration) -> Self {
        Self {
            producer,
            topic: topic.to_owned(),
            timeout,
        }
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes `message` with `rejection` and waits for the broker's acknowledgement.
    pub async fn send(
        &self,
        message: &BorrowedMessage<'_>,
        rejection: &Rejection,
    ) -> Result<(), rdkafka::error::KafkaError> {
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter() {
                headers = headers.insert(header);
            }
        }
        let detail = rejection.to_string();
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let added = [
            (REASON_HEADER, rejection.code()),
            (DETAIL_HEADER, detail.as_str()),
            (SOURCE_TOPIC_HEADER, message.topic()),
            (SOURCE_PARTITION_HEADER, partition.as_str()),
            (SOURCE_OFFSET_HEADER, offset.as_str()),
        ];
        for (key, value) in added {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer
            .send(record, self.timeout)
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}
