//! Field checks shared by every ingest path.

use crate::proto::{ActionType, ActorType, Result as ResultCode};

/// Byte limits of the stored text fields; they match the column sizes in `migrations/`.
#[derive(Debug, Clone, Copy)]
pub struct Limits;

impl Limits {
    /// Maximum bytes of `event_id`.
    pub const EVENT_ID: usize = 128;
    /// Maximum bytes of `service`, `tenant`, `action`, `target.type` and `error_code`.
    pub const NAME: usize = 128;
    /// Maximum bytes of actor and target ids, display names and target names.
    pub const ID: usize = 255;
    /// Maximum bytes of `actor.ip`; the longest IPv6 text form is 45 bytes.
    pub const IP: usize = 45;
    /// Maximum bytes of `actor.user_agent`.
    pub const USER_AGENT: usize = 1024;
    /// Maximum bytes of `outcome.message`.
    pub const MESSAGE: usize = 4096;
    /// Maximum bytes of `metadata_json`.
    pub const METADATA: usize = 64 * 1024;
    /// Maximum number of entries in `changes`.
    pub const CHANGES: usize = 1000;
    /// Maximum bytes of one change's `before_json` or `after_json`.
    pub const CHANGE_VALUE: usize = 64 * 1024;
    /// Earliest accepted `occurred_at`, 1970-01-01T00:00:00Z, in seconds since the epoch.
    pub const MIN_SECONDS: i64 = 0;
    /// Latest accepted `occurred_at`, 9999-12-31T23:59:59Z, the end of MySQL's DATETIME.
    pub const MAX_SECONDS: i64 = 253_402_300_799;
}

/// An event that cannot be stored, with the field at fault and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {problem}")]
pub struct InvalidEvent {
    /// Dotted path of the field, such as `actor.id`.
    pub field: &'static str,
    /// Description of the problem and of a valid value.
    pub problem: String,
}

impl InvalidEvent {
    pub(crate) fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

/// Checks a text field's length in bytes; `required` also rejects the empty string.
pub(crate) fn text(
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), InvalidEvent> {
    if required && value.is_empty() {
        return Err(InvalidEvent::new(field, "missing; set a non-empty value"));
    }
    if value.len() > max {
        return Err(InvalidEvent::new(
            field,
            format!(
                "{} bytes is over the limit of {max} bytes of UTF-8; shorten it",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Checks an identifier: [`text`] plus no whitespace or control characters, because ids
/// are compared byte for byte and a stray space would make two ids look equal.
pub(crate) fn identifier(
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), InvalidEvent> {
    text(field, value, max, required)?;
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidEvent::new(
            field,
            format!("{value:?} contains the character {c:?}; ids may not contain whitespace or control characters"),
        ));
    }
    Ok(())
}

/// Checks a lowercase hex string of exactly `digits` digits, not all zero (the W3C trace
/// context rule); empty is allowed.
pub(crate) fn hex_id(field: &'static str, value: &str, digits: usize) -> Result<(), InvalidEvent> {
    if value.is_empty() {
        return Ok(());
    }
    let well_formed = value.len() == digits
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(InvalidEvent::new(
            field,
            format!("{value:?} is not {digits} lowercase hex digits (W3C trace context)"),
        ));
    }
    if value.bytes().all(|b| b == b'0') {
        return Err(InvalidEvent::new(
            field,
            "all zeros is the invalid id in W3C trace context; leave it empty instead",
        ));
    }
    Ok(())
}

/// Checks that `value` is JSON text of an object, or empty.
pub(crate) fn json_object(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), InvalidEvent> {
    text(field, value, max, false)?;
    if value.is_empty() {
        return Ok(());
    }
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(InvalidEvent::new(
            field,
            "must be a JSON object such as {\"key\":\"value\"}, not another JSON value",
        )),
        Err(e) => Err(InvalidEvent::new(field, format!("not valid JSON: {e}"))),
    }
}

/// Checks that `value` is any JSON value, or empty.
pub(crate) fn json_value(field: &'static str, value: &str, max: usize) -> Result<(), InvalidEvent> {
    text(field, value, max, false)?;
    if value.is_empty() {
        return Ok(());
    }
    serde_json::from_str::<&serde_json::value::RawValue>(value)
        .map(|_| ())
        .map_err(|e| InvalidEvent::new(field, format!("not valid JSON: {e}")))
}

/// Checks an enum field: a known value other than the unspecified zero.
pub(crate) fn known_enum<E: TryFrom<i32>>(
    field: &'static str,
    value: i32,
    allowed: &str,
) -> Result<E, InvalidEvent> {
    if value == 0 {
        return Err(InvalidEvent::new(
            field,
            format!("unspecified; set one of {allowed}"),
        ));
    }
    E::try_from(value).map_err(|_| {
        InvalidEvent::new(
            field,
            format!("unknown value {value}; use one of {allowed}"),
        )
    })
}

/// Names accepted for `action_type`, for error messages.
pub(crate) const ACTION_TYPES: &str =
    "CREATE, READ, UPDATE, DELETE, LOGIN, LOGOUT, GRANT, REVOKE, EXPORT, EXECUTE, OTHER";
/// Names accepted for `actor.type`, for error messages.
pub(crate) const ACTOR_TYPES: &str = "USER, SERVICE_ACCOUNT, SYSTEM";
/// Names accepted for `outcome.result`, for error messages.
pub(crate) const RESULTS: &str = "SUCCESS, FAILURE, DENIED";

/// Checks `action_type`.
pub(crate) fn action_type(value: i32) -> Result<ActionType, InvalidEvent> {
    known_enum("action_type", value, ACTION_TYPES)
}

/// Checks `actor.type`.
pub(crate) fn actor_type(field: &'static str, value: i32) -> Result<ActorType, InvalidEvent> {
    known_enum(field, value, ACTOR_TYPES)
}

/// Checks `outcome.result`.
pub(crate) fn result(value: i32) -> Result<ResultCode, InvalidEvent> {
    known_enum("outcome.result", value, RESULTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_counts_bytes_not_chars() {
        let four_byte = "😀".repeat(32); // 128 bytes
        assert!(text("action", &four_byte, 128, true).is_ok());
        let over = format!("{four_byte}a");
        let err = text("action", &over, 128, true).unwrap_err();
        assert_eq!(err.field, "action");
        assert!(err.problem.contains("129 bytes"), "{}", err.problem);
    }

    #[test]
    fn identifier_rejects_spaces_and_controls() {
        assert!(identifier("event_id", "a b", 128, true).is_err());
        assert!(identifier("event_id", "a\u{0}", 128, true).is_err());
        assert!(identifier("event_id", "ab\t", 128, true).is_err());
        assert!(identifier("event_id", "𝔘-1", 128, true).is_ok());
        assert!(identifier("event_id", "", 128, true).is_err());
    }

    #[test]
    fn hex_id_follows_trace_context() {
        assert!(hex_id("trace_id", "", 32).is_ok());
        assert!(hex_id("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736", 32).is_ok());
        assert!(hex_id("trace_id", "4BF92F3577B34DA6A3CE929D0E0E4736", 32).is_err());
        assert!(hex_id("trace_id", "4bf92f35", 32).is_err());
        assert!(hex_id("trace_id", &"0".repeat(32), 32).is_err());
    }

    #[test]
    fn json_object_accepts_objects_only() {
        assert!(json_object("metadata_json", "", 10).is_ok());
        assert!(json_object("metadata_json", r#"{"a":{"b":[1]}}"#, 100).is_ok());
        assert!(json_object("metadata_json", "[1]", 100).is_err());
        assert!(json_object("metadata_json", "{", 100).is_err());
        assert!(json_object("metadata_json", r#"{"a":1}"#, 3).is_err());
    }

    #[test]
    fn known_enum_rejects_zero_and_unknown() {
        assert!(action_type(0).is_err());
        assert!(action_type(99).is_err());
        assert_eq!(action_type(1).unwrap(), ActionType::Create);
    }
}
