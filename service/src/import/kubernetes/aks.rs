//! AKS audit records: an Azure diagnostic record whose `properties.log` is the audit
//! `Event`, either as a JSON object or as JSON text inside a string.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::import::{fields, MapError, RecordOutcome};

/// Diagnostic categories that carry audit events; `kube-audit-admin` leaves out reads.
const AUDIT_CATEGORIES: [&str; 2] = ["kube-audit", "kube-audit-admin"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DiagnosticRecord {
    category: Option<String>,
    resource_id: Option<String>,
    properties: Properties,
}

#[derive(Debug, Deserialize)]
struct Properties {
    log: Value,
    pod: Option<String>,
}

/// Maps an AKS diagnostic record by unwrapping `properties.log`; the envelope's
/// category, cluster resource id and API server pod go into metadata. Records of other
/// categories, such as the API server's own `kube-apiserver` text log, are skipped.
pub(super) fn map(value: Value) -> Result<RecordOutcome, MapError> {
    let record: DiagnosticRecord =
        serde_json::from_value(value).map_err(|source| MapError::Shape {
            format: "AKS diagnostic",
            source,
        })?;
    let category = record.category.as_deref().unwrap_or("kube-audit");
    if !AUDIT_CATEGORIES.contains(&category) {
        return Ok(RecordOutcome::Skipped(
            "AKS diagnostic record of a category other than kube-audit or kube-audit-admin",
        ));
    }
    let log = match record.properties.log {
        Value::String(text) => serde_json::from_str(&text).map_err(|source| MapError::Shape {
            format: "AKS properties.log",
            source,
        })?,
        log @ Value::Object(_) => log,
        other => {
            return Err(MapError::value(
                "properties.log",
                &other.to_string(),
                "expected the audit event as a JSON object or as JSON text in a string",
            ))
        }
    };
    let mut metadata = Map::new();
    metadata.insert("envelope".to_owned(), "aks".into());
    fields::insert_text(&mut metadata, "category", record.category.as_deref());
    fields::insert_text(&mut metadata, "resourceId", record.resource_id.as_deref());
    fields::insert_text(&mut metadata, "pod", record.properties.pod.as_deref());
    super::map_event(super::parse(log)?, metadata)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::proto::OperationEvent;

    fn audit_event() -> Value {
        json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": "5c0d1f3e-aks-1",
            "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/web/configmaps/settings",
            "verb": "update",
            "user": {"username": "masterclient", "groups": ["system:masters"]},
            "sourceIPs": ["10.224.0.4"],
            "objectRef": {"resource": "configmaps", "namespace": "web", "name": "settings", "apiVersion": "v1"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": "2026-02-03T04:05:06.123456Z"
        })
    }

    fn envelope(log: Value) -> Value {
        json!({
            "category": "kube-audit",
            "resourceId": "/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/C1",
            "properties": {"log": log, "pod": "kube-apiserver-abc", "stream": "stdout"},
            "time": "2026-02-03T04:05:06.2Z"
        })
    }

    fn event(outcome: RecordOutcome) -> OperationEvent {
        match outcome {
            RecordOutcome::Event(event) => *event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[test]
    fn log_as_object() {
        let mapped = event(map(envelope(audit_event())).unwrap());
        assert_eq!(mapped.event_id, "5c0d1f3e-aks-1");
        assert_eq!(mapped.action, "configmaps.update");
        assert_eq!(mapped.target.unwrap().id, "web/settings");
        let metadata: Value = serde_json::from_str(&mapped.metadata_json).unwrap();
        assert_eq!(metadata["envelope"], "aks");
        assert_eq!(metadata["category"], "kube-audit");
        assert_eq!(metadata["pod"], "kube-apiserver-abc");
        assert_eq!(metadata["verb"], "update");
    }

    #[test]
    fn log_as_json_string() {
        let text = audit_event().to_string();
        let from_string = event(map(envelope(Value::String(text))).unwrap());
        let from_object = event(map(envelope(audit_event())).unwrap());
        assert_eq!(from_string, from_object);
    }

    #[test]
    fn log_string_not_json_is_invalid() {
        let error = map(envelope(Value::String("{not json".into()))).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid AKS properties.log record"),
            "{error}"
        );
    }

    #[test]
    fn other_category_is_skipped() {
        let mut value = envelope(Value::String(
            "I0101 00:00:00.000000 1 trace.go:236] ...".into(),
        ));
        value["category"] = json!("kube-apiserver");
        assert!(matches!(map(value).unwrap(), RecordOutcome::Skipped(_)));
    }

    #[test]
    fn log_number_is_invalid() {
        let error = map(envelope(json!(42))).unwrap_err();
        assert!(
            matches!(
                error,
                MapError::Value {
                    field: "properties.log",
                    ..
                }
            ),
            "{error}"
        );
    }
}
