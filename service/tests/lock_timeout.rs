//! A write lock held on the events table by another session for longer than the
//! statement timeout: the consumer reports not ready instead of hanging, then resumes
//! with nothing lost once the lock is released.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use oplog::config::Config;
use oplog::consumer;
use oplog::health::Readiness;
use oplog::kafka::{self, EventProducer, KafkaSettings};
use oplog::proto::OperationEvent;
use oplog::store::{MySqlStore, Store};
use oplog::telemetry::metrics::{ConsumerMetrics, IngestMetrics};
use sqlx::Connection;
use support::{event, MIDNIGHT_2026_US};
use tokio_util::sync::CancellationToken;

fn events(prefix: &str, count: usize) -> Vec<OperationEvent> {
    (0..count)
        .map(|i| event(&format!("{prefix}-{i:04}"), MIDNIGHT_2026_US + i as i64))
        .collect()
}

async fn stored(store: &MySqlStore) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM oplog_events")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn table_lock_makes_consumer_unready_then_resumes() {
    let (Some(brokers), Some(mysql_url)) = (
        support::service_var(support::KAFKA_BROKERS_VAR),
        support::service_var(support::MYSQL_URL_VAR),
    ) else {
        return;
    };
    let kafka = KafkaSettings {
        brokers,
        properties: Default::default(),
    };
    let topic = support::unique_name("oplog_lock");
    kafka::ensure_topic(&kafka, &topic, 2, 1).await.unwrap();
    kafka::ensure_topic(&kafka, &format!("{topic}.dead-letter"), 1, 1)
        .await
        .unwrap();

    let url = support::fresh_mysql_database(&mysql_url).await;
    let mut config = Config::default();
    config.mysql.url = url.clone();
    config.mysql.statement_timeout_ms = 1_000;
    config.kafka.topic = topic.clone();
    config.consumer.group_id = topic.clone();
    config.consumer.max_batch_wait_ms = 100;
    config.consumer.max_retry_backoff_ms = 500;
    let store = MySqlStore::connect(&config.mysql.settings()).await.unwrap();
    store.migrate().await.unwrap();
    let store = Arc::new(store);

    let readiness = Arc::new(Readiness::default());
    let registry = prometheus::Registry::new();
    let metrics = consumer::Metrics {
        consumer: ConsumerMetrics::register(&registry).unwrap(),
        ingest: IngestMetrics::register(&registry).unwrap(),
    };
    let stop = CancellationToken::new();
    let task = {
        let (settings, kafka, store, readiness, stop) = (
            config.consumer_settings(),
            kafka.clone(),
            store.clone() as Arc<dyn Store>,
            readiness.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            consumer::run(settings, &kafka, store, metrics, readiness, stop)
                .await
                .expect("consumer runs")
        })
    };

    let producer = EventProducer::new(&kafka, &topic, Duration::from_secs(30)).unwrap();
    producer.send(&events("before", 50)).await.unwrap();
    wait_until(
        "the first events are stored",
        Duration::from_secs(60),
        async || stored(&store).await == 50,
    )
    .await;
    assert!(readiness.check().is_ok());

    // Another session takes a write lock on the table and keeps it.
    let mut locker = sqlx::MySqlConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("LOCK TABLES oplog_events WRITE, oplog_event_details WRITE")
        .execute(&mut locker)
        .await
        .unwrap();
    producer.send(&events("during", 50)).await.unwrap();
    wait_until(
        "the consumer reports not ready",
        Duration::from_secs(30),
        async || readiness.check().is_err(),
    )
    .await;
    let reason = readiness.check().unwrap_err();
    assert!(reason.contains("consumer"), "{reason}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(readiness.check().is_err(), "still not ready while locked");

    sqlx::raw_sql("UNLOCK TABLES")
        .execute(&mut locker)
        .await
        .unwrap();
    wait_until(
        "every event is stored",
        Duration::from_secs(60),
        async || stored(&store).await == 100,
    )
    .await;
    wait_until(
        "the consumer is ready again",
        Duration::from_secs(10),
        async || readiness.check().is_ok(),
    )
    .await;
    let retries = registry
        .gather()
        .iter()
        .find(|f| f.name() == "oplog_consumer_write_retries_total")
        .map(|f| f.get_metric()[0].get_counter().get_value())
        .unwrap_or_default();
    assert!(retries >= 1.0, "the blocked write was retried");
    stop.cancel();
    task.await.unwrap();
}
