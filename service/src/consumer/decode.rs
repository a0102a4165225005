//! Decoding of Kafka message values into validated events.

use prost::Message;

use crate::event::{EventRecord, InvalidEvent};
use crate::kafka::{CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF};
use crate::proto::OperationEvent;

/// Why a message cannot be stored; each one goes to the dead-letter topic.
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
        }
    }
}

/// Decodes and validates one message value. A missing content type means protobuf.
pub fn decode(
    payload: Option<&[u8]>,
    content_type: Option<&str>,
    max_event_bytes: usize,
) -> Result<EventRecord, Rejection> {
    let payload = payload
        .filter(|p| !p.is_empty())
        .ok_or(Rejection::EmptyPayload)?;
    if payload.len() > max_event_bytes {
        return Err(Rejection::TooLarge {
            size: payload.len(),
            max: max_event_bytes,
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
    Ok(EventRecord::from_event(&event)?)
}

/// The media type without parameters such as `; charset=utf-8`.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_value_is_rejected() {
        assert_eq!(decode(None, None, 10).unwrap_err(), Rejection::EmptyPayload);
        assert_eq!(
            decode(Some(b""), None, 10).unwrap_err(),
            Rejection::EmptyPayload
        );
    }

    #[test]
    fn oversized_value_is_rejected_before_decoding() {
        let err = decode(Some(&[0xff; 11]), None, 10).unwrap_err();
        assert_eq!(err.code(), "too_large");
    }

    #[test]
    fn garbage_is_undecodable() {
        let err = decode(Some(&[0xff, 0xff, 0xff]), None, 100).unwrap_err();
        assert_eq!(err.code(), "undecodable");
        let err = decode(Some(b"{"), Some("application/json; charset=utf-8"), 100).unwrap_err();
        assert_eq!(err.code(), "undecodable");
    }

    #[test]
    fn unknown_content_type_is_rejected() {
        let err = decode(Some(b"x"), Some("text/csv"), 100).unwrap_err();
        assert_eq!(err.code(), "unsupported_content_type");
    }

    #[test]
    fn empty_protobuf_event_is_invalid_not_undecodable() {
        // A zero-length protobuf message decodes to defaults; a one-byte value with
        // field 15 (schema_version) = 0 does too.
        let err = decode(Some(&[0x78, 0x00]), None, 100).unwrap_err();
        assert_eq!(err.code(), "invalid_event");
    }
}
