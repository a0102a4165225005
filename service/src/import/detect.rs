//! Dispatch of one JSON record to its mapper, detecting the format under
//! [`Format::Auto`].

use serde_json::Value;

use super::{cloudtrail, kubernetes, oplog_json, Format, MapError, RecordOutcome};

/// Maps one record read as `format`.
pub(crate) fn map(value: Value, format: Format) -> RecordOutcome {
    let format = match format {
        Format::Auto => match detect(&value) {
            Some(format) => format,
            None => return RecordOutcome::Invalid(MapError::Unrecognized),
        },
        format => format,
    };
    let mapped = match format {
        Format::Kubernetes => kubernetes::map(value),
        Format::CloudTrail => cloudtrail::map(value),
        Format::Oplog => oplog_json::map(value),
        Format::Auto => unreachable!("auto-detection returns a concrete format"),
    };
    mapped.unwrap_or_else(RecordOutcome::Invalid)
}

/// Returns the format of a record from its shape:
/// - Kubernetes: `kind` is `Event` and `apiVersion` is `audit.k8s.io/…`, or a GKE entry
///   whose `protoPayload.methodName` starts with `io.k8s.`, or an AKS record with
///   `properties.log`;
/// - CloudTrail: `eventVersion` and `eventSource`, or a digest file;
/// - oplog: `eventId`, the proto3 JSON name of `event_id`.
fn detect(value: &Value) -> Option<Format> {
    let object = value.as_object()?;
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    let audit_event = text("kind") == Some("Event")
        && text("apiVersion").is_some_and(|v| v.starts_with("audit.k8s.io/"));
    if audit_event || kubernetes::is_envelope(value) {
        return Some(Format::Kubernetes);
    }
    let cloudtrail_record =
        object.contains_key("eventVersion") && object.contains_key("eventSource");
    if cloudtrail_record || cloudtrail::is_digest(value) {
        return Some(Format::CloudTrail);
    }
    if object.contains_key("eventId") {
        return Some(Format::Oplog);
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn detects_each_shape() {
        let cases = [
            (
                json!({"kind": "Event", "apiVersion": "audit.k8s.io/v1"}),
                Some(Format::Kubernetes),
            ),
            (
                json!({"protoPayload": {"methodName": "io.k8s.core.v1.pods.get"}}),
                Some(Format::Kubernetes),
            ),
            (
                json!({"properties": {"log": "{}"}}),
                Some(Format::Kubernetes),
            ),
            (
                json!({"eventVersion": "1.08", "eventSource": "iam.amazonaws.com"}),
                Some(Format::CloudTrail),
            ),
            (
                json!({"awsAccountId": "1", "digestStartTime": "2026-01-01T00:00:00Z"}),
                Some(Format::CloudTrail),
            ),
            (json!({"eventId": "e-1"}), Some(Format::Oplog)),
            // A GKE entry of another Google Cloud service is not a Kubernetes event.
            (
                json!({"protoPayload": {"methodName": "GenerateAccessToken"}}),
                None,
            ),
            (json!({"kind": "Event", "apiVersion": "v1"}), None),
            (json!({"event_id": "e-1"}), None),
            (json!([1, 2]), None),
        ];
        for (value, expected) in cases {
            assert_eq!(detect(&value), expected, "{value}");
        }
    }

    #[test]
    fn unrecognized_is_invalid() {
        let outcome = map(json!({"hello": "world"}), Format::Auto);
        assert!(matches!(
            outcome,
            RecordOutcome::Invalid(MapError::Unrecognized)
        ));
    }

    #[test]
    fn explicit_format_skips_detection() {
        // Read as oplog, a CloudTrail record fails on the oplog schema, not on detection.
        let outcome = map(
            json!({"eventVersion": "1.08", "eventSource": "iam.amazonaws.com"}),
            Format::Oplog,
        );
        match outcome {
            RecordOutcome::Invalid(error @ MapError::Shape { .. }) => {
                assert!(error.to_string().contains("unknown field"), "{error}");
            }
            other => panic!("expected an invalid oplog record, got {other:?}"),
        }
    }
}
