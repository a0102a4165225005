//! The MySQL schema against the real MariaDB: migrations, day partitions, UTC storage.

mod support;

use chrono::{Days, NaiveDate, Utc};
use oplog::event::EventRecord;
use oplog::partitions;
use oplog::store::{MySqlStore, Store};
use sqlx::Connection;
use support::{event, MIDNIGHT_2026_US};

async fn fresh_store() -> Option<MySqlStore> {
    let url = support::service_var(support::MYSQL_URL_VAR)?;
    let url = support::fresh_mysql_database(&url).await;
    Some(
        MySqlStore::connect(&support::mysql_settings(&url))
            .await
            .expect("connect"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_is_idempotent_and_creates_three_tables() {
    let Some(store) = fresh_store().await else {
        return;
    };
    store.migrate().await.expect("first migration");
    store.migrate().await.expect("second migration is a no-op");
    let mut tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'oplog\\_%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    tables.sort();
    assert_eq!(
        tables,
        [
            "oplog_consumer_offsets",
            "oplog_event_details",
            "oplog_events"
        ]
    );
    let charsets: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT CAST(CHARACTER_SET_NAME AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND CHARACTER_SET_NAME IS NOT NULL \
         AND COLUMN_NAME NOT IN ('trace_id', 'span_id', 'actor_ip')",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(charsets, ["utf8mb4"], "every text column is utf8mb4");
}

#[tokio::test(flavor = "multi_thread")]
async fn day_partitions_are_created_once_and_hold_their_day() {
    let Some(store) = fresh_store().await else {
        return;
    };
    store.migrate().await.unwrap();
    let today = Utc::now().date_naive();
    let created = partitions::create_ahead(store.pool(), today, 3)
        .await
        .unwrap();
    for (table, days) in &created {
        assert_eq!(days.len(), 4, "{table}: today and 3 days ahead");
    }
    let again = partitions::create_ahead(store.pool(), today, 3)
        .await
        .unwrap();
    assert!(
        again.iter().all(|(_, days)| days.is_empty()),
        "a rerun creates nothing"
    );

    for table in partitions::TABLES {
        let list = partitions::list(store.pool(), table).await.unwrap();
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        let expected: Vec<String> = (0..4)
            .map(|d| partitions::partition_name(today + Days::new(d)))
            .chain([partitions::CATCH_ALL.to_owned()])
            .collect();
        assert_eq!(names, expected, "{table}");
    }

    // An event at midnight of tomorrow lands in tomorrow's partition, one a microsecond
    // earlier in today's.
    let tomorrow = today + Days::new(1);
    let midnight_us = tomorrow
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros();
    let records = [
        EventRecord::from_event(&event("at-midnight", midnight_us)).unwrap(),
        EventRecord::from_event(&event("just-before", midnight_us - 1)).unwrap(),
    ];
    store.write_batch(&records, &[]).await.unwrap();
    assert_eq!(
        partition_of(&store, "at-midnight").await,
        partitions::partition_name(tomorrow)
    );
    assert_eq!(
        partition_of(&store, "just-before").await,
        partitions::partition_name(today)
    );
}

/// Opens a connection of its own to `store`'s database, outside the store's pool.
async fn second_connection(store: &MySqlStore) -> sqlx::MySqlConnection {
    let url = support::service_var(support::MYSQL_URL_VAR).unwrap();
    let database: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let (prefix, _) = url.rsplit_once('/').unwrap();
    sqlx::MySqlConnection::connect(&format!("{prefix}/{database}"))
        .await
        .unwrap()
}

async fn partition_of(store: &MySqlStore, event_id: &str) -> String {
    // EXPLAIN PARTITIONS shows which partition a point lookup reads.
    let (occurred_at,): (chrono::NaiveDateTime,) =
        sqlx::query_as("SELECT occurred_at FROM oplog_events WHERE event_id = ?")
            .bind(event_id)
            .fetch_one(store.pool())
            .await
            .unwrap();
    let day = occurred_at.date();
    let list = partitions::list(store.pool(), "oplog_events")
        .await
        .unwrap();
    let partition = list
        .iter()
        .find(|p| p.less_than.is_none_or(|bound| day < bound))
        .expect("some partition holds the row");
    let count: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM oplog_events PARTITION ({}) WHERE event_id = ?",
        partition.name
    ))
    .bind(event_id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(count, 1, "{event_id} is in {}", partition.name);
    partition.name.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_times_ignore_the_session_time_zone() {
    let Some(store) = fresh_store().await else {
        return;
    };
    store.migrate().await.unwrap();
    let record = EventRecord::from_event(&event("tz", MIDNIGHT_2026_US)).unwrap();
    store.write_batch(&[record], &[]).await.unwrap();

    let mut conn = second_connection(&store).await;
    sqlx::raw_sql("SET time_zone = '+05:30'")
        .execute(&mut conn)
        .await
        .unwrap();
    let text: String = sqlx::query_scalar(
        "SELECT CAST(occurred_at AS CHAR) FROM oplog_events WHERE event_id = 'tz'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(text, "2026-01-01 00:00:00.000000");
    let got = store.get_event("tz").await.unwrap().expect("stored");
    assert_eq!(got.occurred_at_us, MIDNIGHT_2026_US);
}

#[tokio::test(flavor = "multi_thread")]
async fn four_byte_text_at_the_column_limit_is_stored_whole() {
    let Some(store) = fresh_store().await else {
        return;
    };
    store.migrate().await.unwrap();
    let mut e = event("wide", MIDNIGHT_2026_US);
    // 255 bytes would split a 4-byte character; 252 bytes is 63 crabs.
    e.actor.as_mut().unwrap().id = "🦀".repeat(63);
    e.action = "😀".repeat(32);
    let record = EventRecord::from_event(&e).unwrap();
    store
        .write_batch(std::slice::from_ref(&record), &[])
        .await
        .unwrap();
    let got = store.get_event("wide").await.unwrap().expect("stored");
    assert_eq!(got.actor_id, record.actor_id);
    assert_eq!(got.action, record.action);
}

#[test]
fn partition_names_sort_by_day() {
    let a = partitions::partition_name(NaiveDate::from_ymd_opt(2026, 9, 30).unwrap());
    let b = partitions::partition_name(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap());
    assert!(a < b);
}

#[tokio::test(flavor = "multi_thread")]
async fn reuse_by_a_concurrent_transaction_is_caught() {
    let Some(store) = fresh_store().await else {
        return;
    };
    store.migrate().await.unwrap();
    let store = std::sync::Arc::new(store);
    let first = EventRecord::from_event(&event("shared-id", MIDNIGHT_2026_US)).unwrap();
    let mut other_event = event("shared-id", MIDNIGHT_2026_US);
    other_event.action = "order.cancel".into();
    let other = EventRecord::from_event(&other_event).unwrap();

    // Another writer inserts the first event and keeps its transaction open.
    let mut writer = second_connection(&store).await;
    let mut tx = sqlx::Connection::begin(&mut writer).await.unwrap();
    // The details row is left out: the race is decided on the events table.
    sqlx::query(
        "INSERT INTO oplog_events (occurred_at, event_id, service, actor_id, actor_type, action, \
         action_type, result, content_hash) VALUES (?, ?, 'billing', 'alice', 1, 'order.refund', 3, 1, ?)",
    )
    .bind(first.occurred_at().naive_utc())
    .bind(&first.event_id)
    .bind(first.content_hash().as_slice())
    .execute(&mut *tx)
    .await
    .unwrap();

    let racing = {
        let store = store.clone();
        let other = other.clone();
        tokio::spawn(async move { store.write_batch(&[other], &[]).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    tx.commit().await.unwrap();
    let result = racing.await.unwrap();
    assert!(
        matches!(result, Err(oplog::store::StoreError::IdReused { ref indexes }) if indexes == &[0]),
        "{result:?}"
    );
    let (action,): (String,) = sqlx::query_as(
        "SELECT CAST(action AS CHAR) FROM oplog_events WHERE event_id = 'shared-id'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(action, "order.refund", "the first event is kept unchanged");
}
