use serde_json::json;

use super::names::Location;
use super::*;
use crate::event::EventRecord;
use crate::proto::{ActionType, ActorType};

fn entry() -> Value {
    json!({
        "insertId": "c7e1a2b3-gke-0001",
        "logName": "projects/shop-prod/logs/cloudaudit.googleapis.com%2Factivity",
        "operation": {"first": true, "id": "9b2f4c1e-audit-id", "last": true, "producer": "k8s.io"},
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "authenticationInfo": {"principalEmail": "carol@example.com"},
            "methodName": "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
            "requestMetadata": {"callerIp": "198.51.100.23", "callerSuppliedUserAgent": "kubectl/v1.30.2"},
            "resourceName": "rbac.authorization.k8s.io/v1/clusterrolebindings/break-glass",
            "serviceName": "k8s.io",
            "status": {"code": 0}
        },
        "resource": {"type": "k8s_cluster", "labels": {"cluster_name": "prod-1", "location": "europe-west1", "project_id": "shop-prod"}},
        "labels": {"authorization.k8s.io/decision": "allow"},
        "timestamp": "2026-04-02T09:30:15.654321Z"
    })
}

fn event(value: Value) -> OperationEvent {
    match map(value).unwrap() {
        RecordOutcome::Event(event) => *event,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn envelope_maps_every_field() {
    let mapped = event(entry());
    assert_eq!(mapped.event_id, "c7e1a2b3-gke-0001");
    assert_eq!(mapped.request_id, "9b2f4c1e-audit-id");
    assert_eq!(mapped.service, "kube-apiserver");
    let time = mapped.occurred_at.unwrap();
    assert_eq!((time.seconds, time.nanos), (1_775_122_215, 654_321_000));

    let actor = mapped.actor.as_ref().unwrap();
    assert_eq!(
        (actor.id.as_str(), actor.r#type),
        ("carol@example.com", ActorType::User as i32)
    );
    assert_eq!(actor.ip, "198.51.100.23");
    assert_eq!(actor.user_agent, "kubectl/v1.30.2");

    assert_eq!(mapped.action, "clusterrolebindings.create");
    assert_eq!(mapped.action_type, ActionType::Grant as i32);
    let target = mapped.target.as_ref().unwrap();
    assert_eq!(
        target.r#type,
        "rbac.authorization.k8s.io/clusterrolebindings"
    );
    assert_eq!(target.id, "break-glass");
    assert_eq!(
        mapped.outcome.as_ref().unwrap().result,
        ResultCode::Success as i32
    );

    let metadata: Value = serde_json::from_str(&mapped.metadata_json).unwrap();
    assert_eq!(metadata["envelope"], "gke");
    assert_eq!(metadata["cluster"]["cluster_name"], "prod-1");
    assert_eq!(
        metadata["methodName"],
        "io.k8s.authorization.rbac.v1.clusterrolebindings.create"
    );
    EventRecord::from_event(&mapped).expect("the mapped event passes the ingest validator");
}

#[test]
fn permission_denied_status() {
    let mut value = entry();
    value["protoPayload"]["status"] = json!({"code": 7, "message": "forbidden"});
    let outcome = event(value).outcome.unwrap();
    assert_eq!(outcome.result, ResultCode::Denied as i32);
    assert_eq!(outcome.error_code, "PERMISSION_DENIED");
    assert_eq!(outcome.message, "forbidden");
}

#[test]
fn other_status_is_failure() {
    let mut value = entry();
    value["protoPayload"]["status"] = json!({"code": 6});
    let outcome = event(value).outcome.unwrap();
    assert_eq!(
        (outcome.result, outcome.error_code.as_str()),
        (ResultCode::Failure as i32, "ALREADY_EXISTS")
    );
    assert_eq!(rpc_code_name(42), "42");
}

#[test]
fn in_progress_entry_is_skipped() {
    let mut value = entry();
    value["operation"]["last"] = json!(false);
    assert!(matches!(map(value).unwrap(), RecordOutcome::Skipped(_)));
}

#[test]
fn namespaced_subresource() {
    let mut value = entry();
    value["protoPayload"]["methodName"] = json!("io.k8s.core.v1.pods.exec.create");
    value["protoPayload"]["resourceName"] = json!("core/v1/namespaces/shop/pods/api-1/exec");
    let mapped = event(value);
    assert_eq!(mapped.action, "pods.exec.create");
    assert_eq!(mapped.action_type, ActionType::Execute as i32);
    let target = mapped.target.unwrap();
    assert_eq!(
        (target.r#type.as_str(), target.id.as_str()),
        ("pods", "shop/api-1")
    );
}

#[test]
fn non_resource_method() {
    let mut value = entry();
    value["protoPayload"]["methodName"] = json!("io.k8s.get");
    value["protoPayload"]["resourceName"] = json!("readyz");
    value["protoPayload"]["authenticationInfo"]["principalEmail"] =
        json!("system:gke-master-healthcheck");
    let mapped = event(value);
    assert_eq!(mapped.action, "nonresource.get");
    assert_eq!(mapped.actor.unwrap().r#type, ActorType::System as i32);
    assert_eq!(mapped.target.unwrap().id, "/readyz");
}

#[test]
fn hostname_caller_ip_in_metadata() {
    let mut value = entry();
    value["protoPayload"]["requestMetadata"]["callerIp"] = json!("gce-internal-ip");
    let mapped = event(value);
    assert_eq!(mapped.actor.unwrap().ip, "");
    let metadata: Value = serde_json::from_str(&mapped.metadata_json).unwrap();
    assert_eq!(metadata["callerIp"], "gce-internal-ip");
}

#[test]
fn bad_method_name_is_invalid() {
    let mut value = entry();
    value["protoPayload"]["methodName"] = json!("io.k8s.core.v1.pods");
    let error = map(value).unwrap_err();
    assert!(
        matches!(
            error,
            MapError::Value {
                field: "protoPayload.methodName",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn parse_method_names() {
    let method = |group: &str, resource, subresource, verb| Method {
        group: group.to_owned(),
        resource,
        subresource,
        verb,
    };
    let cases = [
        (
            "io.k8s.core.v1.pods.create",
            Some(method("", "pods", "", "create")),
        ),
        (
            "io.k8s.core.v1.pods.exec.create",
            Some(method("", "pods", "exec", "create")),
        ),
        (
            "io.k8s.apps.v1.deployments.patch",
            Some(method("apps", "deployments", "", "patch")),
        ),
        (
            "io.k8s.coordination.v1.leases.update",
            Some(method("coordination.k8s.io", "leases", "", "update")),
        ),
        (
            "io.k8s.authorization.rbac.v1.roles.delete",
            Some(method("rbac.authorization.k8s.io", "roles", "", "delete")),
        ),
        (
            "io.k8s.batch.v1beta1.cronjobs.get",
            Some(method("batch", "cronjobs", "", "get")),
        ),
        ("io.k8s.get", Some(method("", "", "", "get"))),
        ("io.k8s.core.v1.pods", None),
        ("io.k8s.", None),
        ("google.iam.v1.GetPolicy", None),
    ];
    for (name, expected) in cases {
        assert_eq!(parse_method(name), expected, "{name}");
    }
}

#[test]
fn locate_resource_names() {
    let located = locate("core/v1/namespaces/shop/pods/api-1/exec");
    assert_eq!(
        located,
        Location {
            group: Some(""),
            namespace: "shop",
            name: "api-1"
        }
    );
    let located = locate("rbac.authorization.k8s.io/v1/clusterrolebindings/admins");
    assert_eq!(
        located,
        Location {
            group: Some("rbac.authorization.k8s.io"),
            namespace: "",
            name: "admins"
        }
    );
    let located = locate("core/v1/namespaces/shop");
    assert_eq!(
        located,
        Location {
            group: Some(""),
            namespace: "",
            name: "shop"
        }
    );
    assert_eq!(locate("HNAP1"), Location::default());
}
