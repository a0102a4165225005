//! oplog's own JSON lines: one [`OperationEvent`] per line in the proto3 JSON mapping,
//! as `oplog` itself writes them.

use serde_json::Value;

use super::{MapError, RecordOutcome};
use crate::proto::OperationEvent;

/// Parses one event. Its fields are not checked here: the ingest validator checks them
/// like those of any published event.
pub(crate) fn map(value: Value) -> Result<RecordOutcome, MapError> {
    let event: OperationEvent =
        serde_json::from_value(value).map_err(|source| MapError::Shape {
            format: "oplog",
            source,
        })?;
    Ok(RecordOutcome::Event(Box::new(event)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::proto::{ActionType, Result as ResultCode};

    #[test]
    fn parses_proto3_json() {
        let value = json!({
            "eventId": "0190f5e2-7c1a-7b3e-9a11-3f2b1c0d4e5f",
            "occurredAt": "2026-01-01T00:00:00.123456Z",
            "service": "billing",
            "actor": {"id": "u-1", "type": "ACTOR_TYPE_USER"},
            "action": "invoice.void",
            "actionType": "ACTION_TYPE_UPDATE",
            "outcome": {"result": "RESULT_SUCCESS"},
            "changes": [{"field": "status", "beforeJson": "\"open\"", "afterJson": "\"void\""}]
        });
        let RecordOutcome::Event(event) = map(value).unwrap() else {
            panic!("expected an event");
        };
        assert_eq!(event.event_id, "0190f5e2-7c1a-7b3e-9a11-3f2b1c0d4e5f");
        assert_eq!(event.occurred_at.unwrap().nanos, 123_456_000);
        assert_eq!(event.action_type, ActionType::Update as i32);
        assert_eq!(event.outcome.unwrap().result, ResultCode::Success as i32);
        assert_eq!(event.changes[0].after_json, "\"void\"");
    }

    #[test]
    fn wrong_type_is_invalid() {
        let error = map(json!({"eventId": 5})).unwrap_err();
        assert!(
            error.to_string().starts_with("invalid oplog record"),
            "{error}"
        );
    }
}
