//! Public sample records of real products (Kubernetes audit logs and AWS CloudTrail)
//! through the whole path: import mapping, Kafka, the consumer, MariaDB and the query
//! API. The samples live outside the repository, in `shared/data/real-audit` beside the
//! checkout; where that folder is absent the test prints so and fails under `CI=true`.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oplog::import::{self, Format, RecordOutcome};
use oplog::kafka::EventProducer;
use oplog::proto::{
    ActionType, ActorType, ListEventsRequest, OperationEvent, Result as ResultCode,
};
use support::{list_all as list, wait_for_events, TestServer};

fn samples_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/real-audit");
    if root.is_dir() {
        return Some(root);
    }
    let message = format!(
        "the real audit samples are absent: no folder at {}; this test needs shared/data/real-audit beside the checkout",
        root.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// Maps every file of `folder`, returning the events in file order.
fn read_folder(folder: &Path) -> Vec<OperationEvent> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("failed to list {}: {e}", folder.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    paths.sort();
    let mut events = Vec::new();
    for path in paths {
        for record in import::open(&path, Format::Auto).expect("open sample") {
            let record = record.expect("read sample");
            match record.outcome {
                RecordOutcome::Event(event) => events.push(*event),
                RecordOutcome::Skipped(_) => {}
                RecordOutcome::Invalid(e) => {
                    panic!("{}:{} does not map: {e}", path.display(), record.line)
                }
            }
        }
    }
    events
}

/// Returns the events the store keeps: the first of each (occurred_at, event_id),
/// because a later record with the same key is a redelivery to the store.
fn first_per_key(events: &[OperationEvent]) -> Vec<OperationEvent> {
    let mut seen = HashSet::new();
    events
        .iter()
        .filter(|e| {
            let at = e.occurred_at.as_ref().expect("mapped events have a time");
            seen.insert((at.seconds, at.nanos / 1000, e.event_id.clone()))
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn real_kubernetes_and_cloudtrail_records_survive_the_pipeline() {
    let Some(root) = samples_root() else {
        return;
    };
    let (Some(brokers), Some(mysql_url)) = (
        support::service_var(support::KAFKA_BROKERS_VAR),
        support::service_var(support::MYSQL_URL_VAR),
    ) else {
        return;
    };
    let mut sent = read_folder(&root.join("kubernetes"));
    let kubernetes = sent.len();
    sent.extend(read_folder(&root.join("aws_cloudtrail")));
    assert!(kubernetes >= 4, "the Kubernetes samples map to events");
    assert!(
        sent.len() - kubernetes >= 30,
        "the CloudTrail samples map to events"
    );

    let topic = support::create_topic(&brokers, "oplog_real_audit", 3).await;
    EventProducer::new(&topic.kafka, &topic.topic, Duration::from_secs(30))
        .expect("producer")
        .send(&sent)
        .await
        .expect("produce the samples");

    let store = Arc::new(support::migrated_mysql_store(&mysql_url).await);
    let mut config = topic.config();
    config.consumer.max_batch_wait_ms = 100;
    // The samples go back to 2014.
    config.mysql.retention_days = 36_500;
    let consumer = support::spawn_consumer(&config, store.clone());
    let server = TestServer::start(store).await;
    let mut client = server.query_client().await;

    let expected = first_per_key(&sent);
    let stored = wait_for_events(&mut client, expected.len()).await;
    consumer.stop().await;
    assert_eq!(
        stored.len(),
        expected.len(),
        "every distinct record is stored once"
    );

    for (actor, count) in counts(&expected, |e| e.actor.as_ref().unwrap().id.clone()) {
        let request = ListEventsRequest {
            actor_ids: vec![actor.clone()],
            ..Default::default()
        };
        assert_eq!(
            list(&mut client, request).await.len(),
            count,
            "events of actor {actor}"
        );
    }
    for (action, count) in counts(&expected, |e| e.action.clone()) {
        let request = ListEventsRequest {
            actions: vec![action.clone()],
            ..Default::default()
        };
        assert_eq!(
            list(&mut client, request).await.len(),
            count,
            "events of action {action}"
        );
    }
    check_cloudtrail_send_command(&stored);
    check_kubernetes_lease_update(&stored);
}

fn counts(
    events: &[OperationEvent],
    key: impl Fn(&OperationEvent) -> String,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        *counts.entry(key(event)).or_insert(0) += 1;
    }
    counts
}

fn find<'a>(stored: &'a [OperationEvent], event_id: &str) -> &'a OperationEvent {
    stored
        .iter()
        .find(|e| e.event_id == event_id)
        .unwrap_or_else(|| panic!("event {event_id} is stored"))
}

fn check_cloudtrail_send_command(stored: &[OperationEvent]) {
    let e = find(stored, "c25b98b1-270c-47e6-ba2d-e2e25f26bec7");
    assert_eq!(
        e.occurred_at,
        Some(support::ts(1_730_320_200_000_000)),
        "2024-10-30T20:30:00Z"
    );
    assert_eq!(e.service, "ssm.amazonaws.com");
    assert_eq!(e.tenant, "00000000000");
    let actor = e.actor.as_ref().unwrap();
    assert_eq!(
        actor.id,
        "arn:aws:iam::00000000000:user/pwncloud-backdoor-user"
    );
    assert_eq!(actor.r#type, ActorType::User as i32);
    assert_eq!(actor.display_name, "pwncloud-backdoor-user");
    assert_eq!(actor.ip, "216.160.83.56");
    assert_eq!(e.action, "ssm.SendCommand");
    assert_eq!(e.action_type, ActionType::Execute as i32);
    assert_eq!(
        e.outcome.as_ref().unwrap().result,
        ResultCode::Success as i32
    );
    assert_eq!(e.request_id, "11b4aa49-fb0a-4045-aa33-d12ac1d3b304");
}

fn check_kubernetes_lease_update(stored: &[OperationEvent]) {
    // 2025-09-30T06:23:35.091134Z, the AKS-wrapped record.
    let at = Some(support::ts(1_759_213_415_091_134));
    let e = stored
        .iter()
        .find(|e| e.event_id == "abcde12345" && e.occurred_at == at)
        .expect("the AKS lease update is stored");
    assert_eq!(e.service, "kube-apiserver");
    let actor = e.actor.as_ref().unwrap();
    assert_eq!(actor.id, "aksService");
    assert_eq!(actor.ip, "67.43.156.1");
    assert_eq!(e.action, "leases.update");
    assert_eq!(e.action_type, ActionType::Update as i32);
    let target = e.target.as_ref().unwrap();
    assert_eq!(target.r#type, "coordination.k8s.io/leases");
    assert_eq!(target.id, "kube-system/elastic-agent-cluster-test");
    assert_eq!(
        e.outcome.as_ref().unwrap().result,
        ResultCode::Success as i32
    );
}
