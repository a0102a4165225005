//! The flat form of an event that the stores write and read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::validate::{self, InvalidEvent, Limits};
use crate::proto::{Actor, Change, Impersonator, OperationEvent, Outcome, Target};

/// A validated event, flattened into the columns of the events and details tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Microseconds since the Unix epoch, UTC.
    pub occurred_at_us: i64,
    /// Producer-assigned unique id.
    pub event_id: String,
    /// Source service.
    pub service: String,
    /// Tenant, empty when none.
    pub tenant: String,
    /// Actor id.
    pub actor_id: String,
    /// `ActorType` as its protobuf number.
    pub actor_type: i32,
    /// Actor display name.
    pub actor_display_name: String,
    /// Actor IP address text.
    pub actor_ip: String,
    /// Actor user agent.
    pub actor_user_agent: String,
    /// Impersonating identity's id, empty when none.
    pub impersonator_id: String,
    /// Impersonating identity's `ActorType`, 0 when none.
    pub impersonator_type: i32,
    /// Dotted action name.
    pub action: String,
    /// `ActionType` as its protobuf number.
    pub action_type: i32,
    /// Target type.
    pub target_type: String,
    /// Target id.
    pub target_id: String,
    /// Target name.
    pub target_name: String,
    /// `Result` as its protobuf number.
    pub result: i32,
    /// Error code.
    pub error_code: String,
    /// Outcome message.
    pub outcome_message: String,
    /// W3C trace id.
    pub trace_id: String,
    /// W3C span id.
    pub span_id: String,
    /// Request id.
    pub request_id: String,
    /// JSON object text, empty when none.
    pub metadata_json: String,
    /// JSON array of [`ChangeRecord`], empty when no changes.
    pub changes_json: String,
    /// Schema version the producer wrote.
    pub schema_version: i32,
}

/// One change as stored in the `changes` JSON column: the values are embedded as JSON,
/// not as strings, so SQL JSON functions can read them.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChangeRecord<'a> {
    /// Field path.
    pub field: String,
    /// Value before the operation; absent when the producer sent none.
    #[serde(
        borrow,
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub before: Option<&'a RawValue>,
    /// Value after the operation; absent when the producer sent none.
    #[serde(
        borrow,
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub after: Option<&'a RawValue>,
}

/// Reads a present value, JSON `null` included, as `Some`; only an absent key is `None`.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

impl EventRecord {
    /// Validates an event and flattens it. Timestamps are truncated to microseconds.
    pub fn from_event(event: &OperationEvent) -> Result<Self, InvalidEvent> {
        let occurred_at_us = occurred_at_us(event)?;
        validate::identifier("event_id", &event.event_id, Limits::EVENT_ID, true)?;
        validate::text("service", &event.service, Limits::NAME, true)?;
        validate::text("tenant", &event.tenant, Limits::NAME, false)?;
        validate::text("action", &event.action, Limits::NAME, true)?;
        validate::action_type(event.action_type)?;

        let actor = event
            .actor
            .as_ref()
            .ok_or_else(|| InvalidEvent::new("actor", "missing; set actor.id and actor.type"))?;
        check_actor(actor)?;

        let default_target = Target::default();
        let target = event.target.as_ref().unwrap_or(&default_target);
        validate::text("target.type", &target.r#type, Limits::NAME, false)?;
        validate::text("target.id", &target.id, Limits::ID, false)?;
        validate::text("target.name", &target.name, Limits::ID, false)?;

        let outcome = event
            .outcome
            .as_ref()
            .ok_or_else(|| InvalidEvent::new("outcome", "missing; set outcome.result"))?;
        validate::result(outcome.result)?;
        validate::text(
            "outcome.error_code",
            &outcome.error_code,
            Limits::NAME,
            false,
        )?;
        validate::text("outcome.message", &outcome.message, Limits::MESSAGE, false)?;

        validate::hex_id("trace_id", &event.trace_id, 32)?;
        validate::hex_id("span_id", &event.span_id, 16)?;
        validate::text("request_id", &event.request_id, Limits::NAME, false)?;
        validate::json_object("metadata_json", &event.metadata_json, Limits::METADATA)?;
        let changes_json = changes_json(&event.changes)?;

        let impersonator = actor.impersonator.clone().unwrap_or_default();
        Ok(Self {
            occurred_at_us,
            event_id: event.event_id.clone(),
            service: event.service.clone(),
            tenant: event.tenant.clone(),
            actor_id: actor.id.clone(),
            actor_type: actor.r#type,
            actor_display_name: actor.display_name.clone(),
            actor_ip: actor.ip.clone(),
            actor_user_agent: actor.user_agent.clone(),
            impersonator_id: impersonator.id,
            impersonator_type: impersonator.r#type,
            action: event.action.clone(),
            action_type: event.action_type,
            target_type: target.r#type.clone(),
            target_id: target.id.clone(),
            target_name: target.name.clone(),
            result: outcome.result,
            error_code: outcome.error_code.clone(),
            outcome_message: outcome.message.clone(),
            trace_id: event.trace_id.clone(),
            span_id: event.span_id.clone(),
            request_id: event.request_id.clone(),
            metadata_json: event.metadata_json.clone(),
            changes_json,
            schema_version: event.schema_version.max(1) as i32,
        })
    }

    /// Rebuilds the API form of a stored event.
    pub fn into_event(self) -> OperationEvent {
        let impersonator = (!self.impersonator_id.is_empty()).then_some(Impersonator {
            id: self.impersonator_id,
            r#type: self.impersonator_type,
        });
        let changes = parse_changes(&self.changes_json);
        OperationEvent {
            event_id: self.event_id,
            occurred_at: Some(timestamp_from_us(self.occurred_at_us)),
            service: self.service,
            tenant: self.tenant,
            actor: Some(Actor {
                id: self.actor_id,
                r#type: self.actor_type,
                display_name: self.actor_display_name,
                ip: self.actor_ip,
                user_agent: self.actor_user_agent,
                impersonator,
            }),
            action: self.action,
            action_type: self.action_type,
            target: Some(Target {
                r#type: self.target_type,
                id: self.target_id,
                name: self.target_name,
            }),
            outcome: Some(Outcome {
                result: self.result,
                error_code: self.error_code,
                message: self.outcome_message,
            }),
            trace_id: self.trace_id,
            span_id: self.span_id,
            request_id: self.request_id,
            metadata_json: self.metadata_json,
            changes,
            schema_version: self.schema_version as u32,
        }
    }

    /// Approximate bytes this record adds to an INSERT statement, for batch sizing.
    pub fn encoded_len(&self) -> usize {
        // Text lengths plus a fixed allowance for numbers, quotes and separators.
        const FIXED: usize = 160;
        FIXED
            + self.event_id.len()
            + self.service.len()
            + self.tenant.len()
            + self.actor_id.len()
            + self.actor_display_name.len()
            + self.actor_ip.len()
            + self.actor_user_agent.len()
            + self.impersonator_id.len()
            + self.action.len()
            + self.target_type.len()
            + self.target_id.len()
            + self.target_name.len()
            + self.error_code.len()
            + self.outcome_message.len()
            + self.trace_id.len()
            + self.span_id.len()
            + self.request_id.len()
            + self.metadata_json.len()
            + self.changes_json.len()
    }

    /// Hashes the stored content: the first 16 bytes of the SHA-256 of the event's
    /// protobuf encoding. Equal for a redelivery, different for another event that
    /// reuses the id.
    pub fn content_hash(&self) -> [u8; 16] {
        use prost::Message as _;
        use sha2::{Digest, Sha256};

        let encoded = self.clone().into_event().encode_to_vec();
        let digest = Sha256::digest(encoded);
        let mut hash = [0; 16];
        hash.copy_from_slice(&digest[..16]);
        hash
    }

    /// Returns the event time as a UTC date-time.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        datetime_from_us(self.occurred_at_us)
    }
}

/// Converts microseconds since the epoch into a UTC date-time.
pub fn datetime_from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).expect("stored times are inside chrono's range")
}

/// Converts microseconds since the epoch into a protobuf timestamp.
pub fn timestamp_from_us(us: i64) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// Converts a protobuf timestamp into microseconds since the epoch, truncating finer
/// digits; `field` names the timestamp in the error.
pub fn timestamp_to_us(
    field: &'static str,
    ts: &pbjson_types::Timestamp,
) -> Result<i64, InvalidEvent> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(InvalidEvent::new(
            field,
            format!("nanos {} is outside 0..=999999999", ts.nanos),
        ));
    }
    if !(Limits::MIN_SECONDS..=Limits::MAX_SECONDS).contains(&ts.seconds) {
        return Err(InvalidEvent::new(
            field,
            format!(
                "{} seconds since the epoch is outside 1970-01-01T00:00:00Z..=9999-12-31T23:59:59Z",
                ts.seconds
            ),
        ));
    }
    Ok(ts.seconds * 1_000_000 + i64::from(ts.nanos / 1000))
}

fn occurred_at_us(event: &OperationEvent) -> Result<i64, InvalidEvent> {
    let ts = event.occurred_at.as_ref().ok_or_else(|| {
        InvalidEvent::new("occurred_at", "missing; set the UTC time of the operation")
    })?;
    timestamp_to_us("occurred_at", ts)
}

fn check_actor(actor: &Actor) -> Result<(), InvalidEvent> {
    validate::identifier("actor.id", &actor.id, Limits::ID, true)?;
    validate::actor_type("actor.type", actor.r#type)?;
    validate::text("actor.display_name", &actor.display_name, Limits::ID, false)?;
    validate::text("actor.ip", &actor.ip, Limits::IP, false)?;
    if !actor.ip.is_empty() && actor.ip.parse::<std::net::IpAddr>().is_err() {
        return Err(InvalidEvent::new(
            "actor.ip",
            format!("{:?} is not an IPv4 or IPv6 address", actor.ip),
        ));
    }
    validate::text(
        "actor.user_agent",
        &actor.user_agent,
        Limits::USER_AGENT,
        false,
    )?;
    if let Some(imp) = &actor.impersonator {
        validate::identifier("actor.impersonator.id", &imp.id, Limits::ID, true)?;
        validate::actor_type("actor.impersonator.type", imp.r#type)?;
    }
    Ok(())
}

fn changes_json(changes: &[Change]) -> Result<String, InvalidEvent> {
    if changes.is_empty() {
        return Ok(String::new());
    }
    if changes.len() > Limits::CHANGES {
        return Err(InvalidEvent::new(
            "changes",
            format!(
                "{} entries is over the limit of {}; split the operation or summarize in metadata_json",
                changes.len(),
                Limits::CHANGES
            ),
        ));
    }
    let mut records = Vec::with_capacity(changes.len());
    for change in changes {
        validate::text("changes.field", &change.field, Limits::ID, true)?;
        records.push(ChangeRecord {
            field: change.field.clone(),
            before: raw_json("changes.before_json", &change.before_json)?,
            after: raw_json("changes.after_json", &change.after_json)?,
        });
    }
    Ok(serde_json::to_string(&records).expect("change records serialize"))
}

fn raw_json<'a>(field: &'static str, text: &'a str) -> Result<Option<&'a RawValue>, InvalidEvent> {
    validate::json_value(field, text, Limits::CHANGE_VALUE)?;
    if text.is_empty() {
        return Ok(None);
    }
    let raw = serde_json::from_str(text).expect("validated as JSON above");
    Ok(Some(raw))
}

fn parse_changes(json: &str) -> Vec<Change> {
    if json.is_empty() {
        return Vec::new();
    }
    // The column is only written by `changes_json`, so a parse failure means someone
    // edited the row by hand; show that instead of hiding the change.
    let records: Vec<ChangeRecord> = match serde_json::from_str(json) {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(error = %e, "stored changes are not valid JSON");
            return Vec::new();
        }
    };
    records
        .into_iter()
        .map(|r| Change {
            field: r.field,
            before_json: r.before.map(|v| v.get().to_owned()).unwrap_or_default(),
            after_json: r.after.map(|v| v.get().to_owned()).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
