//! GKE audit records: a Cloud Audit Logs `LogEntry` whose `protoPayload` is an
//! `AuditLog` describing one Kubernetes API request.
//!
//! The request is named twice: `methodName` such as `io.k8s.core.v1.pods.exec.create`
//! gives resource, subresource and verb, and `resourceName` such as
//! `core/v1/namespaces/default/pods/web-1/exec` gives API group, namespace and name.

mod names;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::rules::{self, Request};
use crate::event::Limits;
use crate::import::{fields, MapError, RecordOutcome};
use crate::proto::{Actor, OperationEvent, Outcome, Result as ResultCode};
use names::{locate, parse_method, Method};

/// Metadata keys removed, in this order, when metadata would exceed its limit.
const DROPPABLE: [&str; 2] = ["annotations", "resourceName"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogEntry {
    insert_id: Option<String>,
    timestamp: Option<String>,
    log_name: Option<String>,
    proto_payload: AuditLog,
    resource: Option<MonitoredResource>,
    labels: Option<BTreeMap<String, String>>,
    operation: Option<Operation>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditLog {
    method_name: Option<String>,
    resource_name: Option<String>,
    service_name: Option<String>,
    authentication_info: Option<AuthenticationInfo>,
    request_metadata: Option<RequestMetadata>,
    status: Option<RpcStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthenticationInfo {
    principal_email: Option<String>,
    principal_subject: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestMetadata {
    caller_ip: Option<String>,
    caller_supplied_user_agent: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RpcStatus {
    code: Option<i32>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MonitoredResource {
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct Operation {
    id: Option<String>,
    last: Option<bool>,
}

/// Maps a GKE `LogEntry`. An entry whose `operation.last` is false is skipped: GKE logs
/// a long-running request, such as a watch, again when it ends.
pub(super) fn map(value: Value) -> Result<RecordOutcome, MapError> {
    let entry: LogEntry = serde_json::from_value(value).map_err(|source| MapError::Shape {
        format: "GKE audit",
        source,
    })?;
    if entry.operation.as_ref().and_then(|o| o.last) == Some(false) {
        return Ok(RecordOutcome::Skipped(
            "GKE entry of a request still in progress (operation.last is false); only the last entry is imported",
        ));
    }

    let payload = &entry.proto_payload;
    let method_name = payload.method_name.as_deref().unwrap_or("");
    let method = parse_method(method_name).ok_or_else(|| {
        MapError::value(
            "protoPayload.methodName",
            method_name,
            "expected io.k8s.<group>.<version>.<resource>[.<subresource>].<verb> or io.k8s.<verb>",
        )
    })?;
    let resource_name = payload.resource_name.as_deref().unwrap_or("");
    let path = format!("/{}", resource_name.trim_start_matches('/'));
    let request = request(&method, resource_name, &path);

    let insert_id = fields::event_id("insertId", entry.insert_id.as_deref())?;
    let operation_id = entry.operation.as_ref().and_then(|o| o.id.as_deref());
    let request_id = operation_id.unwrap_or(&insert_id);
    Ok(RecordOutcome::Event(Box::new(OperationEvent {
        occurred_at: Some(fields::timestamp("timestamp", entry.timestamp.as_deref())?),
        service: super::SERVICE.to_owned(),
        actor: Some(actor(payload)?),
        action: rules::action(&request)?,
        action_type: rules::action_type(&request) as i32,
        target: Some(rules::target(&request)?),
        outcome: Some(outcome(&entry)),
        request_id: fields::bounded("operation.id", request_id, Limits::NAME)?,
        metadata_json: metadata_json(&entry)?,
        schema_version: 1,
        event_id: insert_id,
        ..OperationEvent::default()
    })))
}

/// Builds the request from the parsed method name and `resourceName`, whose API group
/// is taken over the method's because it is spelled out in full.
fn request<'a>(method: &'a Method<'a>, resource_name: &'a str, path: &'a str) -> Request<'a> {
    let location = locate(resource_name);
    Request {
        verb: method.verb,
        api_group: location.group.unwrap_or(&method.group),
        resource: method.resource,
        subresource: method.subresource,
        namespace: location.namespace,
        name: location.name,
        path,
    }
}

fn actor(payload: &AuditLog) -> Result<Actor, MapError> {
    let info = payload.authentication_info.as_ref();
    let principal = info
        .and_then(|i| i.principal_email.as_deref().filter(|e| !e.is_empty()))
        .or_else(|| info.and_then(|i| i.principal_subject.as_deref()));
    let id = fields::required(
        "protoPayload.authenticationInfo.principalEmail",
        principal,
        Limits::ID,
    )?;
    let metadata = payload.request_metadata.as_ref();
    let caller_ip = metadata.and_then(|m| m.caller_ip.as_deref()).unwrap_or("");
    let user_agent = metadata.and_then(|m| m.caller_supplied_user_agent.as_deref());
    Ok(Actor {
        r#type: rules::actor_type(&id) as i32,
        id,
        ip: fields::ip_address(caller_ip).unwrap_or_default(),
        user_agent: fields::truncate(user_agent.unwrap_or(""), Limits::USER_AGENT),
        ..Actor::default()
    })
}

/// Returns the outcome of a `google.rpc.Status`: OK is success, PERMISSION_DENIED and
/// UNAUTHENTICATED are denied, any other code failed. The authorizer's `forbid` decision
/// in the entry labels also denies.
fn outcome(entry: &LogEntry) -> Outcome {
    let status = entry.proto_payload.status.as_ref();
    let code = status.and_then(|s| s.code).unwrap_or(0);
    let forbidden = entry
        .labels
        .as_ref()
        .and_then(|labels| labels.get("authorization.k8s.io/decision"))
        .is_some_and(|decision| decision == "forbid");
    let result = match code {
        _ if forbidden => ResultCode::Denied,
        0 => ResultCode::Success,
        7 | 16 => ResultCode::Denied,
        _ => ResultCode::Failure,
    };
    Outcome {
        result: result as i32,
        error_code: rpc_code_name(code),
        message: fields::truncate(
            status.and_then(|s| s.message.as_deref()).unwrap_or(""),
            Limits::MESSAGE,
        ),
    }
}

/// Returns the name of a `google.rpc.Code`, empty for OK and the number for an unknown one.
fn rpc_code_name(code: i32) -> String {
    const NAMES: [&str; 17] = [
        "",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|index| NAMES.get(index))
        .map_or_else(|| code.to_string(), |name| (*name).to_owned())
}

fn metadata_json(entry: &LogEntry) -> Result<String, MapError> {
    let payload = &entry.proto_payload;
    let mut map = Map::new();
    map.insert("envelope".to_owned(), "gke".into());
    fields::insert_text(&mut map, "methodName", payload.method_name.as_deref());
    fields::insert_text(&mut map, "resourceName", payload.resource_name.as_deref());
    fields::insert_text(&mut map, "serviceName", payload.service_name.as_deref());
    fields::insert_text(&mut map, "logName", entry.log_name.as_deref());
    let caller_ip = payload
        .request_metadata
        .as_ref()
        .and_then(|m| m.caller_ip.as_deref());
    if caller_ip.is_some_and(|ip| fields::ip_address(ip).is_none()) {
        fields::insert_text(&mut map, "callerIp", caller_ip);
    }
    let to_object = |labels: &BTreeMap<String, String>| -> Value {
        Value::Object(
            labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
        )
    };
    if let Some(labels) = entry.resource.as_ref().and_then(|r| r.labels.as_ref()) {
        map.insert("cluster".to_owned(), to_object(labels));
    }
    if let Some(labels) = entry.labels.as_ref().filter(|l| !l.is_empty()) {
        map.insert("annotations".to_owned(), to_object(labels));
    }
    fields::metadata_json(map, &DROPPABLE)
}

#[cfg(test)]
mod tests;
