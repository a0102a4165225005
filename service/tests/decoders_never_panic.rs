//! Property tests: the Kafka message decoder and the import readers return an error,
//! never a panic, on arbitrary bytes and arbitrary JSON.

mod support;

use std::io::Cursor;
use std::time::Duration;

use oplog::consumer::decode::{decode, DecodeLimits};
use oplog::import::{Format, Records};
use proptest::prelude::*;
use prost::Message;
use serde_json::Value;

const LIMITS: DecodeLimits = DecodeLimits {
    max_event_bytes: 1 << 20,
    max_future_skew: Duration::from_secs(3600),
    retention_days: Some(365),
};
const NOW_US: i64 = support::MIDNIGHT_2026_US;

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("application/x-protobuf")),
        Just(Some("application/json")),
        Just(Some("application/json; charset=utf-8")),
        Just(Some("text/plain")),
    ]
}

/// Arbitrary JSON, biased towards the keys the readers look for.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("eventId".to_owned()),
        Just("occurredAt".to_owned()),
        Just("actor".to_owned()),
        Just("kind".to_owned()),
        Just("apiVersion".to_owned()),
        Just("auditID".to_owned()),
        Just("objectRef".to_owned()),
        Just("user".to_owned()),
        Just("eventVersion".to_owned()),
        Just("eventSource".to_owned()),
        Just("userIdentity".to_owned()),
        Just("Records".to_owned()),
        Just("protoPayload".to_owned()),
        Just("properties".to_owned()),
        Just("log".to_owned()),
        "[a-zA-Z]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::from("Event")),
        Just(Value::from("audit.k8s.io/v1")),
        Just(Value::from("2026-01-01T00:00:00Z")),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn read_all(bytes: Vec<u8>, format: Format) {
    if let Ok(records) = Records::new(Cursor::new(bytes), "generated", format) {
        for record in records {
            let _ = record;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), ct in content_type()) {
        let _ = decode(Some(&bytes), ct, &LIMITS, NOW_US);
    }

    #[test]
    fn decode_survives_corrupted_events(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = support::unicode_event("e", NOW_US).encode_to_vec();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] ^= value;
        }
        let _ = decode(Some(&bytes), None, &LIMITS, NOW_US);
    }

    #[test]
    fn decode_survives_arbitrary_json(value in json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let _ = decode(Some(&bytes), Some("application/json"), &LIMITS, NOW_US);
    }

    #[test]
    fn import_survives_arbitrary_json_lines(values in prop::collection::vec(json(), 1..4)) {
        let mut text = Vec::new();
        for value in &values {
            serde_json::to_writer(&mut text, value).unwrap();
            text.push(b'\n');
        }
        read_all(text.clone(), Format::Auto);
        read_all(text.clone(), Format::Kubernetes);
        read_all(text, Format::CloudTrail);
    }

    #[test]
    fn import_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        read_all(bytes, Format::Auto);
    }
}
