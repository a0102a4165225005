//! Decoding of Kafka message values into validated events.

use std::time::Duration;

use chrono::SecondsFormat;
use prost::Message;

use crate::event::{datetime_from_us, EventRecord, InvalidEvent};
use crate::kafka::{CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF};
use crate::proto::OperationEvent;

/// Reason a message cannot be stored. Each one goes to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The message has no value.
    #[error("message has no value")]
    EmptyPayload,
    /// The value is larger than the configured maximum event size.
    #[error("value of {size} bytes is over the maximum event size of {max} bytes")]
    TooLarge {
        /// Size of the value.
        size: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The `content-type` header names an encoding oplog does not read.
    #[error("unsupported content-type {0:?}; use application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    /// The value does not decode as an `OperationEvent`.
    #[error("value does not decode as an OperationEvent: {0}")]
    Undecodable(String),
    /// The event decodes but breaks a field rule.
    #[error(transparent)]
    Invalid(#[from] InvalidEvent),
    /// The event's time is further ahead of the consumer's clock than allowed.
    #[error("occurred_at {occurred_at} is more than {max_skew:?} ahead of the consumer's clock ({now}); fix the producer's clock or the event time")]
    TooFarInFuture {
        /// The event time, RFC 3339.
        occurred_at: String,
        /// The consumer's time, RFC 3339.
        now: String,
        /// Allowed skew.
        max_skew: Duration,
    },
    /// The event is older than the retention, so its partition may already be gone.
    #[error("occurred_at {occurred_at} is older than the retention of {retention_days} days; such events are not stored")]
    OlderThanRetention {
        /// The event time, RFC 3339.
        occurred_at: String,
        /// The retention in days.
        retention_days: u32,
    },
    /// A different event with the same time and id is already stored; the stored one
    /// is kept as it is.
    #[error("a different event with event_id {event_id:?} and occurred_at {occurred_at} is already stored; give each event its own id")]
    EventIdReused {
        /// The reused id.
        event_id: String,
        /// The shared time, RFC 3339.
        occurred_at: String,
    },
    /// The database rejected the row, for a reason the validation does not cover.
    #[error("the database rejected the row: {0}")]
    RejectedByDatabase(String),
}

/// Limits a message must meet to be stored.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest value accepted, in bytes.
    pub max_event_bytes: usize,
    /// How far an event time may be ahead of the consumer's clock.
    pub max_future_skew: Duration,
    /// Events older than this many days are rejected; `None` keeps every age.
    pub retention_days: Option<u32>,
}

impl Rejection {
    /// Short, stable name of the reason: the `reason` metric label and the value of the
    /// dead-letter reason header.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyPayload => "empty_payload",
            Self::TooLarge { .. } => "too_large",
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::Undecodable(_) => "undecodable",
            Self::Invalid(_) => "invalid_event",
            Self::TooFarInFuture { .. } => "too_far_in_future",
            Self::OlderThanRetention { .. } => "older_than_retention",
            Self::EventIdReused { .. } => "event_id_reused",
            Self::RejectedByDatabase(_) => "rejected_by_database",
        }
    }
}

/// Decodes and validates one message value, with `now_us` as the current time. A
/// missing content type means protobuf.
pub fn decode(
    payload: Option<&[u8]>,
    content_type: Option<&str>,
    limits: &DecodeLimits,
    now_us: i64,
) -> Result<EventRecord, Rejection> {
    let payload = payload
        .filter(|p| !p.is_empty())
        .ok_or(Rejection::EmptyPayload)?;
    if payload.len() > limits.max_event_bytes {
        return Err(Rejection::TooLarge {
            size: payload.len(),
            max: limits.max_event_bytes,
        });
    }
    let event = match content_type.map(media_type) {
        None | Some(CONTENT_TYPE_PROTOBUF) | Some("application/protobuf") => {
            OperationEvent::decode(payload).map_err(|e| Rejection::Undecodable(e.to_string()))?
        }
        Some(CONTENT_TYPE_JSON) => serde_json::from_slice::<OperationEvent>(payload)
            .map_err(|e| Rejection::Undecodable(e.to_string()))?,
        Some(other) => return Err(Rejection::UnsupportedContentType(other.to_owned())),
    };
    let record = EventRecord::from_event(&event)?;
    check_time(&record, limits, now_us)?;
    Ok(record)
}

fn check_time(record: &EventRecord, limits: &DecodeLimits, now_us: i64) -> Result<(), Rejection> {
    let rfc3339 = |us: i64| datetime_from_us(us).to_rfc3339_opts(SecondsFormat::Micros, true);
    let max_skew_us = i64::try_from(limits.max_future_skew.as_micros()).unwrap_or(i64::MAX);
    if record.occurred_at_us > now_us.saturating_add(max_skew_us) {
        return Err(Rejection::TooFarInFuture {
            occurred_at: rfc3339(record.occurred_at_us),
            now: rfc3339(now_us),
            max_skew: limits.max_future_skew,
        });
    }
    if let Some(days) = limits.retention_days {
        let oldest_us = now_us - i64::from(days) * 86_400_000_000;
        if record.occurred_at_us < oldest_us {
            return Err(Rejection::OlderThanRetention {
                occurred_at: rfc3339(record.occurred_at_us),
                retention_days: days,
            });
        }
    }
    Ok(())
}

/// Returns the media type without parameters such as `; charset=utf-8`.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DecodeLimits = DecodeLimits {
        max_event_bytes: 100,
        max_future_skew: Duration::from_secs(3600),
        retention_days: Some(30),
    };
    const NOW_US: i64 = 1_767_225_600_000_000;

    fn decode_with(
        payload: &[u8],
        content_type: Option<&str>,
        max: usize,
    ) -> Result<EventRecord, Rejection> {
        let limits = DecodeLimits {
            max_event_bytes: max,
            ..LIMITS
        };
        decode(Some(payload), content_type, &limits, NOW_US)
    }

    #[test]
    fn missing_value_is_rejected() {
        assert_eq!(
            decode(None, None, &LIMITS, NOW_US).unwrap_err(),
            Rejection::EmptyPayload
        );
        assert_eq!(
            decode_with(b"", None, 10).unwrap_err(),
            Rejection::EmptyPayload
        );
    }

    #[test]
    fn oversized_value_is_rejected_before_decoding() {
        let err = decode_with(&[0xff; 11], None, 10).unwrap_err();
        assert_eq!(err.code(), "too_large");
    }

    #[test]
    fn garbage_is_undecodable() {
        let err = decode_with(&[0xff, 0xff, 0xff], None, 100).unwrap_err();
        assert_eq!(err.code(), "undecodable");
        let err = decode_with(b"{", Some("application/json; charset=utf-8"), 100).unwrap_err();
        assert_eq!(err.code(), "undecodable");
    }

    #[test]
    fn unknown_content_type_is_rejected() {
        let err = decode_with(b"x", Some("text/csv"), 100).unwrap_err();
        assert_eq!(err.code(), "unsupported_content_type");
    }

    #[test]
    fn empty_protobuf_event_is_invalid_not_undecodable() {
        // A zero-length protobuf message decodes to defaults; a one-byte value with
        // field 15 (schema_version) = 0 does too.
        let err = decode_with(&[0x78, 0x00], None, 100).unwrap_err();
        assert_eq!(err.code(), "invalid_event");
    }

    fn record_at(us: i64) -> EventRecord {
        let mut record = crate::event::test_record("t");
        record.occurred_at_us = us;
        record
    }

    #[test]
    fn time_policy_rejects_far_future_and_too_old() {
        let hour_us = 3_600_000_000;
        assert!(check_time(&record_at(NOW_US + hour_us), &LIMITS, NOW_US).is_ok());
        let err = check_time(&record_at(NOW_US + hour_us + 1), &LIMITS, NOW_US).unwrap_err();
        assert_eq!(err.code(), "too_far_in_future");
        let day_us = 24 * hour_us;
        assert!(check_time(&record_at(NOW_US - 30 * day_us), &LIMITS, NOW_US).is_ok());
        let err = check_time(&record_at(NOW_US - 30 * day_us - 1), &LIMITS, NOW_US).unwrap_err();
        assert_eq!(err.code(), "older_than_retention");
        let keep_all = DecodeLimits {
            retention_days: None,
            ..LIMITS
        };
        assert!(check_time(&record_at(0), &keep_all, NOW_US).is_ok());
    }
}
