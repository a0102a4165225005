use super::*;
use crate::proto::{ActionType, ActorType, Result as ResultCode};

fn sample() -> OperationEvent {
    OperationEvent {
        event_id: "evt-1".into(),
        occurred_at: Some(pbjson_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 123_456_789,
        }),
        service: "billing".into(),
        tenant: "acme".into(),
        actor: Some(Actor {
            id: "user:😀".into(),
            r#type: ActorType::User as i32,
            display_name: "Zoë 😀".into(),
            ip: "2001:db8::1".into(),
            user_agent: "curl/8.5".into(),
            impersonator: Some(Impersonator {
                id: "admin".into(),
                r#type: ActorType::User as i32,
            }),
        }),
        action: "order.refund".into(),
        action_type: ActionType::Update as i32,
        target: Some(Target {
            r#type: "order".into(),
            id: "o-1".into(),
            name: "Order 1".into(),
        }),
        outcome: Some(Outcome {
            result: ResultCode::Success as i32,
            error_code: String::new(),
            message: String::new(),
        }),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        span_id: "00f067aa0ba902b7".into(),
        request_id: "req-1".into(),
        metadata_json: r#"{"a": {"b": [1, 2.5, "😀"]}}"#.into(),
        changes: vec![Change {
            field: "status".into(),
            before_json: r#""open""#.into(),
            after_json: String::new(),
        }],
        schema_version: 1,
    }
}

#[test]
fn round_trip_keeps_every_field() {
    let event = sample();
    let record = EventRecord::from_event(&event).unwrap();
    let mut expected = event.clone();
    expected.occurred_at.as_mut().unwrap().nanos = 123_456_000;
    assert_eq!(record.into_event(), expected);
}

#[test]
fn changes_are_stored_as_json_values() {
    let record = EventRecord::from_event(&sample()).unwrap();
    assert_eq!(
        record.changes_json,
        r#"[{"field":"status","before":"open"}]"#
    );
}

#[test]
fn missing_actor_names_the_field() {
    let mut event = sample();
    event.actor = None;
    let err = EventRecord::from_event(&event).unwrap_err();
    assert_eq!(err.field, "actor");
}

#[test]
fn invalid_ip_is_rejected() {
    let mut event = sample();
    event.actor.as_mut().unwrap().ip = "ec2.amazonaws.com".into();
    let err = EventRecord::from_event(&event).unwrap_err();
    assert_eq!(err.field, "actor.ip");
}

#[test]
fn timestamp_bounds() {
    let mut event = sample();
    event.occurred_at = Some(pbjson_types::Timestamp {
        seconds: -1,
        nanos: 999_999_999,
    });
    assert_eq!(
        EventRecord::from_event(&event).unwrap_err().field,
        "occurred_at"
    );
    event.occurred_at = Some(pbjson_types::Timestamp {
        seconds: Limits::MAX_SECONDS,
        nanos: 999_999_999,
    });
    let record = EventRecord::from_event(&event).unwrap();
    assert_eq!(
        record.occurred_at_us,
        Limits::MAX_SECONDS * 1_000_000 + 999_999
    );
}

#[test]
fn microsecond_conversion_round_trips() {
    for us in [0, 1, 999_999, 1_000_000, 1_767_225_599_999_999] {
        let ts = timestamp_from_us(us);
        assert_eq!(timestamp_to_us("t", &ts).unwrap(), us);
    }
}

#[test]
fn invalid_change_value_is_rejected() {
    let mut event = sample();
    event.changes[0].after_json = "{not json".into();
    let err = EventRecord::from_event(&event).unwrap_err();
    assert_eq!(err.field, "changes.after_json");
}
