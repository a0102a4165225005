//! Kafka client settings and the producer used by the Append API, `oplog import` and the
//! dead-letter topic.

use std::{collections::BTreeMap, time::Duration};

use prost::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use crate::proto::OperationEvent;

/// Header naming the encoding of a message value.
pub const CONTENT_TYPE_HEADER: &str = "content-type";
/// Content type of protobuf-encoded `OperationEvent` values, the default.
pub const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";
/// Content type of `OperationEvent` values in the proto3 JSON mapping.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Errors of the Kafka clients.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The client could not be created or a request failed.
    #[error("kafka error: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// Creating a topic failed.
    #[error("failed to create topic {topic:?}: {code}")]
    CreateTopic {
        /// Topic name.
        topic: String,
        /// Error code returned by the broker.
        code: RDKafkaErrorCode,
    },
}

/// Connection settings shared by every Kafka client of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Extra librdkafka properties, such as `security.protocol` or `sasl.mechanism`.
    pub properties: BTreeMap<String, String>,
}

impl KafkaSettings {
    /// Client configuration with the brokers and the extra properties applied.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Publishes events to a topic, keyed by event id so that a redelivery of one event
/// lands in the partition of the first delivery.
#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl EventProducer {
    /// Creates an idempotent producer that waits for all in-sync replicas.
    pub fn new(
        settings: &KafkaSettings,
        topic: &str,
        timeout: Duration,
    ) -> Result<Self, KafkaError> {
        let producer = settings
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .create()?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            timeout,
        })
    }

    /// Publishes `events` and waits until the broker has acknowledged every one.
    pub async fn send(&self, events: &[OperationEvent]) -> Result<(), KafkaError> {
        let payloads: Vec<Vec<u8>> = events.iter().map(Message::encode_to_vec).collect();
        let deliveries: Vec<_> = events
            .iter()
            .zip(&payloads)
            .map(|(event, payload)| {
                let headers = OwnedHeaders::new().insert(Header {
                    key: CONTENT_TYPE_HEADER,
                    value: Some(CONTENT_TYPE_PROTOBUF),
                });
                let record = FutureRecord::to(&self.topic)
                    .key(event.event_id.as_bytes())
                    .payload(payload)
                    .headers(headers);
                self.producer.send(record, self.timeout)
            })
            .collect();
        for delivery in futures::future::join_all(deliveries).await {
            delivery.map_err(|(e, _)| e)?;
        }
        Ok(())
    }

    /// Returns the underlying producer, for raw messages such as dead letters.
    pub fn inner(&self) -> &FutureProducer {
        &self.producer
    }
}

/// Creates `topic` with `partitions` partitions unless it exists.
pub async fn ensure_topic(
    settings: &KafkaSettings,
    topic: &str,
    partitions: i32,
    replication: i32,
) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = settings.client_config().create()?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics([&new_topic], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}
