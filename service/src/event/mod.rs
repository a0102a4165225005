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
