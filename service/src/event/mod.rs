//! Validation of incoming events and their flat, storable form.
//!
//! Every path into the store (Kafka consumer, Append API, import) runs
//! [`EventRecord::from_event`], so an event is checked the same way whichever way it came.

mod record;
mod validate;

pub use record::{ChangeRecord, EventRecord};
pub use validate::{InvalidEvent, Limits};
