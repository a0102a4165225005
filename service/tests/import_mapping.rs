//! Maps the import fixtures and the real audit samples kept beside the repository with
//! `oplog::import`, and checks every mapped event against the ingest validator.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::{write::GzEncoder, Compression};
use oplog::event::EventRecord;
use oplog::import::{self, Format, Record, RecordOutcome};
use oplog::proto::{ActionType, ActorType, OperationEvent, Result as ResultCode};

/// Real Kubernetes and CloudTrail records, read only.
const REAL_AUDIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/real-audit");

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/import");

fn read_all(path: &Path, format: Format) -> Vec<Record> {
    import::open(path, format)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|record| record.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn fixture(name: &str, format: Format) -> Vec<Record> {
    read_all(&Path::new(FIXTURES).join(name), format)
}

/// Describes each record in one line: its line and the event id, skip reason or error.
fn summary(records: &[Record]) -> Vec<String> {
    let describe = |record: &Record| match &record.outcome {
        RecordOutcome::Event(event) => format!("{}: event {}", record.line, event.event_id),
        RecordOutcome::Skipped(reason) => format!("{}: skipped {reason}", record.line),
        RecordOutcome::Invalid(error) => format!("{}: invalid {error}", record.line),
    };
    records.iter().map(describe).collect()
}

/// Returns the event of the record starting at `line`, checked by the ingest validator.
fn event_at(records: &[Record], line: u64) -> &OperationEvent {
    let record = records
        .iter()
        .find(|r| r.line == line)
        .unwrap_or_else(|| panic!("no record at line {line}"));
    match &record.outcome {
        RecordOutcome::Event(event) => {
            EventRecord::from_event(event).unwrap_or_else(|e| panic!("line {line}: {e}"));
            event
        }
        other => panic!("line {line}: expected an event, got {other:?}"),
    }
}

fn events(records: &[Record]) -> Vec<&OperationEvent> {
    records
        .iter()
        .filter_map(|r| match &r.outcome {
            RecordOutcome::Event(event) => Some(event.as_ref()),
            _ => None,
        })
        .collect()
}

/// Microseconds since the epoch of an RFC 3339 time.
fn micros(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_micros()
}

fn event_micros(event: &OperationEvent) -> i64 {
    let time = event.occurred_at.as_ref().expect("occurred_at is set");
    time.seconds * 1_000_000 + i64::from(time.nanos / 1000)
}

/// Checks actor id and type, action, action type, result and target type and id.
fn assert_event(
    event: &OperationEvent,
    actor: (&str, ActorType),
    action: (&str, ActionType),
    result: ResultCode,
    target: Option<(&str, &str)>,
) {
    let found = event.actor.as_ref().expect("actor is set");
    assert_eq!(
        (found.id.as_str(), found.r#type),
        (actor.0, actor.1 as i32),
        "actor of {}",
        event.event_id
    );
    assert_eq!(event.action, action.0, "action of {}", event.event_id);
    assert_eq!(
        event.action_type, action.1 as i32,
        "action type of {}",
        event.event_id
    );
    let outcome = event.outcome.as_ref().expect("outcome is set");
    assert_eq!(
        outcome.result, result as i32,
        "result of {}",
        event.event_id
    );
    let found = event
        .target
        .as_ref()
        .map(|t| (t.r#type.as_str(), t.id.as_str()));
    assert_eq!(found, target, "target of {}", event.event_id);
}

#[test]
fn kubernetes_fixture() {
    let records = fixture("k8s-audit.jsonl", Format::Kubernetes);
    let summary = summary(&records);
    assert_eq!(records.len(), 11, "{summary:#?}");
    assert!(
        summary[0].starts_with("1: skipped Kubernetes stage RequestReceived"),
        "{}",
        summary[0]
    );
    assert!(
        summary[5].starts_with("7: skipped Kubernetes stage ResponseStarted"),
        "{}",
        summary[5]
    );

    let created = event_at(&records, 2);
    assert_event(
        created,
        ("alice@example.com", ActorType::User),
        ("pods.create", ActionType::Create),
        ResultCode::Success,
        Some(("pods", "payments/api-6c9f7d5b8-x2kq4")),
    );
    assert_eq!(event_micros(created), micros("2026-01-15T09:12:03.481215Z"));
    assert_eq!(created.actor.as_ref().unwrap().ip, "203.0.113.10");

    let impersonated = event_at(&records, 3);
    assert_event(
        impersonated,
        (
            "system:serviceaccount:payments:api",
            ActorType::ServiceAccount,
        ),
        ("secrets.get", ActionType::Read),
        ResultCode::Success,
        Some(("secrets", "payments/db-credentials")),
    );
    let impersonator = impersonated
        .actor
        .as_ref()
        .unwrap()
        .impersonator
        .as_ref()
        .unwrap();
    assert_eq!(
        (impersonator.id.as_str(), impersonator.r#type),
        ("alice@example.com", ActorType::User as i32)
    );

    let denied = event_at(&records, 4);
    assert_event(
        denied,
        ("bob@example.com", ActorType::User),
        ("clusterrolebindings.delete", ActionType::Revoke),
        ResultCode::Denied,
        Some((
            "rbac.authorization.k8s.io/clusterrolebindings",
            "support-cluster-admin",
        )),
    );
    assert_eq!(denied.outcome.as_ref().unwrap().error_code, "403");

    let exec = event_at(&records, 5);
    assert_eq!(
        (exec.action.as_str(), exec.action_type),
        ("pods.exec.create", ActionType::Execute as i32)
    );
    assert_eq!(exec.outcome.as_ref().unwrap().error_code, "");

    let probe = event_at(&records, 8);
    assert_event(
        probe,
        ("system:anonymous", ActorType::System),
        ("nonresource.get", ActionType::Read),
        ResultCode::Success,
        Some(("nonresource", "/healthz")),
    );
    assert_eq!(
        event_at(&records, 9).outcome.as_ref().unwrap().result,
        ResultCode::Failure as i32
    );

    let gke = event_at(&records, 10);
    assert_event(
        gke,
        (
            "deployer@shop-prod.iam.gserviceaccount.com",
            ActorType::ServiceAccount,
        ),
        ("deployments.patch", ActionType::Update),
        ResultCode::Success,
        Some(("apps/deployments", "payments/api")),
    );
    assert_eq!(event_micros(gke), micros("2026-01-15T11:00:01.271828Z"));

    let aks_string = event_at(&records, 11);
    assert_event(
        aks_string,
        ("masterclient", ActorType::User),
        ("configmaps.update", ActionType::Update),
        ResultCode::Success,
        Some(("configmaps", "ingress/nginx-config")),
    );
    let aks_object = event_at(&records, 12);
    assert_event(
        aks_object,
        ("masterclient", ActorType::User),
        ("pods.deletecollection", ActionType::Delete),
        ResultCode::Failure,
        Some(("pods", "")),
    );
    assert_eq!(
        aks_object.outcome.as_ref().unwrap().message,
        "etcdserver: request timed out"
    );
}

#[test]
fn cloudtrail_document_fixture() {
    let records = fixture("cloudtrail-records.json", Format::CloudTrail);
    let lines: Vec<u64> = records.iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 45, 105, 144], "{:#?}", summary(&records));

    let created = event_at(&records, 3);
    assert_event(
        created,
        (
            "arn:aws:iam::210987654321:user/platform-admin",
            ActorType::User,
        ),
        ("iam.CreateUser", ActionType::Create),
        ResultCode::Success,
        Some(("AWS::IAM::User", "svc-reporting")),
    );
    assert_eq!(created.tenant, "210987654321");
    assert_eq!(event_micros(created), micros("2026-02-10T08:01:17Z"));

    let download = event_at(&records, 45);
    assert_event(
        download,
        (
            "arn:aws:sts::210987654321:assumed-role/AWSReservedSSO_DataAnalyst_4f2a9c1e/maria.lopez@example.com",
            ActorType::User,
        ),
        ("s3.GetObject", ActionType::Read),
        ResultCode::Success,
        Some(("AWS::S3::Object", "arn:aws:s3:::analytics-exports/reports/2026/01/revenue.csv")),
    );
    assert_eq!(
        download.actor.as_ref().unwrap().display_name,
        "maria.lopez@example.com"
    );

    let service = event_at(&records, 105);
    assert_event(
        service,
        ("lambda.amazonaws.com", ActorType::System),
        ("sts.AssumeRole", ActionType::Login),
        ResultCode::Success,
        Some((
            "AWS::IAM::Role",
            "arn:aws:iam::210987654321:role/invoice-renderer-execution",
        )),
    );
    assert_eq!(service.actor.as_ref().unwrap().ip, "");
    assert!(service
        .metadata_json
        .contains(r#""sourceIPAddress":"lambda.amazonaws.com""#));

    let refused = event_at(&records, 144);
    assert_event(
        refused,
        (
            "arn:aws:sts::210987654321:assumed-role/ci-deployer/ci-build-4711",
            ActorType::ServiceAccount,
        ),
        ("s3.DeleteBucket", ActionType::Delete),
        ResultCode::Denied,
        Some(("AWS::S3::Bucket", "analytics-exports")),
    );
    let impersonator = refused
        .actor
        .as_ref()
        .unwrap()
        .impersonator
        .as_ref()
        .unwrap();
    assert_eq!(impersonator.id, "tomas.novak@example.com");
    assert_eq!(refused.outcome.as_ref().unwrap().error_code, "AccessDenied");
}

#[test]
fn cloudtrail_document_gzipped() {
    let plain = Path::new(FIXTURES).join("cloudtrail-records.json");
    let directory = tempfile::tempdir().unwrap();
    // The name hides the compression: it is detected from the content.
    let compressed = directory.path().join("cloudtrail-records.json");
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&fs::read(&plain).unwrap()).unwrap();
    fs::write(&compressed, encoder.finish().unwrap()).unwrap();

    let from_plain = read_all(&plain, Format::Auto);
    let from_gzip = read_all(&compressed, Format::Auto);
    assert_eq!(summary(&from_gzip), summary(&from_plain));
    assert_eq!(events(&from_gzip), events(&from_plain));
    assert_eq!(from_gzip.len(), 4);
}

#[test]
fn cloudtrail_lines_fixture() {
    let records = fixture("cloudtrail-lines.jsonl", Format::CloudTrail);
    let summary = summary(&records);
    assert_eq!(records.len(), 6, "{summary:#?}");
    assert_eq!(summary[3], "5: skipped cloudtrail digest, not an event");

    let login = event_at(&records, 1);
    assert_event(
        login,
        (
            "arn:aws:iam::210987654321:user/kai.schmidt",
            ActorType::User,
        ),
        ("signin.ConsoleLogin", ActionType::Login),
        ResultCode::Success,
        None,
    );
    let failed = event_at(&records, 2);
    assert_eq!(
        failed.outcome.as_ref().unwrap().result,
        ResultCode::Failure as i32
    );
    assert_eq!(
        failed.outcome.as_ref().unwrap().message,
        "Failed authentication"
    );

    assert_event(
        event_at(&records, 4),
        (
            "arn:aws:iam::210987654321:user/platform-admin",
            ActorType::User,
        ),
        ("iam.AttachRolePolicy", ActionType::Grant),
        ResultCode::Success,
        Some(("AWS::IAM::Role", "invoice-renderer-execution")),
    );
    let worker = event_at(&records, 6);
    assert_event(
        worker,
        (
            "arn:aws:sts::210987654321:assumed-role/report-worker/i-0fedcba9876543210",
            ActorType::ServiceAccount,
        ),
        ("secretsmanager.GetSecretValue", ActionType::Read),
        ResultCode::Success,
        Some((
            "AWS::SecretsManager::Secret",
            "arn:aws:secretsmanager:eu-central-1:210987654321:secret:reporting/db-AbC123",
        )),
    );
    assert_eq!(worker.actor.as_ref().unwrap().display_name, "report-worker");
    let root = event_at(&records, 7);
    assert_event(
        root,
        ("arn:aws:iam::210987654321:root", ActorType::User),
        ("s3.PutBucketPolicy", ActionType::Grant),
        ResultCode::Success,
        Some(("AWS::S3::Bucket", "arn:aws:s3:::public-assets")),
    );
    assert_eq!(root.actor.as_ref().unwrap().ip, "2001:db8:4006:812::200e");
}

#[test]
fn oplog_fixture() {
    let records = fixture("oplog-events.jsonl", Format::Oplog);
    assert_eq!(records.len(), 3);
    let refund = event_at(&records, 1);
    assert_eq!(refund.event_id, "01948c2a-7b3e-7d41-9f2a-3c4d5e6f7a81");
    assert_eq!(refund.changes.len(), 1);
    assert_eq!(event_micros(refund), micros("2026-02-12T09:00:00.250Z"));
    let denied = event_at(&records, 2);
    assert_eq!(
        denied.outcome.as_ref().unwrap().result,
        ResultCode::Denied as i32
    );
    assert_eq!(
        event_at(&records, 3).target.as_ref().unwrap().name,
        "Quarterly revenue ✓ 📈"
    );
}

#[test]
fn auto_detects_mixed_file() {
    let names = [
        "k8s-audit.jsonl",
        "cloudtrail-lines.jsonl",
        "oplog-events.jsonl",
    ];
    let mut mixed = Vec::new();
    let mut expected = Vec::new();
    for (name, format) in
        names
            .into_iter()
            .zip([Format::Kubernetes, Format::CloudTrail, Format::Oplog])
    {
        mixed.extend(fs::read(Path::new(FIXTURES).join(name)).unwrap());
        expected.extend(fixture(name, format).into_iter().map(|r| r.outcome));
    }
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("mixed.jsonl");
    fs::write(&path, mixed).unwrap();
    let detected: Vec<RecordOutcome> = read_all(&path, Format::Auto)
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(detected.len(), expected.len());
    for (detected, expected) in detected.iter().zip(&expected) {
        match (detected, expected) {
            (RecordOutcome::Event(a), RecordOutcome::Event(b)) => assert_eq!(a, b),
            (RecordOutcome::Skipped(a), RecordOutcome::Skipped(b)) => assert_eq!(a, b),
            (a, b) => panic!("auto gave {a:?}, the explicit format gave {b:?}"),
        }
    }
}

/// Returns the folder of real audit samples, or `None` after saying that it is absent.
/// Under CI the samples are required.
fn real_audit_dir() -> Option<PathBuf> {
    let dir = Path::new(REAL_AUDIT);
    if dir.is_dir() {
        return Some(dir.to_owned());
    }
    eprintln!("real audit samples are absent: looked in {}", dir.display());
    let in_ci = std::env::var("CI").is_ok_and(|value| value == "true");
    assert!(
        !in_ci,
        "real audit samples are required when CI=true; looked in {}",
        dir.display()
    );
    None
}

fn real_file(dir: &Path, source: &str, name: &str) -> Vec<Record> {
    read_all(&dir.join(source).join(name), Format::Auto)
}

#[test]
fn real_records_all_map() {
    let Some(dir) = real_audit_dir() else { return };
    let mut counts = (0, 0);
    for source in ["kubernetes", "aws_cloudtrail"] {
        let mut files: Vec<PathBuf> = fs::read_dir(dir.join(source))
            .unwrap_or_else(|e| panic!("failed to list {source}: {e}"))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no files in {source}");
        for path in files {
            for record in read_all(&path, Format::Auto) {
                let place = format!("{}:{}", path.display(), record.line);
                match &record.outcome {
                    RecordOutcome::Event(event) => {
                        EventRecord::from_event(event).unwrap_or_else(|e| panic!("{place}: {e}"));
                        counts.0 += 1;
                    }
                    RecordOutcome::Skipped(reason) => {
                        let stated =
                            reason.contains("is not final") || reason.contains("cloudtrail digest");
                        assert!(
                            stated,
                            "{place}: skipped for an unexpected reason: {reason}"
                        );
                        counts.1 += 1;
                    }
                    RecordOutcome::Invalid(error) => panic!("{place}: {error}"),
                }
            }
        }
    }
    eprintln!(
        "real audit samples: {} events, {} skipped",
        counts.0, counts.1
    );
    assert_eq!(counts, (41, 0));
}

#[test]
fn real_kubernetes_records() {
    let Some(dir) = real_audit_dir() else { return };
    let records = real_file(&dir, "kubernetes", "test-audit.log");
    assert_eq!(records.len(), 5);

    let raw = event_at(&records, 1);
    assert_eq!(raw.event_id, "abcde12345");
    // The sample's username is a group name ("serviceaccounts", plural), not a service
    // account's username, so the plain system: rule applies.
    assert_event(
        raw,
        ("system:serviceaccounts:default:default", ActorType::System),
        ("pods.get", ActionType::Read),
        ResultCode::Success,
        Some(("pods", "default/my-pod")),
    );
    assert_eq!(event_micros(raw), micros("2025-03-04T06:22:18.819232Z"));

    let lease = event_at(&records, 2);
    assert_event(
        lease,
        (
            "system:serviceaccount:kube-system:elastic-agent",
            ActorType::ServiceAccount,
        ),
        ("leases.get", ActionType::Read),
        ResultCode::Success,
        Some((
            "coordination.k8s.io/leases",
            "kube-system/elastic-agent-cluster-test",
        )),
    );

    let gke = event_at(&records, 4);
    assert_eq!(gke.event_id, "1234abcd");
    assert_event(
        gke,
        ("system:gke-master-healthcheck", ActorType::System),
        ("nonresource.get", ActionType::Read),
        ResultCode::Success,
        Some(("nonresource", "/readyz")),
    );
    assert_eq!(event_micros(gke), micros("2025-07-13T08:38:39.127266Z"));

    let aks = event_at(&records, 5);
    assert_event(
        aks,
        ("aksService", ActorType::User),
        ("leases.update", ActionType::Update),
        ResultCode::Success,
        Some((
            "coordination.k8s.io/leases",
            "kube-system/elastic-agent-cluster-test",
        )),
    );
    assert_eq!(event_micros(aks), micros("2025-09-30T06:23:35.091134Z"));
}

#[test]
fn real_gke_denied_probe() {
    let Some(dir) = real_audit_dir() else { return };
    let records = real_file(&dir, "gcp_audit", "test-k8s-nonmatching-resourcename.log");
    let probe = event_at(&records, 1);
    assert_event(
        probe,
        ("system:anonymous", ActorType::System),
        ("nonresource.get", ActionType::Read),
        ResultCode::Denied,
        Some(("nonresource", "/HNAP1")),
    );
    assert_eq!(
        probe.outcome.as_ref().unwrap().error_code,
        "PERMISSION_DENIED"
    );
    assert_eq!(probe.actor.as_ref().unwrap().ip, "192.168.1.1");
}

#[test]
fn real_cloudtrail_records() {
    let Some(dir) = real_audit_dir() else { return };
    let login = real_file(&dir, "aws_cloudtrail", "test-console-login-json.log");
    let failed = event_at(&login, 2);
    assert_eq!(failed.event_id, "11ea990b-4678-4bcd-8fbe-625EXAMPLE");
    assert_event(
        failed,
        ("arn:aws:iam::111122223333:user/JaneDoe", ActorType::User),
        ("signin.ConsoleLogin", ActionType::Login),
        ResultCode::Failure,
        None,
    );
    assert_eq!(event_micros(failed), micros("2014-07-08T17:35:27Z"));
    assert_eq!(
        failed.tenant, "111122223333",
        "tenant falls back to userIdentity.accountId"
    );

    let session = real_file(
        &dir,
        "aws_cloudtrail",
        "test-assume-role-email-session-json.log",
    );
    let assumed = event_at(&session, 1);
    assert_event(
        assumed,
        (
            "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_SecurityAudit_8df5ccd37b/firstname.lastname@example.com",
            ActorType::User,
        ),
        ("sts.AssumeRole", ActionType::Login),
        ResultCode::Success,
        Some(("AWS::IAM::Role", "arn:aws:iam::111111111111:role/JohnRole2")),
    );

    let groups = real_file(&dir, "aws_cloudtrail", "test-create-group-json.log");
    let exists = event_at(&groups, 2);
    assert_eq!(
        exists.outcome.as_ref().unwrap().result,
        ResultCode::Failure as i32
    );
    assert_eq!(
        exists.outcome.as_ref().unwrap().error_code,
        "EntityAlreadyExistsException"
    );
    assert_eq!(exists.target.as_ref().unwrap().id, "TEST-GROUP");

    let service = real_file(
        &dir,
        "aws_cloudtrail",
        "test-assume-role-aws-service-json.log",
    );
    let service = event_at(&service, 1);
    assert_eq!(service.actor.as_ref().unwrap().id, "ec2.amazonaws.com");
    assert_eq!(
        service.actor.as_ref().unwrap().r#type,
        ActorType::System as i32
    );

    let grafana = real_file(&dir, "aws_cloudtrail", "test-tls-details-json.log");
    let grafana = event_at(&grafana, 2);
    assert_eq!(
        grafana.outcome.as_ref().unwrap().result,
        ResultCode::Success as i32
    );
    assert_eq!(grafana.actor.as_ref().unwrap().ip, "81.2.69.142");

    let command = real_file(&dir, "aws_cloudtrail", "test-send-command-targets-json.log");
    assert_event(
        event_at(&command, 1),
        (
            "arn:aws:iam::00000000000:user/pwncloud-backdoor-user",
            ActorType::User,
        ),
        ("ssm.SendCommand", ActionType::Execute),
        ResultCode::Success,
        Some(("AWS::SSM::ManagedInstance", "i-0ddf9acf8eeb33959")),
    );

    let parameter = real_file(&dir, "aws_cloudtrail", "test-get-parameter-json.log");
    let parameter = event_at(&parameter, 1).target.as_ref().unwrap();
    assert_eq!(
        parameter.r#type, "AWS::SSM::Parameter",
        "the resource lists no type"
    );

    let key_pair = real_file(&dir, "aws_cloudtrail", "test-create-key-pair-json.log");
    assert!(
        event_at(&key_pair, 1).event_id.starts_with("sha256:"),
        "the record has no eventID"
    );
}
