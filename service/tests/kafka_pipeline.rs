//! The whole path against the real broker and MariaDB: events produced to Kafka, the
//! consumer group writing them to MySQL, and the query API reading them back.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oplog::config::Config;
use oplog::consumer::dead_letter;
use oplog::kafka::{EventProducer, KafkaSettings};
use oplog::proto::{GetEventRequest, ListEventsRequest, OperationEvent};
use oplog::store::{MySqlStore, Store};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use support::{event, unicode_event, TestServer, MIDNIGHT_2026_US};

const PARTITIONS: i32 = 3;
const EVENTS: usize = 600;

struct Pipeline {
    kafka: KafkaSettings,
    topic: String,
    dead_letter_topic: String,
    config: Config,
    store: Arc<MySqlStore>,
}

impl Pipeline {
    async fn new(brokers: String, mysql_url: &str) -> Self {
        let topic = support::create_topic(&brokers, "oplog_pipeline", PARTITIONS).await;
        let mut config = topic.config();
        config.consumer.max_batch_events = 100;
        config.consumer.max_batch_wait_ms = 200;
        config.consumer.lag_interval_ms = 200;
        config.consumer.session_timeout_ms = 6_000;
        let store = Arc::new(support::migrated_mysql_store(mysql_url).await);
        Self {
            kafka: topic.kafka,
            topic: topic.topic,
            dead_letter_topic: topic.dead_letter_topic,
            config,
            store,
        }
    }

    fn start_consumer(&self) -> support::RunningConsumer {
        support::spawn_consumer(&self.config, self.store.clone())
    }

    fn producer(&self) -> EventProducer {
        EventProducer::new(&self.kafka, &self.topic, Duration::from_secs(30)).expect("producer")
    }

    fn raw_producer(&self) -> FutureProducer {
        self.kafka.client_config().create().expect("raw producer")
    }

    async fn send_raw(&self, key: &str, payload: &[u8], content_type: Option<&str>) {
        let mut record = FutureRecord::to(&self.topic).key(key).payload(payload);
        if let Some(content_type) = content_type {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "content-type",
                value: Some(content_type),
            }));
        }
        self.raw_producer()
            .send(record, Duration::from_secs(30))
            .await
            .expect("raw message is delivered");
    }
}

/// Lists every stored event through the query API.
async fn all_events(server: &TestServer) -> Vec<OperationEvent> {
    support::list_all(
        &mut server.query_client().await,
        ListEventsRequest::default(),
    )
    .await
}

async fn wait_for_events(server: &TestServer, expected: usize) -> Vec<OperationEvent> {
    support::wait_for_events(&mut server.query_client().await, expected).await
}

fn generated_events(prefix: &str, count: usize) -> Vec<OperationEvent> {
    (0..count)
        .map(|i| {
            let mut e = event(
                &format!("{prefix}-{i:05}"),
                MIDNIGHT_2026_US + 1_000 * i as i64,
            );
            e.actor.as_mut().unwrap().id = format!("actor-{}", i % 7);
            e
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_to_mysql_to_grpc_keeps_every_field() {
    let (Some(brokers), Some(mysql_url)) = (
        support::service_var(support::KAFKA_BROKERS_VAR),
        support::service_var(support::MYSQL_URL_VAR),
    ) else {
        return;
    };
    let pipeline = Pipeline::new(brokers, &mysql_url).await;
    let server = TestServer::start(pipeline.store.clone()).await;

    // Boundary and Unicode events, the bulk, one JSON-encoded event and two bad ones.
    let mut sent = vec![
        unicode_event("unicode", MIDNIGHT_2026_US + 5),
        event("midnight", MIDNIGHT_2026_US),
        event("before-midnight", MIDNIGHT_2026_US - 1),
    ];
    sent.extend(generated_events("bulk", EVENTS));
    pipeline
        .producer()
        .send(&sent)
        .await
        .expect("produce events");
    let json_event = event("json-encoded", MIDNIGHT_2026_US + 77);
    let json = serde_json::to_vec(&json_event).unwrap();
    pipeline
        .send_raw("json-encoded", &json, Some("application/json"))
        .await;
    pipeline
        .send_raw("garbage", &[0xff, 0x00, 0xff], None)
        .await;
    let mut no_actor = event("no-actor", MIDNIGHT_2026_US);
    no_actor.actor = None;
    let no_actor = prost::Message::encode_to_vec(&no_actor);
    pipeline.send_raw("no-actor", &no_actor, None).await;
    let produced = sent.len() + 3;

    let consumer = pipeline.start_consumer();
    let stored = wait_for_events(&server, sent.len() + 1).await;
    assert_eq!(stored.len(), sent.len() + 1, "every good event is stored");

    let mut client = server.query_client().await;
    for expected in sent.iter().take(3).chain([&json_event]) {
        let got = client
            .get_event(GetEventRequest {
                event_id: expected.event_id.clone(),
            })
            .await
            .expect("GetEvent")
            .into_inner()
            .event
            .expect("event");
        assert_eq!(
            &got, expected,
            "event {} comes back unchanged",
            expected.event_id
        );
    }

    // The stored offsets account for every message, good or dead-lettered.
    let offsets = pipeline
        .store
        .load_offsets(&pipeline.topic, &pipeline.topic)
        .await
        .expect("load offsets");
    assert_eq!(offsets.values().sum::<i64>() as usize, produced);

    let dead = read_dead_letters(&pipeline, 2).await;
    let reasons: HashMap<String, String> = dead.into_iter().collect();
    assert_eq!(
        reasons.get("garbage").map(String::as_str),
        Some("undecodable")
    );
    assert_eq!(
        reasons.get("no-actor").map(String::as_str),
        Some("invalid_event")
    );

    // The lag metric reaches 0 on every partition once everything is stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lags = lag_values(&consumer.registry);
        if lags.len() == PARTITIONS as usize && lags.iter().all(|&lag| lag == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "lag did not reach 0: {lags:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    consumer.stop().await;

    // A restarted consumer resumes after the stored offsets: new events are stored,
    // old ones are not stored again.
    let later = generated_events("later", 20);
    pipeline
        .producer()
        .send(&later)
        .await
        .expect("produce more");
    let consumer = pipeline.start_consumer();
    let stored = wait_for_events(&server, sent.len() + 1 + later.len()).await;
    let unique: HashSet<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(stored.len(), sent.len() + 1 + later.len());
    assert_eq!(unique.len(), stored.len(), "no event is stored twice");
    consumer.stop().await;
}

fn lag_values(registry: &prometheus::Registry) -> Vec<i64> {
    registry
        .gather()
        .iter()
        .filter(|family| family.name() == "oplog_consumer_lag_messages")
        .flat_map(|family| {
            family
                .get_metric()
                .iter()
                .map(|m| m.get_gauge().get_value() as i64)
        })
        .collect()
}

/// Reads `count` messages of the dead-letter topic as (key, reason header) pairs.
async fn read_dead_letters(pipeline: &Pipeline, count: usize) -> Vec<(String, String)> {
    let consumer: StreamConsumer = pipeline
        .kafka
        .client_config()
        .set("group.id", support::unique_name("oplog_dead_letter_reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("dead-letter reader");
    consumer
        .subscribe(&[&pipeline.dead_letter_topic])
        .expect("subscribe");
    let mut found = Vec::new();
    while found.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("dead letters arrive in time")
            .expect("read dead letter");
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        let headers = message.headers().expect("dead letter has headers");
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(
            header(dead_letter::SOURCE_TOPIC_HEADER).as_deref(),
            Some(pipeline.topic.as_str())
        );
        assert!(header(dead_letter::SOURCE_OFFSET_HEADER).is_some());
        assert!(header(dead_letter::DETAIL_HEADER).is_some());
        found.push((key, header(dead_letter::REASON_HEADER).unwrap_or_default()));
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_partition_reports_zero_lag() {
    let (Some(brokers), Some(mysql_url)) = (
        support::service_var(support::KAFKA_BROKERS_VAR),
        support::service_var(support::MYSQL_URL_VAR),
    ) else {
        return;
    };
    let pipeline = Pipeline::new(brokers, &mysql_url).await;
    let payload = prost::Message::encode_to_vec(&event("only", MIDNIGHT_2026_US));
    let record = FutureRecord::to(&pipeline.topic)
        .key("only")
        .payload(&payload)
        .partition(0);
    pipeline
        .raw_producer()
        .send(record, Duration::from_secs(30))
        .await
        .expect("deliver to partition 0");

    let consumer = pipeline.start_consumer();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lags = lag_values(&consumer.registry);
        if lags.len() == PARTITIONS as usize && lags.iter().all(|&lag| lag == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "every partition, the empty ones too, reports lag 0: {lags:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consumer.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn append_api_publishes_to_kafka() {
    let (Some(brokers), Some(mysql_url)) = (
        support::service_var(support::KAFKA_BROKERS_VAR),
        support::service_var(support::MYSQL_URL_VAR),
    ) else {
        return;
    };
    let pipeline = Pipeline::new(brokers, &mysql_url).await;
    let sink: Arc<dyn oplog::ingest::EventSink> =
        Arc::new(oplog::ingest::KafkaSink(pipeline.producer()));
    let server = TestServer::start_with(pipeline.store.clone(), sink, Config::default()).await;
    let events = generated_events("appended", 50);
    let accepted = server
        .ingest_client()
        .await
        .append(oplog::proto::AppendRequest {
            events: events.clone(),
        })
        .await
        .expect("Append")
        .into_inner()
        .accepted;
    assert_eq!(accepted, 50);
    assert!(
        all_events(&server).await.is_empty(),
        "Append publishes to Kafka and does not write the store itself"
    );

    let consumer = pipeline.start_consumer();
    let stored = wait_for_events(&server, events.len()).await;
    assert_eq!(stored.len(), events.len());
    consumer.stop().await;
}
