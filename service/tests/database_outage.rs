//! MariaDB killed mid-stream and restarted a while later: the consumer retries without
//! end, keeps its memory under the configured bound by pausing its partitions, and
//! stores every event once after recovery.

mod support;

use std::time::{Duration, Instant};

use oplog::store::MySqlStore;
use support::{ConsumerProcess, PrivateMariaDb};

const PARTITIONS: i32 = 3;
const EVENTS: usize = 100_000;
/// The consumer's buffer bound in this test, and the resident memory it must stay under.
const MAX_BUFFERED_BYTES: usize = 16 << 20;
const MAX_RSS_KIB: u64 = 256 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn database_outage_loses_nothing_and_bounds_memory() {
    let Some(brokers) = support::service_var(support::KAFKA_BROKERS_VAR) else {
        return;
    };
    let Some(mut database) = PrivateMariaDb::start().await else {
        return;
    };
    let topic = support::create_topic(&brokers, "oplog_outage", PARTITIONS).await;
    let store = MySqlStore::connect(&support::mysql_settings(&database.url()))
        .await
        .unwrap();
    store.migrate().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "max_batch_events = 1000\nmax_buffered_bytes = {MAX_BUFFERED_BYTES}\n\
         fetch_queue_kbytes = 4096\nmax_retry_backoff_ms = 1000"
    );
    let config = support::consumer_config(
        dir.path(),
        &database.url(),
        &brokers,
        &topic.topic,
        &extra,
        "acquire_timeout_ms = 1000\nstatement_timeout_ms = 2000",
    );
    let log = dir.path().join("consumer.log");

    let producing = tokio::spawn(support::produce_stream(
        topic.kafka.clone(),
        topic.topic.clone(),
        PARTITIONS,
        EVENTS,
        None,
    ));
    let consumer = ConsumerProcess::start(&config, &log);
    tokio::time::sleep(Duration::from_secs(3)).await;

    database.kill();
    let outage = Instant::now();
    let mut peak_rss = 0;
    while outage.elapsed() < Duration::from_secs(10) {
        let (rss, _) = consumer.memory_kib();
        peak_rss = peak_rss.max(rss);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    database.restart().await;
    let produced = producing.await.unwrap();

    let store = MySqlStore::connect(&support::mysql_settings(&database.url()))
        .await
        .unwrap();
    support::wait_for_offsets(&store, &topic.topic, EVENTS, Duration::from_secs(300), &log).await;
    let (_, high_water) = consumer.memory_kib();
    let status = consumer.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");

    let rows = support::rows_per_partition(store.pool()).await;
    for partition in 0..PARTITIONS {
        let (count, distinct) = rows.get(&partition).copied().unwrap_or_default();
        assert_eq!(
            count, produced[&partition],
            "partition {partition}: every event stored"
        );
        assert_eq!(count, distinct, "partition {partition}: no duplicate");
    }
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("retrying"),
        "the consumer retried during the outage"
    );
    eprintln!(
        "outage test: {EVENTS} events, peak RSS during the outage {peak_rss} KiB, \
         process high-water mark {high_water} KiB"
    );
    assert!(
        high_water < MAX_RSS_KIB,
        "resident memory peaked at {high_water} KiB, over {MAX_RSS_KIB} KiB"
    );
}
