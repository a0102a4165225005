//! One query suite, run against both stores so that MySQL and SQLite cannot drift: data
//! goes in through the Append API and comes back through the query API.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use oplog::proto::{
    ActionType, AppendRequest, GetEventRequest, GetTraceRequest, ListEventsRequest, OperationEvent,
    Result as ResultCode,
};
use oplog::store::{SqliteStore, Store};
use support::{
    event, list_all as list, ts, unicode_event, QueryClient, TestServer, MIDNIGHT_2026_US,
};
use tonic::Code;

const TIE_US: i64 = MIDNIGHT_2026_US + 3_600_000_000;
const TIES: usize = 25;
const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test(flavor = "multi_thread")]
async fn query_suite_on_sqlite() {
    let store = SqliteStore::in_memory().await.expect("open SQLite");
    run_suite(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn query_suite_on_mysql() {
    let Some(url) = support::service_var(support::MYSQL_URL_VAR) else {
        return;
    };
    let store = support::migrated_mysql_store(&url).await;
    run_suite(Arc::new(store)).await;
}

/// Builds the events of the suite: ties, a midnight boundary, several actors, services,
/// outcomes and one trace across services.
fn dataset() -> Vec<OperationEvent> {
    let mut events = vec![
        event("m-0", MIDNIGHT_2026_US),
        event("m-1", MIDNIGHT_2026_US - 1),
        unicode_event("unicode", MIDNIGHT_2026_US + 42),
    ];
    for i in 0..TIES {
        let mut e = event(&format!("tie-{i:02}"), TIE_US);
        e.actor.as_mut().unwrap().id = if i % 2 == 0 { "bob" } else { "carol" }.into();
        e.action_type = if i % 3 == 0 {
            ActionType::Delete
        } else {
            ActionType::Read
        } as i32;
        e.action = if i % 3 == 0 {
            "order.delete"
        } else {
            "order.view"
        }
        .into();
        e.target.as_mut().unwrap().id = format!("o-{}", i % 5);
        e.trace_id = String::new();
        events.push(e);
    }
    let services = ["gateway", "billing", "ledger"];
    for (i, service) in services.iter().enumerate() {
        let mut e = event(&format!("trace-{i}"), TIE_US + 1000 * (3 - i as i64));
        e.service = (*service).into();
        e.trace_id = TRACE.into();
        e.tenant = "globex".into();
        e.outcome.as_mut().unwrap().result = ResultCode::Failure as i32;
        events.push(e);
    }
    events
}

async fn run_suite(store: Arc<dyn Store>) {
    let server = TestServer::start(store).await;
    let mut ingest = server.ingest_client().await;
    let events = dataset();
    let response = ingest
        .append(AppendRequest {
            events: events.clone(),
        })
        .await
        .expect("append the dataset");
    assert_eq!(response.into_inner().accepted as usize, events.len());
    let mut client = server.query_client().await;

    unicode_event_round_trips(&mut client).await;
    midnight_boundary_is_exact(&mut client).await;
    ties_paginate_without_gaps_or_repeats(&mut client).await;
    each_filter_applies(&mut client).await;
    filters_combine_with_and(&mut client).await;
    invalid_requests_are_rejected(&mut client).await;
    trace_is_oldest_first(&mut client).await;
    invalid_append_stores_nothing(&mut ingest, &mut client).await;
    redelivery_is_stored_once(&mut ingest, &mut client).await;
    reused_id_is_rejected(&mut ingest, &mut client).await;
}

async fn reused_id_is_rejected(
    ingest: &mut oplog::proto::oplog_ingest_client::OplogIngestClient<tonic::transport::Channel>,
    client: &mut QueryClient,
) {
    let mut other = event("m-0", MIDNIGHT_2026_US);
    other.action = "order.cancel".into();
    let status = ingest
        .append(AppendRequest {
            events: vec![other],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{}", status.message());
    assert!(
        status.message().contains("events[0]"),
        "{}",
        status.message()
    );
    let stored = client
        .get_event(GetEventRequest {
            event_id: "m-0".into(),
        })
        .await
        .expect("GetEvent")
        .into_inner()
        .event
        .expect("event");
    assert_eq!(
        stored.action, "order.refund",
        "the stored event is not overwritten"
    );
}

fn ids(events: &[OperationEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_id.as_str()).collect()
}

async fn unicode_event_round_trips(client: &mut QueryClient) {
    let stored = client
        .get_event(GetEventRequest {
            event_id: "unicode".into(),
        })
        .await
        .expect("GetEvent")
        .into_inner()
        .event
        .expect("event is returned");
    let sent = unicode_event("unicode", MIDNIGHT_2026_US + 42);
    assert_eq!(stored.occurred_at, sent.occurred_at, "microsecond time");
    assert_eq!(stored.service, sent.service);
    assert_eq!(stored.tenant, sent.tenant);
    assert_eq!(stored.actor, sent.actor, "actor with impersonator");
    assert_eq!(stored.action, sent.action);
    assert_eq!(stored.target, sent.target);
    assert_eq!(stored.outcome, sent.outcome);
    assert_eq!(stored.request_id, sent.request_id);
    assert_eq!(
        stored.metadata_json, sent.metadata_json,
        "metadata byte for byte"
    );
    assert_eq!(stored.changes, sent.changes);
    assert_eq!(stored, sent, "whole event");
}

async fn midnight_boundary_is_exact(client: &mut QueryClient) {
    let at_midnight = list(
        client,
        ListEventsRequest {
            from: Some(ts(MIDNIGHT_2026_US)),
            to: Some(ts(MIDNIGHT_2026_US + 1)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&at_midnight), ["m-0"]);
    let before = list(
        client,
        ListEventsRequest {
            to: Some(ts(MIDNIGHT_2026_US)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&before), ["m-1"]);
    assert_eq!(
        before[0].occurred_at,
        Some(ts(MIDNIGHT_2026_US - 1)),
        "23:59:59.999999 is kept to the microsecond"
    );
}

async fn ties_paginate_without_gaps_or_repeats(client: &mut QueryClient) {
    let mut request = ListEventsRequest {
        from: Some(ts(TIE_US)),
        to: Some(ts(TIE_US + 1)),
        page_size: 7,
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_events(request.clone())
            .await
            .expect("ListEvents page")
            .into_inner();
        pages += 1;
        assert!(page.events.len() <= 7, "page size is respected");
        seen.extend(page.events.into_iter().map(|e| e.event_id));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    let mut expected: Vec<String> = (0..TIES).map(|i| format!("tie-{i:02}")).collect();
    expected.reverse();
    assert_eq!(
        seen, expected,
        "newest first, ids descending on equal times"
    );
    assert_eq!(pages, TIES.div_ceil(7));
}

async fn each_filter_applies(client: &mut QueryClient) {
    let by_actor = list(
        client,
        ListEventsRequest {
            actor_ids: vec!["bob".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_actor.len(), TIES.div_ceil(2));
    assert!(by_actor
        .iter()
        .all(|e| e.actor.as_ref().unwrap().id == "bob"));

    let deletes = list(
        client,
        ListEventsRequest {
            action_types: vec![ActionType::Delete as i32],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(deletes.len(), TIES.div_ceil(3));

    let by_action = list(
        client,
        ListEventsRequest {
            actions: vec!["order.view".into(), "order.refund.🧾".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_action.len(), TIES - TIES.div_ceil(3) + 1);

    let by_service = list(
        client,
        ListEventsRequest {
            service: "ledger".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&by_service), ["trace-2"]);

    let by_target = list(
        client,
        ListEventsRequest {
            target_type: "order".into(),
            target_id: "o-3".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&by_target),
        ["tie-23", "tie-18", "tie-13", "tie-08", "tie-03"]
    );

    let denied = list(
        client,
        ListEventsRequest {
            outcome: ResultCode::Denied as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&denied), ["unicode"]);

    let by_trace = list(
        client,
        ListEventsRequest {
            trace_id: TRACE.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&by_trace), ["trace-0", "trace-1", "trace-2"]);

    let by_tenant = list(
        client,
        ListEventsRequest {
            tenant: "tenant-𝔘𝔫𝔦".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&by_tenant), ["unicode"]);
}

async fn filters_combine_with_and(client: &mut QueryClient) {
    let events = list(
        client,
        ListEventsRequest {
            actor_ids: vec!["bob".into()],
            action_types: vec![ActionType::Delete as i32],
            from: Some(ts(TIE_US)),
            to: Some(ts(TIE_US + 1)),
            ..Default::default()
        },
    )
    .await;
    // Even indexes (bob) that are multiples of 3 (delete): 0, 6, 12, 18, 24.
    assert_eq!(
        ids(&events),
        ["tie-24", "tie-18", "tie-12", "tie-06", "tie-00"]
    );
    let none = list(
        client,
        ListEventsRequest {
            actor_ids: vec!["bob".into()],
            service: "ledger".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(none.is_empty(), "bob has no ledger events");
}

async fn invalid_requests_are_rejected(client: &mut QueryClient) {
    let target_id_only = ListEventsRequest {
        target_id: "o-1".into(),
        ..Default::default()
    };
    let status = client.list_events(target_id_only).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let first = client
        .list_events(ListEventsRequest {
            actor_ids: vec!["bob".into()],
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("first page")
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let other_filters = ListEventsRequest {
        actor_ids: vec!["carol".into()],
        page_token: first.next_page_token,
        ..Default::default()
    };
    let status = client.list_events(other_filters).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let garbage = ListEventsRequest {
        page_token: "not-a-token".into(),
        ..Default::default()
    };
    let status = client.list_events(garbage).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let status = client
        .get_event(GetEventRequest {
            event_id: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn trace_is_oldest_first(client: &mut QueryClient) {
    let trace = client
        .get_trace(GetTraceRequest {
            trace_id: TRACE.into(),
        })
        .await
        .expect("GetTrace")
        .into_inner();
    assert!(!trace.truncated);
    let services: Vec<_> = trace.events.iter().map(|e| e.service.as_str()).collect();
    assert_eq!(services, ["ledger", "billing", "gateway"]);
}

async fn invalid_append_stores_nothing(
    ingest: &mut oplog::proto::oplog_ingest_client::OplogIngestClient<tonic::transport::Channel>,
    client: &mut QueryClient,
) {
    let good = event("append-good", MIDNIGHT_2026_US + 7);
    let mut bad = event("append-bad", MIDNIGHT_2026_US + 8);
    bad.metadata_json = "[1, 2]".into();
    let status = ingest
        .append(AppendRequest {
            events: vec![good, bad],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("events[1]"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("metadata_json"),
        "{}",
        status.message()
    );
    let status = client
        .get_event(GetEventRequest {
            event_id: "append-good".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::NotFound,
        "a rejected batch stores nothing"
    );
}

async fn redelivery_is_stored_once(
    ingest: &mut oplog::proto::oplog_ingest_client::OplogIngestClient<tonic::transport::Channel>,
    client: &mut QueryClient,
) {
    let again = dataset();
    ingest
        .append(AppendRequest {
            events: again.clone(),
        })
        .await
        .expect("append the dataset again");
    let all = list(client, ListEventsRequest::default()).await;
    let unique: HashSet<&str> = all.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(all.len(), again.len());
    assert_eq!(unique.len(), again.len());
}
