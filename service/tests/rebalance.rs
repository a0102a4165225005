//! Consumers joining and leaving the group mid-stream: one consumer, then three, then
//! one again, with the two that leave stopped by SIGTERM. Every event is stored once.

mod support;

use std::time::Duration;

const PARTITIONS: i32 = 6;
const EVENTS: usize = 120_000;

#[tokio::test(flavor = "multi_thread")]
async fn joining_and_leaving_keeps_every_event_once() {
    let (Some(brokers), Some(mysql_url)) = (
        support::service_var(support::KAFKA_BROKERS_VAR),
        support::service_var(support::MYSQL_URL_VAR),
    ) else {
        return;
    };
    let fixture = support::ProcessFixture::new(
        &brokers,
        &mysql_url,
        "oplog_rebalance",
        PARTITIONS,
        "max_batch_events = 500",
    )
    .await;
    let producing = fixture.produce(PARTITIONS, EVENTS, None);
    let first = fixture.start_consumer();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let joiners = [fixture.start_consumer(), fixture.start_consumer()];
    tokio::time::sleep(Duration::from_secs(5)).await;
    for joiner in joiners {
        let status = joiner.terminate(Duration::from_secs(30));
        assert!(
            status.success(),
            "a leaving consumer exits cleanly: {status}"
        );
    }
    let produced = producing.await.unwrap();
    support::wait_for_offsets(
        &fixture.store,
        &fixture.topic.topic,
        EVENTS,
        Duration::from_secs(300),
        &fixture.log,
    )
    .await;
    let status = first.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");

    let rows = support::rows_per_partition(fixture.store.pool()).await;
    for partition in 0..PARTITIONS {
        let (count, distinct) = rows.get(&partition).copied().unwrap_or_default();
        assert_eq!(
            count, produced[&partition],
            "partition {partition}: every event stored"
        );
        assert_eq!(count, distinct, "partition {partition}: no duplicate");
    }
    let log = std::fs::read_to_string(&fixture.log).unwrap();
    assert!(log.contains("partition revoked"), "the group rebalanced");
}
