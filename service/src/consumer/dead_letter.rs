//! The dead-letter topic: messages that cannot be stored, with the original key, value
//! and headers, their source position and the reason.

use std::time::Duration;

use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;

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

/// A consumed message kept whole, so that it can be dead-lettered after the database
/// rejected its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMessage {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Message key.
    pub key: Option<Vec<u8>>,
    /// Message value.
    pub payload: Option<Vec<u8>>,
    /// Message headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl SourceMessage {
    /// Copies a consumed message.
    pub fn from_message(message: &BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }

    /// Bytes held by the copy.
    pub fn len(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        self.key.as_ref().map_or(0, Vec::len) + self.payload.as_ref().map_or(0, Vec::len) + headers
    }

    /// True when the message has no key, value or headers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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

    /// Returns the dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes `message` with the reason `code` and `detail`, and waits for the
    /// broker's acknowledgement.
    pub async fn send(
        &self,
        message: &SourceMessage,
        code: &str,
        detail: &str,
    ) -> Result<(), rdkafka::error::KafkaError> {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &message.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let partition = message.partition.to_string();
        let offset = message.offset.to_string();
        let added = [
            (REASON_HEADER, code),
            (DETAIL_HEADER, detail),
            (SOURCE_TOPIC_HEADER, message.topic.as_str()),
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
        if let Some(key) = &message.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &message.payload {
            record = record.payload(payload.as_slice());
        }
        self.producer
            .send(record, self.timeout)
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}
