//! `oplog partitions maintain` against the real MariaDB: create and drop cycles over
//! simulated dates, rows that arrived early, inserts and a long transaction during
//! maintenance, concurrent runs and idempotence.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveTime};
use oplog::event::EventRecord;
use oplog::partitions::maintain::{self, Action, Options, RunOutcome};
use oplog::partitions::{self, partition_name};
use oplog::store::{MySqlStore, Store};
use sqlx::Connection;
use support::event;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn at_noon(text: &str) -> i64 {
    day(text)
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap())
        .and_utc()
        .timestamp_micros()
}

fn options(today: &str, ahead_days: u32, retention_days: u32) -> Options {
    Options {
        today: day(today),
        ahead_days,
        retention_days,
        dry_run: false,
        lock_wait_timeout: Duration::from_secs(1),
        max_attempts: 3,
        named_lock_timeout: Duration::from_secs(60),
        actor: "system:serviceaccount:oplog:maintenance".into(),
        create_only: false,
    }
}

/// Creates a migrated database with only the catch-all partition.
async fn fresh_store() -> Option<MySqlStore> {
    let url = support::service_var(support::MYSQL_URL_VAR)?;
    let url = support::fresh_mysql_database(&url).await;
    let store = MySqlStore::connect(&support::mysql_settings(&url))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

async fn insert(store: &MySqlStore, id: &str, date: &str) {
    let record = EventRecord::from_event(&event(id, at_noon(date))).unwrap();
    store.write_batch(&[record], &[]).await.unwrap();
}

async fn names(store: &MySqlStore, table: &str) -> Vec<String> {
    partitions::list(store.pool(), table)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect()
}

async fn rows_in(store: &MySqlStore, partition: &str) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM oplog_events PARTITION ({partition})"
    ))
    .fetch_one(store.pool())
    .await
    .unwrap()
}

fn expected_names(days: &[&str]) -> Vec<String> {
    days.iter()
        .map(|d| partition_name(day(d)))
        .chain([partitions::CATCH_ALL.to_owned()])
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_and_drop_over_simulated_dates() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let (_, report) = maintain::run(&store, &options("2026-03-10", 2, 3))
        .await
        .unwrap();
    assert_eq!(report.outcome(), RunOutcome::Success);
    let first = expected_names(&["2026-03-10", "2026-03-11", "2026-03-12"]);
    assert_eq!(names(&store, "oplog_events").await, first);
    assert_eq!(names(&store, "oplog_event_details").await, first);

    for (id, date) in [
        ("old", "2026-03-08"),
        ("d10", "2026-03-10"),
        ("d11", "2026-03-11"),
        ("d12", "2026-03-12"),
        ("later", "2026-03-20"),
    ] {
        insert(&store, id, date).await;
    }
    assert_eq!(
        rows_in(&store, "p20260310").await,
        2,
        "the first partition holds older days"
    );

    // Five days later with a retention of 3 days: everything before 03-12 goes.
    let (plan, report) = maintain::run(&store, &options("2026-03-15", 2, 3))
        .await
        .unwrap();
    assert_eq!(report.outcome(), RunOutcome::Success, "{:?}", report.left);
    let drops: Vec<&Action> = plan
        .iter()
        .filter(|a| matches!(a, Action::Drop { .. }))
        .collect();
    assert_eq!(drops.len(), 4, "two days in two tables: {plan:?}");
    let kept = expected_names(&[
        "2026-03-12",
        "2026-03-13",
        "2026-03-14",
        "2026-03-15",
        "2026-03-16",
        "2026-03-17",
    ]);
    assert_eq!(names(&store, "oplog_events").await, kept);
    assert_eq!(names(&store, "oplog_event_details").await, kept);
    for gone in ["old", "d10", "d11"] {
        assert!(
            store.get_event(gone).await.unwrap().is_none(),
            "{gone} was dropped"
        );
    }
    for kept in ["d12", "later"] {
        assert!(
            store.get_event(kept).await.unwrap().is_some(),
            "{kept} is kept"
        );
    }

    // Each drop is an oplog event of its own.
    let query = oplog::store::EventQuery {
        actions: vec!["partition.drop".into()],
        limit: 100,
        ..Default::default()
    };
    let audit = store.list_events(&query).await.unwrap();
    assert_eq!(audit.len(), 4);
    let first_drop = audit
        .iter()
        .find(|r| r.target_id == "oplog_events/p20260310")
        .expect("the drop of p20260310 is recorded");
    assert_eq!(
        first_drop.actor_id,
        "system:serviceaccount:oplog:maintenance"
    );
    assert!(
        first_drop.metadata_json.contains("\"rows\":2"),
        "{}",
        first_drop.metadata_json
    );

    // A second run plans nothing, and a dry run changes nothing.
    let (plan, _) = maintain::run(&store, &options("2026-03-15", 2, 3))
        .await
        .unwrap();
    assert!(plan.is_empty(), "idempotent: {plan:?}");
    let mut dry = options("2026-03-30", 2, 3);
    dry.dry_run = true;
    let (plan, report) = maintain::run(&store, &dry).await.unwrap();
    assert!(!plan.is_empty());
    assert!(report.done.is_empty());
    assert_eq!(
        names(&store, "oplog_events").await,
        kept,
        "a dry run changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn today_and_future_partitions_are_never_dropped() {
    let Some(store) = fresh_store().await else {
        return;
    };
    maintain::run(&store, &options("2026-05-01", 5, 1))
        .await
        .unwrap();
    // Retention of one day, planned for a day before the newest partitions.
    let (plan, _) = maintain::run(&store, &options("2026-05-03", 0, 1))
        .await
        .unwrap();
    for action in &plan {
        if let Action::Drop { less_than, .. } = action {
            assert!(
                *less_than <= day("2026-05-02"),
                "{action} would drop today or later"
            );
        }
    }
    for partition in ["p20260503", "p20260504", "p20260505", "p20260506"] {
        assert!(
            names(&store, "oplog_events")
                .await
                .contains(&partition.to_owned()),
            "{partition} is kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_that_arrived_early_move_to_their_day() {
    let Some(store) = fresh_store().await else {
        return;
    };
    maintain::run(&store, &options("2026-06-01", 0, 30))
        .await
        .unwrap();
    insert(&store, "early-1", "2026-06-03").await;
    insert(&store, "early-2", "2026-06-03").await;
    insert(&store, "early-3", "2026-06-05").await;
    assert_eq!(rows_in(&store, partitions::CATCH_ALL).await, 3);
    let (_, report) = maintain::run(&store, &options("2026-06-01", 5, 30))
        .await
        .unwrap();
    assert_eq!(report.outcome(), RunOutcome::Success);
    assert_eq!(rows_in(&store, "p20260603").await, 2);
    assert_eq!(rows_in(&store, "p20260605").await, 1);
    assert_eq!(rows_in(&store, partitions::CATCH_ALL).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn inserts_never_fail_during_maintenance() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let store = Arc::new(store);
    maintain::run(&store, &options("2026-07-01", 0, 30))
        .await
        .unwrap();
    // The writer retries transient errors as the consumer does; any other error, or a
    // batch that does not get through, fails the test.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let (mut written, mut retries) = (0, 0);
            let deadline = Instant::now() + Duration::from_secs(6);
            while Instant::now() < deadline {
                let records: Vec<EventRecord> = (0..20)
                    .map(|i| {
                        let id = format!("during-{written}-{i}");
                        EventRecord::from_event(&event(&id, at_noon("2026-07-20"))).unwrap()
                    })
                    .collect();
                loop {
                    match store.write_batch(&records, &[]).await {
                        Ok(_) => break,
                        Err(e) if e.is_transient() && retries < 100 => retries += 1,
                        Err(e) => panic!("an insert during maintenance failed: {e}"),
                    }
                }
                written += 1;
            }
            (written, retries)
        })
    };
    for today in ["2026-07-05", "2026-07-10", "2026-07-15", "2026-08-01"] {
        let (_, report) = maintain::run(&store, &options(today, 30, 20))
            .await
            .unwrap();
        assert_eq!(
            report.outcome(),
            RunOutcome::Success,
            "{today}: {:?}",
            report.left
        );
    }
    let (batches, retries) = writer.await.expect("the writer saw no lasting error");
    eprintln!("{batches} batches written during maintenance, {retries} transient retries");
    assert!(batches > 0);
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM oplog_events WHERE event_id LIKE 'during-%'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    // The events of 07-20 stay within the retention of every run above: the last one
    // drops the days before 07-12 only.
    assert_eq!(stored as usize, batches * 20, "every inserted row is there");
}

#[tokio::test(flavor = "multi_thread")]
async fn long_transaction_bounds_the_wait_and_reports_failure() {
    let Some(store) = fresh_store().await else {
        return;
    };
    maintain::run(&store, &options("2026-09-01", 0, 30))
        .await
        .unwrap();
    insert(&store, "seen", "2026-09-01").await;

    // An open transaction that has read the table holds its metadata lock.
    let url = store_url(&store).await;
    let mut reader = sqlx::MySqlConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("START TRANSACTION; SELECT COUNT(*) FROM oplog_events;")
        .execute(&mut reader)
        .await
        .unwrap();

    let mut blocked = options("2026-09-01", 3, 30);
    blocked.max_attempts = 2;
    let maintenance = {
        let store = store.clone();
        tokio::spawn(async move { maintain::run(&store, &blocked).await })
    };
    // Inserts queue behind the waiting ALTER for at most its lock wait timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    insert(&store, "meanwhile", "2026-09-01").await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "an insert waited {:?} behind the maintenance",
        started.elapsed()
    );
    let (_, report) = maintenance.await.unwrap().unwrap();
    // The transaction only read the events table: the details table's step is done,
    // the events table's is left.
    assert_eq!(report.outcome(), RunOutcome::Partial);
    assert_eq!(report.left.len(), 1);
    let (action, why) = &report.left[0];
    assert!(
        matches!(
            action,
            Action::Create {
                table: "oplog_events",
                ..
            }
        ),
        "{action}"
    );
    assert!(why.contains("gave up"), "{why}");

    sqlx::raw_sql("COMMIT").execute(&mut reader).await.unwrap();
    let (_, report) = maintain::run(&store, &options("2026-09-01", 3, 30))
        .await
        .unwrap();
    assert_eq!(report.outcome(), RunOutcome::Success, "{:?}", report.left);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_runs_take_turns() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let store = Arc::new(store);
    let run = |today: &'static str| {
        let store = store.clone();
        tokio::spawn(async move { maintain::run(&store, &options(today, 10, 30)).await })
    };
    let (a, b) = tokio::join!(run("2026-10-01"), run("2026-10-01"));
    let (plan_a, report_a) = a.unwrap().unwrap();
    let (plan_b, report_b) = b.unwrap().unwrap();
    assert_eq!(report_a.outcome(), RunOutcome::Success);
    assert_eq!(report_b.outcome(), RunOutcome::Success);
    assert!(
        plan_a.is_empty() != plan_b.is_empty(),
        "one run does the work, the other finds nothing left: {plan_a:?} / {plan_b:?}"
    );
    let days: Vec<String> = (1..=11).map(|d| format!("2026-10-{d:02}")).collect();
    let days: Vec<&str> = days.iter().map(String::as_str).collect();
    assert_eq!(names(&store, "oplog_events").await, expected_names(&days));
}

async fn store_url(store: &MySqlStore) -> String {
    let database: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let base = support::service_var(support::MYSQL_URL_VAR).unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{database}")
}

#[test]
fn zero_retention_is_rejected_by_the_command() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oplog"))
        .args(["partitions", "maintain", "--retention", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--retention"), "{err}");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oplog"))
        .args(["partitions", "maintain", "--retention=-3"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn future_today_cannot_reach_recent_data() {
    let Some(store) = fresh_store().await else {
        return;
    };
    let real_today = chrono::Utc::now().date_naive();
    let today = real_today.to_string();
    maintain::run(&store, &options(&today, 2, 30))
        .await
        .unwrap();
    let id = "recent";
    let record =
        EventRecord::from_event(&event(id, chrono::Utc::now().timestamp_micros())).unwrap();
    store.write_batch(&[record], &[]).await.unwrap();

    // A year ahead with a retention of 30 days, as a typo in --today would ask.
    let far = (real_today + chrono::Days::new(365)).to_string();
    let (plan, _) = maintain::run(&store, &options(&far, 0, 30)).await.unwrap();
    assert!(
        plan.iter().all(|a| !matches!(a, Action::Drop { .. })),
        "nothing within 30 days of the real date is dropped: {plan:?}"
    );
    assert!(store.get_event(id).await.unwrap().is_some());
}

#[test]
fn future_today_needs_dry_run() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_oplog"))
        .args(["partitions", "maintain", "--today", "2999-01-01"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--dry-run"), "{err}");
}
