//! Offset ownership on both stores: a consumer that lost a partition cannot move its
//! offset, and a batch whose offset update is fenced stores none of its rows.

mod support;

use std::sync::Arc;

use oplog::event::EventRecord;
use oplog::store::{OffsetUpdate, SqliteStore, Store, StoreError};
use support::{event, MIDNIGHT_2026_US};

#[tokio::test(flavor = "multi_thread")]
async fn fencing_on_sqlite() {
    let store = SqliteStore::in_memory().await.expect("open SQLite");
    check_fencing(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fencing_on_mysql() {
    let Some(url) = support::service_var(support::MYSQL_URL_VAR) else {
        return;
    };
    let store = support::migrated_mysql_store(&url).await;
    check_fencing(Arc::new(store)).await;
}

fn update(partition: i32, next_offset: i64, owner: &str) -> OffsetUpdate {
    OffsetUpdate {
        consumer_group: "group".into(),
        topic: "topic".into(),
        partition,
        next_offset,
        owner: owner.into(),
    }
}

fn record(id: &str) -> EventRecord {
    EventRecord::from_event(&event(id, MIDNIGHT_2026_US)).unwrap()
}

async fn check_fencing(store: Arc<dyn Store>) {
    let claimed = store
        .claim_partitions("group", "topic", &[0, 1], "consumer-a")
        .await
        .expect("first claim");
    assert_eq!(claimed.get(&0), Some(&None), "nothing stored yet");
    store
        .write_batch(&[record("a-1")], &[update(0, 10, "consumer-a")])
        .await
        .expect("the owner writes");

    // Consumer B takes partition 0 over and reads A's offset.
    let claimed = store
        .claim_partitions("group", "topic", &[0], "consumer-b")
        .await
        .expect("second claim");
    assert_eq!(claimed.get(&0), Some(&Some(10)));

    let err = store
        .write_batch(&[record("a-2")], &[update(0, 20, "consumer-a")])
        .await
        .expect_err("the former owner is fenced");
    assert!(
        matches!(err, StoreError::Fenced { partition: 0, .. }),
        "{err}"
    );
    assert!(!err.is_transient());
    assert!(
        store.get_event("a-2").await.unwrap().is_none(),
        "a fenced batch stores none of its rows"
    );

    // A still owns partition 1, but one fenced partition fails the whole batch.
    let err = store
        .write_batch(
            &[record("a-3")],
            &[update(1, 5, "consumer-a"), update(0, 30, "consumer-a")],
        )
        .await
        .expect_err("fenced");
    assert!(
        matches!(err, StoreError::Fenced { partition: 0, .. }),
        "{err}"
    );
    let offsets = store.load_offsets("group", "topic").await.unwrap();
    assert_eq!(offsets.get(&1), None, "partition 1 did not move either");

    store
        .write_batch(&[record("b-1")], &[update(0, 15, "consumer-b")])
        .await
        .expect("the new owner writes");
    let err = store
        .write_batch(&[], &[update(0, 12, "consumer-b")])
        .await
        .expect_err("an offset never moves backwards");
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    let offsets = store.load_offsets("group", "topic").await.unwrap();
    assert_eq!(offsets.get(&0), Some(&15));
}
