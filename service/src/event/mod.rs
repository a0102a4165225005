//! Validation of incoming events and their flat, storable form.
//!
//! Every path into the store (Kafka consumer, Append API, import) runs
//! [`EventRecord::from_event`], so an event is checked the same way whichever way it came.

mod record;
mod validate;

pub use record::{datetime_from_us, timestamp_from_us, timestamp_to_us, ChangeRecord, EventRecord};
pub use validate::{InvalidEvent, Limits};

/// Checks a W3C trace id: 32 lowercase hex digits, not all zero.
pub fn validate_trace_id(trace_id: &str) -> Result<(), InvalidEvent> {
    validate::hex_id("trace_id", trace_id, 32)
}

/// Builds a minimal valid record for unit tests.
#[cfg(test)]
pub(crate) fn test_record(event_id: &str) -> EventRecord {
    EventRecord {
        occurred_at_us: 0,
        event_id: event_id.into(),
        service: "s".into(),
        tenant: String::new(),
        actor_id: "a".into(),
        actor_type: 1,
        actor_display_name: String::new(),
        actor_ip: String::new(),
        actor_user_agent: String::new(),
        impersonator_id: String::new(),
        impersonator_type: 0,
        action: "x.y".into(),
        action_type: 1,
        target_type: String::new(),
        target_id: String::new(),
        target_name: String::new(),
        result: 1,
        error_code: String::new(),
        outcome_message: String::new(),
        trace_id: String::new(),
        span_id: String::new(),
        request_id: String::new(),
        metadata_json: String::new(),
        changes_json: String::new(),
        schema_version: 1,
    }
}
