//! Bad input of every kind mixed into good traffic, against the real broker and
//! MariaDB: each bad message lands in the dead-letter topic with its reason, every good
//! event is stored, and no partition stalls.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use oplog::consumer::dead_letter;
use oplog::kafka::KafkaSettings;
use oplog::proto::{Change, OperationEvent};
use oplog::store::Store;
use prost::Message as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use support::event;

const GOOD: usize = 300;
const MAX_EVENT_BYTES: usize = 32 * 1024;

/// A message to publish: key, value, content type.
type Raw = (String, Vec<u8>, Option<&'static str>);

fn recent_event(id: &str) -> OperationEvent {
    event(id, Utc::now().timestamp_micros() - 3_600_000_000)
}

fn protobuf(id: &str, edit: impl FnOnce(&mut OperationEvent)) -> Raw {
    let mut e = recent_event(id);
    edit(&mut e);
    (id.to_owned(), e.encode_to_vec(), None)
}

/// Builds every kind of bad message, keyed `bad-<n>`, with the reason expected for it.
fn bad_messages() -> Vec<(Raw, &'static str)> {
    let now_us = Utc::now().timestamp_micros();
    vec![
        (
            ("bad-1".into(), vec![0xff, 0xff, 0xff, 0x01], None),
            "undecodable",
        ),
        (
            (
                "bad-2".into(),
                b"{\"eventId\": ".to_vec(),
                Some("application/json"),
            ),
            "undecodable",
        ),
        (("bad-3".into(), Vec::new(), None), "empty_payload"),
        (
            ("bad-4".into(), b"a,b,c".to_vec(), Some("text/csv")),
            "unsupported_content_type",
        ),
        (protobuf("bad-5", |e| e.actor = None), "invalid_event"),
        (
            protobuf("bad-6", |e| {
                e.occurred_at.as_mut().unwrap().nanos = 2_000_000_000
            }),
            "invalid_event",
        ),
        (
            protobuf("bad-7", |e| e.occurred_at.as_mut().unwrap().seconds = -5),
            "invalid_event",
        ),
        (
            protobuf("bad-8", |e| e.action = "a".repeat(129)),
            "invalid_event",
        ),
        (
            protobuf("bad-9", |e| e.actor.as_mut().unwrap().id = "😀".repeat(64)),
            "invalid_event",
        ),
        (
            protobuf("bad-10", |e| e.metadata_json = "{\"unclosed\": ".into()),
            "invalid_event",
        ),
        (
            protobuf("bad-11", |e| e.metadata_json = "[1, 2, 3]".into()),
            "invalid_event",
        ),
        (
            protobuf("bad-12", |e| {
                e.changes = (0..40)
                    .map(|i| Change {
                        field: format!("f{i}"),
                        before_json: format!("\"{}\"", "x".repeat(1000)),
                        after_json: String::new(),
                    })
                    .collect()
            }),
            "too_large",
        ),
        (
            protobuf("bad-13", |e| {
                e.occurred_at = Some(support::ts(now_us + 2 * 3_600_000_000))
            }),
            "too_far_in_future",
        ),
        (
            protobuf("bad-14", |e| {
                e.occurred_at = Some(support::ts(now_us - 31 * 86_400_000_000))
            }),
            "older_than_retention",
        ),
        // Valid for oplog, refused by a CHECK constraint this test adds to the table.
        (
            protobuf("bad-15", |e| e.action = "poison.row".into()),
            "rejected_by_database",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_message_is_dead_lettered_with_its_reason() {
    let (Some(brokers), Some(mysql_url)) = (
        support::service_var(support::KAFKA_BROKERS_VAR),
        support::service_var(support::MYSQL_URL_VAR),
    ) else {
        return;
    };
    let topic = support::create_topic(&brokers, "oplog_poison", 3).await;
    let store = support::migrated_mysql_store(&mysql_url).await;
    sqlx::raw_sql(
        "ALTER TABLE oplog_events ADD CONSTRAINT poison_row CHECK (action <> 'poison.row')",
    )
    .execute(store.pool())
    .await
    .expect("add the CHECK constraint");
    let store = Arc::new(store);

    // Bad messages spread among the good ones, so they share batches.
    let bad = bad_messages();
    let mut messages: Vec<Raw> = Vec::new();
    let good: Vec<OperationEvent> = (0..GOOD)
        .map(|i| recent_event(&format!("good-{i:04}")))
        .collect();
    for (i, event) in good.iter().enumerate() {
        messages.push((event.event_id.clone(), event.encode_to_vec(), None));
        if i % 20 == 0 {
            if let Some((raw, _)) = bad.get(i / 20) {
                messages.push(raw.clone());
            }
        }
    }
    assert_eq!(
        messages.len(),
        GOOD + bad.len(),
        "every bad message is published"
    );
    // A redelivery of a stored event is stored once and is not dead-lettered; a
    // different event with the same time and id is dead-lettered.
    messages.push((good[7].event_id.clone(), good[7].encode_to_vec(), None));
    let mut reused = good[5].clone();
    reused.action = "order.other".into();
    messages.push(("bad-reused".into(), reused.encode_to_vec(), None));
    let producer: FutureProducer = topic.kafka.client_config().create().unwrap();
    for (key, value, content_type) in &messages {
        let mut record = FutureRecord::to(&topic.topic)
            .key(key.as_str())
            .payload(value.as_slice());
        if let Some(content_type) = content_type {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "content-type",
                value: Some(*content_type),
            }));
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .unwrap();
    }

    let mut config = topic.config();
    config.consumer.max_batch_wait_ms = 200;
    config.consumer.max_event_bytes = MAX_EVENT_BYTES;
    config.mysql.retention_days = 30;
    let consumer = support::spawn_consumer(&config, store.clone());
    let dead = read_dead_letters(&topic.kafka, &topic.dead_letter_topic, bad.len() + 1).await;
    let mut expected: BTreeMap<String, &str> = bad
        .iter()
        .map(|((key, _, _), reason)| (key.clone(), *reason))
        .collect();
    expected.insert("bad-reused".into(), "event_id_reused");
    let got: BTreeMap<String, &str> = dead.iter().map(|(k, r)| (k.clone(), r.as_str())).collect();
    assert_eq!(got, expected, "each bad message with its reason");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let offsets = store
            .load_offsets(&topic.topic, &topic.topic)
            .await
            .unwrap();
        if offsets.values().sum::<i64>() as usize == messages.len() {
            break;
        }
        assert!(Instant::now() < deadline, "offsets stalled at {offsets:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    consumer.stop().await;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM oplog_events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        stored as usize, GOOD,
        "every good event is stored, no bad one"
    );
    for i in [0, 1, 19, 20, 21, GOOD - 1] {
        let id = format!("good-{i:04}");
        assert!(
            store.get_event(&id).await.unwrap().is_some(),
            "{id} is stored"
        );
    }
}

/// Reads dead letters until `count` distinct keys are seen; returns (key, reason).
async fn read_dead_letters(
    kafka: &KafkaSettings,
    topic: &str,
    count: usize,
) -> Vec<(String, String)> {
    let reader: StreamConsumer = kafka
        .client_config()
        .set("group.id", support::unique_name("oplog_poison_reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[topic]).unwrap();
    let mut found: HashMap<String, String> = HashMap::new();
    while found.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(60), reader.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {count} dead letters arrived: {found:?}",
                    found.len()
                )
            })
            .expect("read a dead letter");
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        let headers = message.headers().expect("dead letters have headers");
        let reason = headers
            .iter()
            .find(|h| h.key == dead_letter::REASON_HEADER)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .expect("reason header");
        let offset = headers
            .iter()
            .find(|h| h.key == dead_letter::SOURCE_OFFSET_HEADER)
            .and_then(|h| h.value);
        assert!(offset.is_some(), "{key} has its source offset");
        found.insert(key, reason);
    }
    found.into_iter().collect()
}
