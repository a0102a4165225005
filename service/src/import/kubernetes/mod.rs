//! Kubernetes API server audit events (`audit.k8s.io/v1` `Event`), raw or inside the GKE
//! and AKS log envelopes.

mod aks;
mod gke;
mod rules;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{fields, MapError, RecordOutcome};
use crate::event::Limits;
use crate::proto::{Actor, Impersonator, OperationEvent, Outcome, Result as ResultCode};
use rules::Request;

/// Value of `service` for every Kubernetes event.
const SERVICE: &str = "kube-apiserver";

/// Metadata keys removed, in this order, when metadata would exceed its limit.
const DROPPABLE: [&str; 4] = [
    "annotations",
    "userGroups",
    "impersonatedGroups",
    "requestURI",
];

/// The fields of an audit `Event` that the mapping reads. Fields are optional here and
/// checked in the mapping, which gives clearer errors than serde's.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditEvent {
    #[serde(rename = "auditID")]
    audit_id: Option<String>,
    stage: Option<String>,
    level: Option<String>,
    #[serde(rename = "requestURI")]
    request_uri: Option<String>,
    verb: Option<String>,
    user: Option<UserInfo>,
    impersonated_user: Option<UserInfo>,
    #[serde(rename = "sourceIPs")]
    source_ips: Option<Vec<String>>,
    user_agent: Option<String>,
    object_ref: Option<ObjectReference>,
    response_status: Option<Status>,
    request_object: Option<Value>,
    response_object: Option<Value>,
    request_received_timestamp: Option<String>,
    stage_timestamp: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
struct UserInfo {
    username: Option<String>,
    uid: Option<String>,
    groups: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectReference {
    resource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    api_group: Option<String>,
    api_version: Option<String>,
    subresource: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Status {
    code: Option<i32>,
    message: Option<String>,
    reason: Option<String>,
}

/// Maps a Kubernetes audit record: a raw `Event`, a GKE `LogEntry` (has `protoPayload`)
/// or an AKS diagnostic record (has `properties.log`).
pub(crate) fn map(value: Value) -> Result<RecordOutcome, MapError> {
    if value.get("protoPayload").is_some() {
        return gke::map(value);
    }
    if value.pointer("/properties/log").is_some() {
        return aks::map(value);
    }
    map_event(parse(value)?, Map::new())
}

/// Returns true for the AKS and GKE envelopes, which auto-detection distinguishes from a
/// raw event by shape.
pub(crate) fn is_envelope(value: &Value) -> bool {
    let gke = value
        .pointer("/protoPayload/methodName")
        .and_then(Value::as_str)
        .is_some_and(|method| method.starts_with("io.k8s."));
    gke || value.pointer("/properties/log").is_some()
}

fn parse(value: Value) -> Result<AuditEvent, MapError> {
    serde_json::from_value(value).map_err(|source| MapError::Shape {
        format: "Kubernetes audit",
        source,
    })
}

/// Returns why a stage is skipped, or `None` for the final stages. An API request is
/// audited once per stage it reaches, so importing every stage would store it twice.
fn skip_reason(stage: Option<&str>) -> Result<Option<&'static str>, MapError> {
    match stage {
        Some("ResponseComplete" | "Panic") => Ok(None),
        Some("RequestReceived") => Ok(Some(
            "Kubernetes stage RequestReceived is not final; only ResponseComplete and Panic are imported",
        )),
        Some("ResponseStarted") => Ok(Some(
            "Kubernetes stage ResponseStarted is not final; only ResponseComplete and Panic are imported",
        )),
        None | Some("") => Err(MapError::Missing { field: "stage" }),
        Some(other) => Err(MapError::value(
            "stage",
            other,
            "expected RequestReceived, ResponseStarted, ResponseComplete or Panic",
        )),
    }
}

/// Maps a parsed audit event. `metadata` contains what an envelope adds.
fn map_event(event: AuditEvent, metadata: Map<String, Value>) -> Result<RecordOutcome, MapError> {
    if let Some(reason) = skip_reason(event.stage.as_deref())? {
        return Ok(RecordOutcome::Skipped(reason));
    }
    let request = request(&event)?;
    let audit_id = fields::event_id("auditID", event.audit_id.as_deref())?;
    let occurred_at = fields::timestamp(
        "requestReceivedTimestamp",
        event.request_received_timestamp.as_deref(),
    )?;
    Ok(RecordOutcome::Event(Box::new(OperationEvent {
        occurred_at: Some(occurred_at),
        service: SERVICE.to_owned(),
        actor: Some(actor(&event)?),
        action: rules::action(&request)?,
        action_type: rules::action_type(&request) as i32,
        target: Some(rules::target(&request)?),
        outcome: Some(outcome(&event)),
        request_id: audit_id.clone(),
        metadata_json: metadata_json(&event, metadata)?,
        schema_version: 1,
        event_id: audit_id,
        ..OperationEvent::default()
    })))
}

/// Returns the request as the rules see it; without `objectRef` it is a non-resource URL.
fn request(event: &AuditEvent) -> Result<Request<'_>, MapError> {
    let verb = event.verb.as_deref().filter(|verb| !verb.is_empty());
    let object = event.object_ref.as_ref();
    let text = |field: fn(&ObjectReference) -> &Option<String>| {
        object.and_then(|o| field(o).as_deref()).unwrap_or("")
    };
    let uri = event.request_uri.as_deref().unwrap_or("");
    Ok(Request {
        verb: verb.ok_or(MapError::Missing { field: "verb" })?,
        api_group: text(|o| &o.api_group),
        resource: text(|o| &o.resource),
        subresource: text(|o| &o.subresource),
        namespace: text(|o| &o.namespace),
        name: text(|o| &o.name),
        path: uri.split('?').next().unwrap_or(uri),
    })
}

/// Returns the outcome from `responseStatus` and the authorizer's decision. A `Panic`
/// stage failed even when no status was written.
fn outcome(event: &AuditEvent) -> Outcome {
    let forbidden = event
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get("authorization.k8s.io/decision"))
        .is_some_and(|decision| decision == "forbid");
    let status = event.response_status.as_ref();
    let code = status.and_then(|s| s.code);
    let message = status.and_then(|s| s.message.as_deref()).unwrap_or("");
    let mut outcome = rules::http_outcome(code, message, forbidden);
    if event.stage.as_deref() == Some("Panic") && outcome.result == ResultCode::Success as i32 {
        outcome.result = ResultCode::Failure as i32;
    }
    outcome
}

/// Returns the actor. With `impersonatedUser` the request acted as that user, so it is
/// the actor and `user`, who sent the Impersonate-User header, is the impersonator.
fn actor(event: &AuditEvent) -> Result<Actor, MapError> {
    let username = event.user.as_ref().and_then(|u| u.username.as_deref());
    let user = fields::required("user.username", username, Limits::ID)?;
    let (id, impersonator) = match &event.impersonated_user {
        Some(impersonated) => {
            let id = fields::required(
                "impersonatedUser.username",
                impersonated.username.as_deref(),
                Limits::ID,
            )?;
            let impersonator = Impersonator {
                r#type: rules::actor_type(&user) as i32,
                id: user,
            };
            (id, Some(impersonator))
        }
        None => (user, None),
    };
    let first_ip = event.source_ips.as_ref().and_then(|ips| ips.first());
    Ok(Actor {
        r#type: rules::actor_type(&id) as i32,
        id,
        ip: first_ip
            .and_then(|ip| fields::ip_address(ip))
            .unwrap_or_default(),
        user_agent: fields::truncate(
            event.user_agent.as_deref().unwrap_or(""),
            Limits::USER_AGENT,
        ),
        impersonator,
        ..Actor::default()
    })
}

/// Builds metadata from the request details that have no event field. Request and
/// response bodies are replaced by their sizes, because they can be megabytes.
fn metadata_json(event: &AuditEvent, mut map: Map<String, Value>) -> Result<String, MapError> {
    insert_request_texts(&mut map, event);
    let groups = [
        ("userGroups", &event.user),
        ("impersonatedGroups", &event.impersonated_user),
    ];
    for (key, user) in groups {
        if let Some(groups) = user
            .as_ref()
            .and_then(|u| u.groups.clone())
            .filter(|g| !g.is_empty())
        {
            map.insert(key.to_owned(), groups.into());
        }
    }
    if let Some(annotations) = event.annotations.as_ref().filter(|a| !a.is_empty()) {
        let annotations = annotations
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())));
        map.insert(
            "annotations".to_owned(),
            Value::Object(annotations.collect()),
        );
    }
    let bodies = [
        ("requestObjectBytes", &event.request_object),
        ("responseObjectBytes", &event.response_object),
    ];
    for (key, body) in bodies {
        if let Some(body) = body {
            map.insert(key.to_owned(), fields::json_len(body).into());
        }
    }
    fields::metadata_json(map, &DROPPABLE)
}

fn insert_request_texts(map: &mut Map<String, Value>, event: &AuditEvent) {
    let object = event.object_ref.as_ref();
    let of_object =
        |field: fn(&ObjectReference) -> &Option<String>| object.and_then(|o| field(o).as_deref());
    let texts = [
        ("requestURI", event.request_uri.as_deref()),
        ("verb", event.verb.as_deref()),
        ("apiGroup", of_object(|o| &o.api_group)),
        ("apiVersion", of_object(|o| &o.api_version)),
        ("namespace", of_object(|o| &o.namespace)),
        ("subresource", of_object(|o| &o.subresource)),
        ("stage", event.stage.as_deref()),
        ("level", event.level.as_deref()),
        ("stageTimestamp", event.stage_timestamp.as_deref()),
        (
            "userUID",
            event.user.as_ref().and_then(|u| u.uid.as_deref()),
        ),
        (
            "responseReason",
            event
                .response_status
                .as_ref()
                .and_then(|s| s.reason.as_deref()),
        ),
    ];
    for (key, value) in texts {
        fields::insert_text(map, key, value);
    }
}

#[cfg(test)]
mod tests;
