//! `kill -9` of `oplog consume` at random moments while a stream of 200,000 events
//! (with some bad ones) flows: afterwards, per partition, stored rows plus dead-lettered
//! messages equal the messages produced, and no event is stored twice.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use oplog::consumer::dead_letter;
use oplog::kafka::KafkaSettings;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::Message;

const PARTITIONS: i32 = 3;
const EVENTS: usize = 200_000;
const KILLS: usize = 10;
/// One message in this many is undecodable and must be dead-lettered.
const BAD_EVERY: usize = 997;

/// A small deterministic generator (xorshift64*) for the kill delays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_nine_loses_and_duplicates_nothing() {
    let (Some(brokers), Some(mysql_url)) = (
        support::service_var(support::KAFKA_BROKERS_VAR),
        support::service_var(support::MYSQL_URL_VAR),
    ) else {
        return;
    };
    let fixture = support::ProcessFixture::new(
        &brokers,
        &mysql_url,
        "oplog_crash",
        PARTITIONS,
        "max_batch_events = 1000",
    )
    .await;
    let producing = fixture.produce(PARTITIONS, EVENTS, Some(BAD_EVERY));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill delays seeded with {seed}");
    let mut rng = Rng(seed);
    for kill in 0..KILLS {
        let consumer = fixture.start_consumer();
        // Up to 4 s: some kills land during the rebalance after the restart, others
        // mid-batch or right after a commit.
        let delay = Duration::from_millis(200 + rng.below(3_800));
        tokio::time::sleep(delay).await;
        eprintln!("kill {} of {KILLS} after {delay:?}", kill + 1);
        consumer.kill();
    }
    let produced = producing.await.unwrap();
    let total: usize = produced.values().sum();

    let consumer = fixture.start_consumer();
    support::wait_for_offsets(
        &fixture.store,
        &fixture.topic.topic,
        total,
        Duration::from_secs(300),
        &fixture.log,
    )
    .await;
    let status = consumer.terminate(Duration::from_secs(30));
    assert!(status.success(), "a clean exit on SIGTERM: {status}");

    let rows = support::rows_per_partition(fixture.store.pool()).await;
    let bad_per_partition = dead_letters(
        &fixture.topic.kafka,
        &fixture.topic.dead_letter_topic,
        total - EVENTS + EVENTS / BAD_EVERY,
    )
    .await;
    let mut duplicates = 0;
    for partition in 0..PARTITIONS {
        let (count, distinct) = rows.get(&partition).copied().unwrap_or_default();
        duplicates += count - distinct;
        let dead = bad_per_partition.get(&partition).copied().unwrap_or(0);
        assert_eq!(
            count + dead,
            produced[&partition],
            "partition {partition}: rows {count} + dead-lettered {dead}"
        );
        assert_eq!(count, distinct, "partition {partition} has no duplicate");
    }
    let stored: usize = rows.values().map(|(count, _)| count).sum();
    let dead: usize = bad_per_partition.values().sum();
    eprintln!(
        "crash test: {total} messages produced, {KILLS} kills, {stored} rows, {dead} dead-lettered, {duplicates} duplicates"
    );
}

/// Counts the distinct source offsets in the dead-letter topic per source partition.
/// A message dead-lettered just before a crash is dead-lettered again after it, so the
/// topic can hold a message twice; its source position identifies the copies.
async fn dead_letters(kafka: &KafkaSettings, topic: &str, expected: usize) -> HashMap<i32, usize> {
    let reader: StreamConsumer = kafka
        .client_config()
        .set("group.id", support::unique_name("oplog_crash_reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    reader.subscribe(&[topic]).unwrap();
    let mut seen: HashSet<(i32, i64)> = HashSet::new();
    while seen.len() < expected {
        let message = match tokio::time::timeout(Duration::from_secs(20), reader.recv()).await {
            Ok(message) => message.unwrap(),
            Err(_) => break,
        };
        let headers = message.headers().expect("dead letters have headers");
        let header = |name: &str| -> String {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .expect("source header")
        };
        let partition: i32 = header(dead_letter::SOURCE_PARTITION_HEADER)
            .parse()
            .unwrap();
        let offset: i64 = header(dead_letter::SOURCE_OFFSET_HEADER).parse().unwrap();
        seen.insert((partition, offset));
    }
    let mut per_partition = HashMap::new();
    for (partition, _) in seen {
        *per_partition.entry(partition).or_insert(0) += 1;
    }
    per_partition
}
