//! AWS CloudTrail records, one management or data event each, as they appear in the
//! `Records` array of an S3 log file or one per line in an export.

mod action;
mod identity;
mod target;

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{fields, MapError, RecordOutcome};
use crate::event::Limits;
use crate::proto::{Actor, OperationEvent, Outcome, Result as ResultCode};
use identity::UserIdentity;

/// Skip reason of a digest file.
pub(crate) const DIGEST_REASON: &str = "cloudtrail digest, not an event";

/// Metadata keys removed, in this order, when metadata would exceed its limit.
const DROPPABLE: [&str; 5] = [
    "responseElements",
    "requestParameters",
    "additionalEventData",
    "serviceEventDetails",
    "resources",
];

/// Error codes that mean authorization refused the call.
const DENIED_CODES: [&str; 3] = ["accessdenied", "unauthorized", "forbidden"];

/// The fields of a CloudTrail record that the mapping reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloudTrailRecord {
    event_version: Option<String>,
    event_time: Option<String>,
    event_source: Option<String>,
    event_name: Option<String>,
    event_type: Option<String>,
    event_category: Option<String>,
    aws_region: Option<String>,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: Option<String>,
    user_agent: Option<String>,
    user_identity: Option<UserIdentity>,
    error_code: Option<String>,
    error_message: Option<String>,
    request_parameters: Option<Value>,
    response_elements: Option<Value>,
    additional_event_data: Option<Value>,
    service_event_details: Option<Value>,
    #[serde(rename = "requestID")]
    request_id: Option<String>,
    resources: Option<Value>,
    read_only: Option<Value>,
    management_event: Option<Value>,
    recipient_account_id: Option<String>,
    session_credential_from_console: Option<Value>,
    tls_details: Option<Value>,
}

/// Returns true for a CloudTrail digest file, which lists log files and is no event.
pub(crate) fn is_digest(value: &Value) -> bool {
    value.get("digestStartTime").is_some() && value.get("eventID").is_none()
}

/// Maps one CloudTrail record.
pub(crate) fn map(value: Value) -> Result<RecordOutcome, MapError> {
    if is_digest(&value) {
        return Ok(RecordOutcome::Skipped(DIGEST_REASON));
    }
    let event_id = event_id(&value)?;
    let record: CloudTrailRecord =
        serde_json::from_value(value).map_err(|source| MapError::Shape {
            format: "CloudTrail",
            source,
        })?;
    let event = map_record(&record, event_id)?;
    Ok(RecordOutcome::Event(Box::new(event)))
}

fn map_record(record: &CloudTrailRecord, event_id: String) -> Result<OperationEvent, MapError> {
    let source = fields::required("eventSource", record.event_source.as_deref(), Limits::NAME)?;
    let name = fields::required("eventName", record.event_name.as_deref(), Limits::NAME)?;
    let service = source.strip_suffix(".amazonaws.com").unwrap_or(&source);
    let parameters = record.request_parameters.as_ref();
    let request_id = record.request_id.as_deref().unwrap_or("");
    Ok(OperationEvent {
        event_id,
        occurred_at: Some(fields::timestamp(
            "eventTime",
            record.event_time.as_deref(),
        )?),
        tenant: fields::bounded("recipientAccountId", tenant(record), Limits::NAME)?,
        actor: Some(actor(record)?),
        action: fields::bounded("eventName", &format!("{service}.{name}"), Limits::NAME)?,
        action_type: action::action_type(&name, is_true(record.read_only.as_ref())) as i32,
        target: target::target(record.resources.as_ref(), parameters, service)?,
        outcome: Some(outcome(record)?),
        request_id: fields::bounded("requestID", request_id, Limits::NAME)?,
        metadata_json: metadata_json(record)?,
        schema_version: 1,
        service: source,
        ..OperationEvent::default()
    })
}

/// Returns `eventID`, or for a record without one an id derived from its content.
fn event_id(value: &Value) -> Result<String, MapError> {
    match value.get("eventID") {
        Some(Value::String(id)) if !id.is_empty() => fields::event_id("eventID", Some(id)),
        None | Some(Value::Null) => Ok(content_id(value)),
        Some(Value::String(_)) => Ok(content_id(value)),
        Some(other) => Err(MapError::value(
            "eventID",
            &other.to_string(),
            "expected a string",
        )),
    }
}

/// Returns an event id for a record without `eventID`: `sha256:` and the hash of the
/// record as compact JSON with sorted keys, so importing the same record twice gives
/// the same id and the store deduplicates it.
fn content_id(value: &Value) -> String {
    let text = serde_json::to_vec(value).expect("a JSON value always serializes");
    format!("sha256:{:x}", Sha256::digest(&text))
}

/// Returns the account the event belongs to: `recipientAccountId`, else the caller's.
fn tenant(record: &CloudTrailRecord) -> &str {
    let caller = record
        .user_identity
        .as_ref()
        .and_then(|i| i.account_id.as_deref());
    record
        .recipient_account_id
        .as_deref()
        .or(caller)
        .unwrap_or("")
}

fn actor(record: &CloudTrailRecord) -> Result<Actor, MapError> {
    let identity = record.user_identity.as_ref().ok_or(MapError::Missing {
        field: "userIdentity",
    })?;
    let sign_in_name = record
        .additional_event_data
        .as_ref()
        .and_then(|data| data.get("UserName"))
        .and_then(Value::as_str);
    let mut actor = identity::actor(identity, sign_in_name)?;
    let source_ip = record.source_ip_address.as_deref().unwrap_or("");
    actor.ip = fields::ip_address(source_ip).unwrap_or_default();
    actor.user_agent = fields::truncate(
        record.user_agent.as_deref().unwrap_or(""),
        Limits::USER_AGENT,
    );
    Ok(actor)
}

/// Returns the outcome. An `errorCode` means the call failed, or was denied when the
/// code names an authorization refusal. A numeric code below 400 is a success, because
/// some services (Amazon Managed Grafana) write the HTTP status there. Sign-ins record
/// failure in `responseElements.ConsoleLogin` or `serviceEventDetails` instead.
fn outcome(record: &CloudTrailRecord) -> Result<Outcome, MapError> {
    let code = record.error_code.as_deref().filter(|code| !code.is_empty());
    let result = match code {
        Some(code) if code.parse::<u16>().is_ok_and(|status| status < 400) => ResultCode::Success,
        Some(code) if is_denied(code) => ResultCode::Denied,
        Some(_) => ResultCode::Failure,
        None if sign_in_failed(record) => ResultCode::Failure,
        None => ResultCode::Success,
    };
    Ok(Outcome {
        result: result as i32,
        error_code: fields::bounded("errorCode", code.unwrap_or(""), Limits::NAME)?,
        message: fields::truncate(
            record.error_message.as_deref().unwrap_or(""),
            Limits::MESSAGE,
        ),
    })
}

fn is_denied(code: &str) -> bool {
    let code = code.to_ascii_lowercase();
    DENIED_CODES.iter().any(|denied| code.contains(denied))
}

fn sign_in_failed(record: &CloudTrailRecord) -> bool {
    let console = record
        .response_elements
        .as_ref()
        .and_then(|r| r.get("ConsoleLogin"));
    let service = record
        .service_event_details
        .as_ref()
        .zip(record.event_name.as_deref())
        .and_then(|(details, name)| details.get(name));
    [console, service]
        .into_iter()
        .flatten()
        .any(|status| status == "Failure")
}

/// Returns true for JSON `true` or the text `"true"`, both of which CloudTrail writes.
fn is_true(value: Option<&Value>) -> bool {
    matches!(value, Some(Value::Bool(true))) || value.and_then(Value::as_str) == Some("true")
}

/// Builds metadata from the record's context. `sourceIPAddress` is kept when it is not
/// exactly the actor's address: a service name, a list of addresses or a redacted value.
/// `resources` is kept whole, because the target holds only the first.
fn metadata_json(record: &CloudTrailRecord) -> Result<String, MapError> {
    let mut map = Map::new();
    insert_texts(&mut map, record);
    let values = [
        ("readOnly", &record.read_only),
        ("managementEvent", &record.management_event),
        (
            "sessionCredentialFromConsole",
            &record.session_credential_from_console,
        ),
        ("tlsDetails", &record.tls_details),
        ("requestParameters", &record.request_parameters),
        ("responseElements", &record.response_elements),
        ("additionalEventData", &record.additional_event_data),
        ("serviceEventDetails", &record.service_event_details),
        ("resources", &record.resources),
    ];
    for (key, value) in values {
        if let Some(value) = value.as_ref().filter(|v| !v.is_null()) {
            map.insert(key.to_owned(), value.clone());
        }
    }
    fields::metadata_json(map, &DROPPABLE)
}

fn insert_texts(map: &mut Map<String, Value>, record: &CloudTrailRecord) {
    let identity = record.user_identity.as_ref();
    let of_identity =
        |field: fn(&UserIdentity) -> &Option<String>| identity.and_then(|i| field(i).as_deref());
    let issuer = identity
        .and_then(|i| i.session_context.as_ref())
        .and_then(|c| c.session_issuer.as_ref());
    let source_ip = record.source_ip_address.as_deref().unwrap_or("");
    let source_ip_is_actor_ip = fields::ip_address(source_ip).as_deref() == Some(source_ip);
    let texts = [
        ("eventVersion", record.event_version.as_deref()),
        ("eventType", record.event_type.as_deref()),
        ("eventCategory", record.event_category.as_deref()),
        ("awsRegion", record.aws_region.as_deref()),
        ("userIdentityType", of_identity(|i| &i.kind)),
        ("accountId", of_identity(|i| &i.account_id)),
        ("accessKeyId", of_identity(|i| &i.access_key_id)),
        ("invokedBy", of_identity(|i| &i.invoked_by)),
        ("sessionIssuerArn", issuer.and_then(|i| i.arn.as_deref())),
        (
            "sourceIPAddress",
            Some(source_ip).filter(|_| !source_ip_is_actor_ip),
        ),
    ];
    for (key, value) in texts {
        fields::insert_text(map, key, value);
    }
}

#[cfg(test)]
mod tests;
