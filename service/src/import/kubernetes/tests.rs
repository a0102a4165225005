use serde_json::{json, Value};

use super::*;
use crate::event::EventRecord;
use crate::proto::{ActionType, ActorType};

fn pod_exec() -> Value {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "7f1c9f3a-6d2e-4a8b-9c51-0e4b2d7a1f60",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/pods/api-7d9f/exec?command=sh&stdin=true",
        "verb": "create",
        "user": {"username": "alice@example.com", "uid": "u-42", "groups": ["devs", "system:authenticated"]},
        "sourceIPs": ["203.0.113.7", "10.0.0.1"],
        "userAgent": "kubectl/v1.31.0 (linux/amd64)",
        "objectRef": {"resource": "pods", "namespace": "shop", "name": "api-7d9f", "apiVersion": "v1", "subresource": "exec"},
        "responseStatus": {"metadata": {}, "code": 101},
        "requestObject": {"kind": "PodExecOptions", "command": ["sh"]},
        "requestReceivedTimestamp": "2026-03-01T12:00:00.123456Z",
        "stageTimestamp": "2026-03-01T12:00:05.000001Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": "RBAC: allowed"}
    })
}

fn with(mut value: Value, pointer: &str, replacement: Value) -> Value {
    *value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no field at {pointer}")) = replacement;
    value
}

fn event(value: Value) -> OperationEvent {
    match map(value).unwrap() {
        RecordOutcome::Event(event) => *event,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn final_stage_maps_every_field() {
    let mapped = event(pod_exec());
    assert_eq!(mapped.event_id, "7f1c9f3a-6d2e-4a8b-9c51-0e4b2d7a1f60");
    assert_eq!(mapped.request_id, mapped.event_id);
    assert_eq!(mapped.service, "kube-apiserver");
    assert_eq!(mapped.tenant, "");
    let time = mapped.occurred_at.unwrap();
    assert_eq!((time.seconds, time.nanos), (1_772_366_400, 123_456_000));

    let actor = mapped.actor.as_ref().unwrap();
    assert_eq!(actor.id, "alice@example.com");
    assert_eq!(actor.r#type, ActorType::User as i32);
    assert_eq!(actor.ip, "203.0.113.7");
    assert_eq!(actor.user_agent, "kubectl/v1.31.0 (linux/amd64)");
    assert_eq!(actor.impersonator, None);

    assert_eq!(mapped.action, "pods.exec.create");
    assert_eq!(mapped.action_type, ActionType::Execute as i32);
    let target = mapped.target.as_ref().unwrap();
    assert_eq!(
        (
            target.r#type.as_str(),
            target.id.as_str(),
            target.name.as_str()
        ),
        ("pods", "shop/api-7d9f", "api-7d9f")
    );

    let outcome = mapped.outcome.as_ref().unwrap();
    assert_eq!(
        (outcome.result, outcome.error_code.as_str()),
        (ResultCode::Success as i32, "")
    );
    assert!(mapped.changes.is_empty());
    EventRecord::from_event(&mapped).expect("the mapped event passes the ingest validator");
}

#[test]
fn metadata_keeps_context_and_drops_bodies() {
    let metadata: Value = serde_json::from_str(&event(pod_exec()).metadata_json).unwrap();
    assert_eq!(
        metadata["requestURI"],
        "/api/v1/namespaces/shop/pods/api-7d9f/exec?command=sh&stdin=true"
    );
    assert_eq!(metadata["verb"], "create");
    assert_eq!(metadata["apiVersion"], "v1");
    assert_eq!(metadata["namespace"], "shop");
    assert_eq!(metadata["subresource"], "exec");
    assert_eq!(metadata["stage"], "ResponseComplete");
    assert_eq!(
        metadata["userGroups"],
        json!(["devs", "system:authenticated"])
    );
    assert_eq!(
        metadata["annotations"]["authorization.k8s.io/reason"],
        "RBAC: allowed"
    );
    assert_eq!(
        metadata["requestObjectBytes"],
        r#"{"command":["sh"],"kind":"PodExecOptions"}"#.len()
    );
    assert!(metadata.get("requestObject").is_none());
    assert!(
        metadata.get("apiGroup").is_none(),
        "the core group is empty and left out"
    );
}

#[test]
fn non_final_stages_are_skipped() {
    for stage in ["RequestReceived", "ResponseStarted"] {
        let outcome = map(with(pod_exec(), "/stage", json!(stage))).unwrap();
        match outcome {
            RecordOutcome::Skipped(reason) => assert!(reason.contains(stage), "{reason}"),
            other => panic!("{stage}: expected skipped, got {other:?}"),
        }
    }
}

#[test]
fn unknown_or_missing_stage_is_invalid() {
    let unknown = map(with(pod_exec(), "/stage", json!("Done"))).unwrap_err();
    assert!(
        matches!(unknown, MapError::Value { field: "stage", .. }),
        "{unknown}"
    );
    let missing = map(with(pod_exec(), "/stage", Value::Null)).unwrap_err();
    assert!(
        matches!(missing, MapError::Missing { field: "stage" }),
        "{missing}"
    );
}

#[test]
fn impersonated_user_is_the_actor() {
    let mut value = pod_exec();
    value["user"] = json!({"username": "system:serviceaccount:ci:deployer", "groups": ["system:serviceaccounts"]});
    value["impersonatedUser"] = json!({"username": "bob@example.com", "groups": ["ops"]});
    let mapped = event(value);
    let actor = mapped.actor.unwrap();
    assert_eq!(actor.id, "bob@example.com");
    assert_eq!(actor.r#type, ActorType::User as i32);
    let impersonator = actor.impersonator.unwrap();
    assert_eq!(impersonator.id, "system:serviceaccount:ci:deployer");
    assert_eq!(impersonator.r#type, ActorType::ServiceAccount as i32);
    let metadata: Value = serde_json::from_str(&mapped.metadata_json).unwrap();
    assert_eq!(metadata["impersonatedGroups"], json!(["ops"]));
}

#[test]
fn forbid_decision_is_denied() {
    let value = with(
        pod_exec(),
        "/annotations/authorization.k8s.io~1decision",
        json!("forbid"),
    );
    let value = with(
        value,
        "/responseStatus",
        json!({"code": 403, "message": "pods \"api-7d9f\" is forbidden"}),
    );
    let outcome = event(value).outcome.unwrap();
    assert_eq!(outcome.result, ResultCode::Denied as i32);
    assert_eq!(outcome.error_code, "403");
    assert_eq!(outcome.message, "pods \"api-7d9f\" is forbidden");
}

#[test]
fn failed_request_keeps_code_and_reason() {
    let status = json!({"code": 409, "reason": "AlreadyExists", "message": "already exists"});
    let mapped = event(with(pod_exec(), "/responseStatus", status));
    let outcome = mapped.outcome.unwrap();
    assert_eq!(
        (outcome.result, outcome.error_code.as_str()),
        (ResultCode::Failure as i32, "409")
    );
    let metadata: Value = serde_json::from_str(&mapped.metadata_json).unwrap();
    assert_eq!(metadata["responseReason"], "AlreadyExists");
}

#[test]
fn panic_without_status_is_failure() {
    let mut value = with(pod_exec(), "/stage", json!("Panic"));
    value.as_object_mut().unwrap().remove("responseStatus");
    assert_eq!(
        event(value).outcome.unwrap().result,
        ResultCode::Failure as i32
    );
}

#[test]
fn non_resource_url() {
    let mut value = pod_exec();
    value.as_object_mut().unwrap().remove("objectRef");
    value["verb"] = json!("get");
    value["requestURI"] = json!("/readyz?verbose");
    let mapped = event(value);
    assert_eq!(mapped.action, "nonresource.get");
    assert_eq!(mapped.action_type, ActionType::Read as i32);
    let target = mapped.target.unwrap();
    assert_eq!(
        (target.r#type.as_str(), target.id.as_str()),
        ("nonresource", "/readyz")
    );
}

#[test]
fn api_group_prefixes_target_type() {
    let object = json!({"resource": "clusterrolebindings", "name": "ops-admin", "apiGroup": "rbac.authorization.k8s.io", "apiVersion": "v1"});
    let value = with(
        with(pod_exec(), "/objectRef", object),
        "/responseStatus/code",
        json!(201),
    );
    let mapped = event(value);
    assert_eq!(mapped.action, "clusterrolebindings.create");
    assert_eq!(mapped.action_type, ActionType::Grant as i32);
    let target = mapped.target.unwrap();
    assert_eq!(
        target.r#type,
        "rbac.authorization.k8s.io/clusterrolebindings"
    );
    assert_eq!(target.id, "ops-admin");
}

#[test]
fn free_text_is_cut_at_a_character_boundary() {
    // 300 four-byte characters: 1200 bytes, over the 1024-byte user agent limit.
    let agent = "🚀".repeat(300);
    let mapped = event(with(pod_exec(), "/userAgent", json!(agent)));
    let actor = mapped.actor.unwrap();
    assert_eq!(actor.user_agent.len(), 1024);
    assert!(actor.user_agent.chars().all(|c| c == '🚀'));
}

#[test]
fn ids_that_do_not_fit_are_invalid() {
    let long_user = with(pod_exec(), "/user/username", json!("u".repeat(256)));
    assert!(matches!(
        map(long_user),
        Err(MapError::TooLong {
            field: "user.username",
            ..
        })
    ));
    let mut no_id = pod_exec();
    no_id.as_object_mut().unwrap().remove("auditID");
    assert!(matches!(
        map(no_id),
        Err(MapError::Missing { field: "auditID" })
    ));
    let no_user = with(pod_exec(), "/user", json!({}));
    assert!(matches!(
        map(no_user),
        Err(MapError::Missing {
            field: "user.username"
        })
    ));
    let bad_time = with(pod_exec(), "/requestReceivedTimestamp", json!("03/01/2026"));
    assert!(matches!(
        map(bad_time),
        Err(MapError::Value {
            field: "requestReceivedTimestamp",
            ..
        })
    ));
}

#[test]
fn wrong_field_type_is_invalid_shape() {
    let error = map(with(pod_exec(), "/responseStatus/code", json!("200"))).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("invalid Kubernetes audit record"),
        "{error}"
    );
}
