//! Conversions from source values to event fields that respect the limits of the event
//! schema: free text is cut at a character boundary, ids that do not fit are rejected.

use std::{io, net::IpAddr};

use chrono::DateTime;
use serde_json::{Map, Value};

use super::MapError;
use crate::event::Limits;

/// Cuts `value` to at most `max` bytes without splitting a UTF-8 character.
pub(crate) fn truncate(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// Returns `value` when it fits in `max` bytes; empty is allowed.
pub(crate) fn bounded(field: &'static str, value: &str, max: usize) -> Result<String, MapError> {
    if value.len() > max {
        return Err(MapError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(value.to_owned())
}

/// Returns `value` when it is present, non-empty and fits in `max` bytes.
pub(crate) fn required(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<String, MapError> {
    match value {
        Some(value) if !value.is_empty() => bounded(field, value, max),
        _ => Err(MapError::Missing { field }),
    }
}

/// Returns an event id: 1 to 128 bytes without whitespace or control characters, because
/// it is the deduplication key and is compared byte for byte.
pub(crate) fn event_id(field: &'static str, value: Option<&str>) -> Result<String, MapError> {
    let id = required(field, value, Limits::EVENT_ID)?;
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(MapError::value(
            field,
            &id,
            "contains whitespace or a control character, which event ids may not",
        ));
    }
    Ok(id)
}

/// Parses an RFC 3339 time such as `2025-03-04T06:22:18.819232Z`, keeping every digit
/// of the fraction (the store truncates to microseconds).
pub(crate) fn timestamp(
    field: &'static str,
    value: Option<&str>,
) -> Result<pbjson_types::Timestamp, MapError> {
    let text = value
        .filter(|v| !v.is_empty())
        .ok_or(MapError::Missing { field })?;
    let time = DateTime::parse_from_rfc3339(text).map_err(|e| {
        MapError::value(
            field,
            text,
            format!("{e}; expected RFC 3339 such as 2026-01-01T00:00:00Z"),
        )
    })?;
    let seconds = time.timestamp();
    if !(Limits::MIN_SECONDS..=Limits::MAX_SECONDS).contains(&seconds) {
        return Err(MapError::value(
            field,
            text,
            "is outside the storable range 1970-01-01 to 9999-12-31",
        ));
    }
    Ok(pbjson_types::Timestamp {
        seconds,
        // At most 999_999_999, so the cast cannot overflow.
        nanos: time.timestamp_subsec_nanos() as i32,
    })
}

/// Returns the client address from a source IP field. Proxies write lists such as
/// `81.2.69.142, 192.168.10.10` with the client first; values that are not addresses
/// (`ec2.amazonaws.com`, `redacted`) give `None`.
pub(crate) fn ip_address(value: &str) -> Option<String> {
    let first = value.split(',').next()?.trim();
    first.parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

/// Inserts `value` under `key` unless it is empty, keeping metadata free of noise.
pub(crate) fn insert_text(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// Serializes metadata as JSON object text within [`Limits::METADATA`]. When the text is
/// too long, the `droppable` keys are removed in order and listed under
/// `omittedFields`, so a reader sees that something was left out and what.
pub(crate) fn metadata_json(
    mut map: Map<String, Value>,
    droppable: &[&str],
) -> Result<String, MapError> {
    let mut omitted = Vec::new();
    let mut text = serde_json::to_string(&map).expect("a JSON map always serializes");
    for key in droppable {
        if text.len() <= Limits::METADATA {
            break;
        }
        if map.remove(*key).is_some() {
            omitted.push(Value::String((*key).to_owned()));
            map.insert("omittedFields".to_owned(), Value::Array(omitted.clone()));
            text = serde_json::to_string(&map).expect("a JSON map always serializes");
        }
    }
    if text.len() > Limits::METADATA {
        return Err(MapError::TooLong {
            field: "metadata",
            len: text.len(),
            max: Limits::METADATA,
        });
    }
    Ok(text)
}

/// Returns the length of `value` as compact JSON text without building the text.
pub(crate) fn json_len(value: &Value) -> usize {
    struct Counter(usize);
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).expect("writing to a counter cannot fail");
    counter.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_four_byte_characters_whole() {
        // "😀" is 4 bytes, so a 6-byte cut of "a😀😀" must stop after the first emoji.
        assert_eq!(truncate("a😀😀", 6), "a😀");
        assert_eq!(truncate("a😀😀", 5), "a😀");
        assert_eq!(truncate("a😀😀", 4), "a");
        assert_eq!(truncate("a😀😀", 9), "a😀😀");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn event_id_rejects_whitespace_and_length() {
        assert_eq!(event_id("eventID", Some("abc-1")).unwrap(), "abc-1");
        assert!(matches!(
            event_id("eventID", Some("a b")),
            Err(MapError::Value { .. })
        ));
        assert!(matches!(
            event_id("eventID", Some("")),
            Err(MapError::Missing { .. })
        ));
        assert!(matches!(
            event_id("eventID", None),
            Err(MapError::Missing { .. })
        ));
        let long = "x".repeat(129);
        assert!(matches!(
            event_id("eventID", Some(&long)),
            Err(MapError::TooLong {
                len: 129,
                max: 128,
                ..
            })
        ));
    }

    #[test]
    fn timestamp_keeps_microseconds() {
        let ts = timestamp("t", Some("2025-03-04T06:22:18.819232Z")).unwrap();
        assert_eq!(ts.seconds, 1_741_069_338);
        assert_eq!(ts.nanos, 819_232_000);
        let offset = timestamp("t", Some("2025-03-04T07:22:18+01:00")).unwrap();
        assert_eq!(offset.seconds, 1_741_069_338);
        assert!(matches!(
            timestamp("t", Some("yesterday")),
            Err(MapError::Value { .. })
        ));
        assert!(matches!(
            timestamp("t", Some("1960-01-01T00:00:00Z")),
            Err(MapError::Value { .. })
        ));
        assert!(matches!(
            timestamp("t", None),
            Err(MapError::Missing { .. })
        ));
    }

    #[test]
    fn ip_address_takes_first_of_list() {
        assert_eq!(ip_address("81.2.69.142").as_deref(), Some("81.2.69.142"));
        assert_eq!(
            ip_address("81.2.69.142, 192.168.10.10").as_deref(),
            Some("81.2.69.142")
        );
        assert_eq!(ip_address("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip_address("ec2.amazonaws.com"), None);
        assert_eq!(ip_address(""), None);
    }

    #[test]
    fn metadata_drops_large_fields_in_order() {
        let mut map = Map::new();
        map.insert("small".into(), Value::from("kept"));
        map.insert("big".into(), Value::from("x".repeat(Limits::METADATA)));
        let text = metadata_json(map, &["absent", "big"]).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["small"], "kept");
        assert!(parsed.get("big").is_none());
        assert_eq!(parsed["omittedFields"], serde_json::json!(["big"]));
    }

    #[test]
    fn metadata_too_large_without_droppable_is_an_error() {
        let mut map = Map::new();
        map.insert("big".into(), Value::from("x".repeat(Limits::METADATA)));
        assert!(matches!(
            metadata_json(map, &[]),
            Err(MapError::TooLong { .. })
        ));
    }

    #[test]
    fn json_len_matches_serialized_text() {
        let value = serde_json::json!({"a": [1, "é", null], "b": {"c": true}});
        assert_eq!(
            json_len(&value),
            serde_json::to_string(&value).unwrap().len()
        );
    }
}
