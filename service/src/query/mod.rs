//! The `OplogQuery` gRPC service.

pub mod page_token;
pub mod request;

use std::{sync::Arc, time::Instant};

use tonic::{Request, Response, Status};

pub use request::{QueryLimits, MAX_FILTER_VALUES};

use crate::proto::oplog_query_server::OplogQuery;
use crate::proto::{
    GetEventRequest, GetEventResponse, GetTraceRequest, GetTraceResponse, ListEventsRequest,
    ListEventsResponse,
};
use crate::store::{Cursor, Store, StoreError};
use crate::telemetry::metrics::QueryMetrics;

/// Serves stored events over gRPC.
pub struct QueryService {
    store: Arc<dyn Store>,
    limits: QueryLimits,
    metrics: QueryMetrics,
}

impl QueryService {
    /// Creates the service over `store`.
    pub fn new(store: Arc<dyn Store>, limits: QueryLimits, metrics: QueryMetrics) -> Self {
        Self {
            store,
            limits,
            metrics,
        }
    }

    fn observe<T>(&self, method: &str, started: Instant, result: &Result<T, Status>) {
        let code = match result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        self.metrics
            .requests
            .with_label_values(&[method, code_name(code)])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
    }

    async fn list_events_inner(
        &self,
        request: ListEventsRequest,
    ) -> Result<ListEventsResponse, Status> {
        let query = request::to_query(&request, &self.limits)?;
        let page_size = (query.limit - 1) as usize;
        let mut records = self.store.list_events(&query).await.map_err(internal)?;
        let next_page_token = if records.len() > page_size {
            records.truncate(page_size);
            let last = records
                .last()
                .expect("a page with a next page contains at least one event");
            let cursor = Cursor {
                occurred_at_us: last.occurred_at_us,
                event_id: last.event_id.clone(),
            };
            page_token::encode(&page_token::fingerprint(&request), &cursor)
        } else {
            String::new()
        };
        Ok(ListEventsResponse {
            events: records.into_iter().map(|r| r.into_event()).collect(),
            next_page_token,
        })
    }

    async fn get_event_inner(&self, request: GetEventRequest) -> Result<GetEventResponse, Status> {
        if request.event_id.is_empty() {
            return Err(Status::invalid_argument(
                "event_id is missing; set the id of the event",
            ));
        }
        match self
            .store
            .get_event(&request.event_id)
            .await
            .map_err(internal)?
        {
            Some(record) => Ok(GetEventResponse {
                event: Some(record.into_event()),
            }),
            None => Err(Status::not_found(format!(
                "no event with id {:?}",
                request.event_id
            ))),
        }
    }

    async fn get_trace_inner(&self, request: GetTraceRequest) -> Result<GetTraceResponse, Status> {
        if request.trace_id.is_empty() {
            return Err(Status::invalid_argument(
                "trace_id is missing; set a W3C trace id",
            ));
        }
        crate::event::validate_trace_id(&request.trace_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let limit = self.limits.max_trace_events;
        let mut records = self
            .store
            .get_trace(&request.trace_id, limit + 1)
            .await
            .map_err(internal)?;
        let truncated = records.len() > limit as usize;
        records.truncate(limit as usize);
        Ok(GetTraceResponse {
            events: records.into_iter().map(|r| r.into_event()).collect(),
            truncated,
        })
    }
}

#[tonic::async_trait]
impl OplogQuery for QueryService {
    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        let started = Instant::now();
        let result = self.list_events_inner(request.into_inner()).await;
        self.observe("ListEvents", started, &result);
        result.map(Response::new)
    }

    async fn get_event(
        &self,
        request: Request<GetEventRequest>,
    ) -> Result<Response<GetEventResponse>, Status> {
        let started = Instant::now();
        let result = self.get_event_inner(request.into_inner()).await;
        self.observe("GetEvent", started, &result);
        result.map(Response::new)
    }

    async fn get_trace(
        &self,
        request: Request<GetTraceRequest>,
    ) -> Result<Response<GetTraceResponse>, Status> {
        let started = Instant::now();
        let result = self.get_trace_inner(request.into_inner()).await;
        self.observe("GetTrace", started, &result);
        result.map(Response::new)
    }
}

/// Maps a store failure to the status a client receives; the details stay in the log.
pub(crate) fn internal(error: StoreError) -> Status {
    tracing::error!(error = %error, "store request failed");
    Status::unavailable("the event store failed the request; retry later")
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        InvalidArgument => "INVALID_ARGUMENT",
        NotFound => "NOT_FOUND",
        Unavailable => "UNAVAILABLE",
        Internal => "INTERNAL",
        Cancelled => "CANCELLED",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        _ => "OTHER",
    }
}
