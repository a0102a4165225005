//! Validation of `ListEvents` requests into a store query.

use tonic::Status;

use super::page_token;
use crate::event::{timestamp_to_us, InvalidEvent};
use crate::proto::{ActionType, ListEventsRequest, Result as ResultCode};
use crate::store::EventQuery;

/// Limits a query server applies to requests.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Page size used when a request sets 0.
    pub default_page_size: u32,
    /// Largest page size; larger requests are lowered to it.
    pub max_page_size: u32,
    /// Most events `GetTrace` returns.
    pub max_trace_events: u32,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            default_page_size: 100,
            max_page_size: 1000,
            max_trace_events: 10_000,
        }
    }
}

/// Most values accepted in one repeated filter.
pub const MAX_FILTER_VALUES: usize = 100;

/// Turns a request into a store query whose limit is one more than the page size, so
/// that the extra row shows whether another page follows.
pub fn to_query(request: &ListEventsRequest, limits: &QueryLimits) -> Result<EventQuery, Status> {
    let from_us = optional_time("from", request.from.as_ref())?;
    let to_us = optional_time("to", request.to.as_ref())?;
    if let (Some(from), Some(to)) = (from_us, to_us) {
        if from >= to {
            return Err(Status::invalid_argument(
                "from must be before to; the range is [from, to)",
            ));
        }
    }
    if !request.target_id.is_empty() && request.target_type.is_empty() {
        return Err(Status::invalid_argument(
            "target_id needs target_type, because ids are only unique within a type; set target_type too",
        ));
    }
    let result = match request.outcome {
        0 => None,
        value => Some(known(
            value,
            ResultCode::try_from(value).is_ok(),
            "outcome",
        )?),
    };
    if !request.trace_id.is_empty() {
        crate::event::validate_trace_id(&request.trace_id).map_err(invalid)?;
    }
    let fingerprint = page_token::fingerprint(request);
    let after = match request.page_token.as_str() {
        "" => None,
        token => Some(
            page_token::decode(&fingerprint, token)
                .map_err(|e| Status::invalid_argument(e.to_string()))?,
        ),
    };
    let page_size = match request.page_size {
        0 => limits.default_page_size,
        n => n.min(limits.max_page_size),
    };
    Ok(EventQuery {
        from_us,
        to_us,
        actor_ids: text_values("actor_ids", &request.actor_ids)?,
        action_types: action_types(&request.action_types)?,
        actions: text_values("actions", &request.actions)?,
        service: non_empty(&request.service),
        target_type: non_empty(&request.target_type),
        target_id: non_empty(&request.target_id),
        result,
        trace_id: non_empty(&request.trace_id),
        tenant: non_empty(&request.tenant),
        after,
        limit: page_size + 1,
    })
}

fn optional_time(
    field: &'static str,
    ts: Option<&pbjson_types::Timestamp>,
) -> Result<Option<i64>, Status> {
    ts.map(|ts| timestamp_to_us(field, ts))
        .transpose()
        .map_err(invalid)
}

fn text_values(field: &str, values: &[String]) -> Result<Vec<String>, Status> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(Status::invalid_argument(format!(
            "{field} has {} values; at most {MAX_FILTER_VALUES} are allowed, so split the query",
            values.len()
        )));
    }
    if values.iter().any(String::is_empty) {
        return Err(Status::invalid_argument(format!(
            "{field} contains an empty value; remove it"
        )));
    }
    Ok(values.to_vec())
}

fn action_types(values: &[i32]) -> Result<Vec<i32>, Status> {
    let mut types = Vec::with_capacity(values.len());
    for &value in values {
        let known_value = value != 0 && ActionType::try_from(value).is_ok();
        let value = known(value, known_value, "action_types")?;
        if !types.contains(&value) {
            types.push(value);
        }
    }
    Ok(types)
}

fn known(value: i32, is_known: bool, field: &str) -> Result<i32, Status> {
    if is_known {
        Ok(value)
    } else {
        Err(Status::invalid_argument(format!(
            "{field} has the unknown or unspecified value {value}"
        )))
    }
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn invalid(e: InvalidEvent) -> Status {
    Status::invalid_argument(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64) -> Option<pbjson_types::Timestamp> {
        Some(pbjson_types::Timestamp { seconds, nanos: 0 })
    }

    #[test]
    fn empty_range_is_rejected() {
        let request = ListEventsRequest {
            from: ts(10),
            to: ts(10),
            ..Default::default()
        };
        let err = to_query(&request, &QueryLimits::default()).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn target_id_without_type_is_rejected() {
        let request = ListEventsRequest {
            target_id: "o-1".into(),
            ..Default::default()
        };
        let err = to_query(&request, &QueryLimits::default()).unwrap_err();
        assert!(err.message().contains("target_type"), "{}", err.message());
    }

    #[test]
    fn unspecified_action_type_is_rejected() {
        let request = ListEventsRequest {
            action_types: vec![0],
            ..Default::default()
        };
        assert!(to_query(&request, &QueryLimits::default()).is_err());
    }

    #[test]
    fn page_size_is_clamped_and_defaulted() {
        let limits = QueryLimits::default();
        let mut request = ListEventsRequest::default();
        assert_eq!(to_query(&request, &limits).unwrap().limit, 101);
        request.page_size = 5000;
        assert_eq!(to_query(&request, &limits).unwrap().limit, 1001);
    }

    #[test]
    fn too_many_actor_ids_are_rejected() {
        let request = ListEventsRequest {
            actor_ids: vec!["a".into(); MAX_FILTER_VALUES + 1],
            ..Default::default()
        };
        assert!(to_query(&request, &QueryLimits::default()).is_err());
    }

    #[test]
    fn uppercase_trace_id_is_rejected() {
        let request = ListEventsRequest {
            trace_id: "4BF92F3577B34DA6A3CE929D0E0E4736".into(),
            ..Default::default()
        };
        assert!(to_query(&request, &QueryLimits::default()).is_err());
    }
}
