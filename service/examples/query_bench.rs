//! Measures the query API over a large history. It loads generated events spread over
//! a number of days into MariaDB and sends a fixed mix of requests through gRPC. Then
//! it prints the latency percentiles of each kind and `EXPLAIN` of the SQL it runs.
//!
//! ```text
//! eval "$(scripts/services.sh env)"
//! cargo run --release --example query_bench -- 10000000 30 500
//! ```
//!
//! The arguments are the number of events (default 10,000,000), the days they span
//! (default 30) and the requests of each kind (default 500). With `OPLOG_BENCH_DB=name`
//! the database is kept, and a later run with the same number of events queries it
//! again instead of loading it anew. It prints one line per figure; nothing is asserted.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Generator, Rng, ACTIONS, ACTORS, DAY_US, SERVICES, TARGETS};
use oplog::config::Config;
use oplog::event::{datetime_from_us, timestamp_from_us, EventRecord};
use oplog::proto::oplog_query_client::OplogQueryClient;
use oplog::proto::{GetTraceRequest, ListEventsRequest, Result as ResultCode};
use oplog::query::page_token;
use oplog::query::request::{to_query, QueryLimits};
use oplog::store::sql::{self, Param, Statement};
use oplog::store::{Cursor, MySqlStore, Store};
use sqlx::{Column, MySqlPool, Row};
use tonic::transport::Channel;

/// Events per write transaction while loading.
const LOAD_BATCH: usize = 2_000;

/// Concurrent write transactions while loading.
const LOAD_WRITERS: usize = 2;

/// Events per page in every `ListEvents` request.
const PAGE_SIZE: u32 = 100;

/// The page whose latency the deep-pagination kind reports.
const DEEP_PAGE: usize = 50;

/// Concurrent clients of the mixed run.
const MIX_CLIENTS: usize = 4;

/// One request of the mix.
#[derive(Clone)]
enum Request {
    List(ListEventsRequest),
    Trace(String),
    /// Page `DEEP_PAGE` of a listing, with the token of page `DEEP_PAGE - 1`, and
    /// whether the listing has that many pages (otherwise it is page 1).
    Deep(ListEventsRequest, bool),
}

/// The kinds of the mix, in report order.
const KINDS: [&str; 6] = [
    "actor, 24 h",
    "action type, 1 h",
    "target, 30 days",
    "trace",
    "service + outcome, 7 days",
    "service, 7 days, page 50",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut next = |default: usize| -> anyhow::Result<usize> {
        Ok(args
            .next()
            .map(|a| a.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let events = next(10_000_000)?;
    let days = next(30)? as i64;
    let samples = next(500)?;
    let base = std::env::var("OPLOG_TEST_MYSQL_URL")?;
    let kept_database = std::env::var("OPLOG_BENCH_DB").ok();
    let database = kept_database
        .clone()
        .unwrap_or_else(|| format!("oplog_query_{}", std::process::id()));

    let url = prepare(&base, &database, events, days).await?;
    let mut config = Config::default();
    config.mysql.url = url;
    let store = Arc::new(MySqlStore::connect(&config.mysql.settings()).await?);
    let (first_us, last_us) = time_range(store.pool()).await?;
    println!(
        "history: {events} events from {} to {}",
        datetime_from_us(first_us).format("%Y-%m-%d %H:%M"),
        datetime_from_us(last_us).format("%Y-%m-%d %H:%M")
    );

    let (addr, stop) = common::serve_query_api(store.clone()).await?;
    let channel = Channel::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    let mut client = OplogQueryClient::new(channel.clone());

    let mut rng = Rng(7);
    let mut kinds = Vec::new();
    for kind in 0..KINDS.len() {
        let mut requests = Vec::with_capacity(samples);
        for _ in 0..samples {
            requests.push(draw(kind, &mut rng, store.pool(), first_us, last_us).await?);
        }
        kinds.push(requests);
    }
    // The first pass reads from disk what the buffer pool lacks. The second sends the
    // same requests again, so their pages are cached unless evicted since.
    for pass in ["first pass", "same requests again"] {
        for (name, requests) in KINDS.iter().zip(&kinds) {
            let mut latencies = Vec::with_capacity(samples);
            let mut returned = 0;
            let mut short = 0;
            let started = Instant::now();
            for request in requests {
                let (elapsed, count, reached) = send(&mut client, request).await?;
                latencies.push(elapsed);
                returned += count;
                short += usize::from(!reached);
            }
            let total = started.elapsed();
            latencies.sort();
            let note = if short > 0 {
                format!(", {short} listings ended before page {DEEP_PAGE}")
            } else {
                String::new()
            };
            println!(
                "{name}, {pass}: {samples} requests, {:.1} events per response, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.0} requests/s (one client){note}",
                returned as f64 / samples as f64,
                ms(common::percentile(&latencies, 0.50)),
                ms(common::percentile(&latencies, 0.99)),
                ms(*latencies.last().expect("at least one sample")),
                samples as f64 / total.as_secs_f64(),
            );
        }
    }
    for (name, requests) in KINDS.iter().zip(&kinds) {
        println!("{name}:");
        explain(store.pool(), &requests[0]).await?;
    }
    let mut mix: Vec<Request> = kinds.into_iter().flatten().collect();

    // The whole mix again, shuffled, from several clients at once.
    for i in (1..mix.len()).rev() {
        mix.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mix = Arc::new(mix);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client_index in 0..MIX_CLIENTS {
        let mix = mix.clone();
        let mut client = OplogQueryClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for request in mix.iter().skip(client_index).step_by(MIX_CLIENTS) {
                latencies.push(send(&mut client, request).await?.0);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let total = started.elapsed();
    latencies.sort();
    println!(
        "mix of all kinds, {MIX_CLIENTS} clients: {} requests, p50 {:.2} ms, p99 {:.2} ms, {:.0} requests/s (a page-50 request counts once)",
        latencies.len(),
        ms(common::percentile(&latencies, 0.50)),
        ms(common::percentile(&latencies, 0.99)),
        latencies.len() as f64 / total.as_secs_f64(),
    );
    stop.cancel();
    if kept_database.is_some() {
        println!("kept database {database}");
        return Ok(());
    }
    common::drop_database(&base, &database).await
}

/// Returns the URL of a database that contains `events` generated events over `days`
/// days, loading them unless a kept database already contains that many.
async fn prepare(base: &str, database: &str, events: usize, days: i64) -> anyhow::Result<String> {
    let url = common::database_url(base, database);
    if std::env::var_os("OPLOG_BENCH_DB").is_some() {
        if let Ok(pool) = MySqlPool::connect(&url).await {
            let stored: Option<i64> = sqlx::query_scalar("SELECT COUNT(*) FROM oplog_events")
                .fetch_one(&pool)
                .await
                .ok();
            if stored == Some(events as i64) {
                println!("load: reusing {database}, which holds {events} events");
                return Ok(url);
            }
        }
    }
    let end_us = Utc::now().timestamp_micros();
    let span_us = days * DAY_US;
    let first_day = datetime_from_us(end_us - span_us).date_naive();
    let url = common::fresh_database(base, database, first_day).await?;
    let mut config = Config::default();
    config.mysql.url = url.clone();
    let store = Arc::new(MySqlStore::connect(&config.mysql.settings()).await?);

    let started = Instant::now();
    let mut lanes = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..LOAD_WRITERS {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<EventRecord>>(2);
        let store = store.clone();
        lanes.push(tokio::spawn(async move {
            while let Some(batch) = receiver.recv().await {
                store.write_batch(&batch, &[]).await?;
            }
            anyhow::Ok(())
        }));
        senders.push(sender);
    }
    let mut generator = Generator::new(events, end_us, span_us);
    let mut loaded = 0;
    let mut lane = 0;
    loop {
        let batch: Vec<EventRecord> = generator
            .by_ref()
            .take(LOAD_BATCH)
            .map(|event| EventRecord::from_event(&event))
            .collect::<Result<_, _>>()?;
        if batch.is_empty() {
            break;
        }
        let before = loaded;
        loaded += batch.len();
        senders[lane].send(batch).await?;
        lane = (lane + 1) % LOAD_WRITERS;
        if loaded / 1_000_000 > before / 1_000_000 {
            println!(
                "load: {loaded} events, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    drop(senders);
    for lane in lanes {
        lane.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "load: {events} events in {seconds:.0} s, {:.0} events/s ({LOAD_WRITERS} writers of {LOAD_BATCH}-event transactions)",
        events as f64 / seconds
    );
    // Fresh statistics, as a long-running server has them.
    sqlx::raw_sql("ANALYZE TABLE oplog_events, oplog_event_details")
        .execute(store.pool())
        .await?;
    Ok(url)
}

async fn time_range(pool: &MySqlPool) -> anyhow::Result<(i64, i64)> {
    let (first, last): (chrono::NaiveDateTime, chrono::NaiveDateTime) =
        sqlx::query_as("SELECT MIN(occurred_at), MAX(occurred_at) FROM oplog_events")
            .fetch_one(pool)
            .await?;
    Ok((
        first.and_utc().timestamp_micros(),
        last.and_utc().timestamp_micros(),
    ))
}

/// Draws one request of kind `kind`. Actors, targets and services are drawn with the
/// same power laws as the events, so busy ones are requested most. Windows start
/// anywhere in the history, not only at its recent, cached end.
async fn draw(
    kind: usize,
    rng: &mut Rng,
    pool: &MySqlPool,
    first_us: i64,
    last_us: i64,
) -> anyhow::Result<Request> {
    let mut window = |length_us: i64| {
        let latest_start = (last_us - length_us).max(first_us);
        let from = first_us + rng.below((latest_start - first_us) as u64 + 1) as i64;
        (
            Some(timestamp_from_us(from)),
            Some(timestamp_from_us(from + length_us)),
        )
    };
    let request = match kind {
        0 => {
            let (from, to) = window(DAY_US);
            Request::List(ListEventsRequest {
                from,
                to,
                actor_ids: vec![format!("user-{:05}", rng.power_law(ACTORS))],
                page_size: PAGE_SIZE,
                ..Default::default()
            })
        }
        1 => {
            let (from, to) = window(DAY_US / 24);
            Request::List(ListEventsRequest {
                from,
                to,
                action_types: vec![ACTIONS[rng.power_law(ACTIONS.len())].1 as i32],
                page_size: PAGE_SIZE,
                ..Default::default()
            })
        }
        2 => {
            let (from, to) = window(30 * DAY_US);
            let (target_type, ids) = TARGETS[rng.power_law(TARGETS.len())];
            Request::List(ListEventsRequest {
                from,
                to,
                target_type: target_type.into(),
                target_id: format!("{target_type}-{}", rng.power_law(ids)),
                page_size: PAGE_SIZE,
                ..Default::default()
            })
        }
        3 => {
            // A trace of an event at a random time, read by the primary key.
            let at = first_us + rng.below((last_us - first_us) as u64) as i64;
            // ascii_bin columns arrive as binary strings.
            let trace_id: Vec<u8> = sqlx::query_scalar(
                "SELECT trace_id FROM oplog_events WHERE occurred_at >= ? \
                 ORDER BY occurred_at LIMIT 1",
            )
            .bind(datetime_from_us(at).naive_utc())
            .fetch_one(pool)
            .await?;
            Request::Trace(String::from_utf8(trace_id)?)
        }
        4 => {
            let (from, to) = window(7 * DAY_US);
            let outcome = if rng.below(3) == 0 {
                ResultCode::Failure
            } else {
                ResultCode::Denied
            };
            Request::List(ListEventsRequest {
                from,
                to,
                service: format!("svc-{}", rng.power_law(SERVICES)),
                outcome: outcome as i32,
                page_size: PAGE_SIZE,
                ..Default::default()
            })
        }
        _ => {
            let (from, to) = window(7 * DAY_US);
            let mut list = ListEventsRequest {
                from,
                to,
                service: format!("svc-{}", rng.power_law(SERVICES)),
                page_size: PAGE_SIZE,
                ..Default::default()
            };
            // The last event of page DEEP_PAGE - 1, read from the index alone, gives
            // the token the server would have returned with that page.
            let skip = (DEEP_PAGE - 1) * PAGE_SIZE as usize - 1;
            let last: Option<(chrono::NaiveDateTime, Vec<u8>)> = sqlx::query_as(
                "SELECT occurred_at, event_id FROM oplog_events \
                 WHERE service = ? AND occurred_at >= ? AND occurred_at < ? \
                 ORDER BY occurred_at DESC, event_id DESC LIMIT 1 OFFSET ?",
            )
            .bind(&list.service)
            .bind(naive(list.from.as_ref()))
            .bind(naive(list.to.as_ref()))
            .bind(skip as i64)
            .fetch_optional(pool)
            .await?;
            let reached = last.is_some();
            if let Some((occurred_at, event_id)) = last {
                let cursor = Cursor {
                    occurred_at_us: occurred_at.and_utc().timestamp_micros(),
                    event_id: String::from_utf8(event_id)?,
                };
                list.page_token = page_token::encode(&page_token::fingerprint(&list), &cursor);
            }
            Request::Deep(list, reached)
        }
    };
    Ok(request)
}

/// Sends `request` and returns its latency, the events in the response and whether a
/// deep listing reached page `DEEP_PAGE`.
async fn send(
    client: &mut OplogQueryClient<Channel>,
    request: &Request,
) -> anyhow::Result<(Duration, usize, bool)> {
    match request {
        Request::List(list) => {
            let started = Instant::now();
            let page = client.list_events(list.clone()).await?.into_inner();
            Ok((started.elapsed(), page.events.len(), true))
        }
        Request::Trace(trace_id) => {
            let started = Instant::now();
            let trace = client
                .get_trace(GetTraceRequest {
                    trace_id: trace_id.clone(),
                })
                .await?
                .into_inner();
            Ok((started.elapsed(), trace.events.len(), true))
        }
        Request::Deep(list, reached) => {
            let started = Instant::now();
            let page = client.list_events(list.clone()).await?.into_inner();
            Ok((started.elapsed(), page.events.len(), *reached))
        }
    }
}

/// Prints `EXPLAIN PARTITIONS` of the SQL that `request` runs.
async fn explain(pool: &MySqlPool, request: &Request) -> anyhow::Result<()> {
    let limits = QueryLimits::default();
    let statement = match request {
        Request::List(list) => sql::list_events(&to_query(list, &limits)?, sql::IndexHint::Force),
        Request::Trace(trace_id) => sql::get_trace(trace_id, limits.max_trace_events + 1),
        Request::Deep(list, _) => {
            sql::list_events(&to_query(list, &limits)?, sql::IndexHint::Force)
        }
    };
    let text = inline(&statement);
    let where_clause = text.split_once(" WHERE ").map_or("", |(_, w)| w);
    println!("  WHERE {where_clause}");
    let rows = sqlx::raw_sql(&format!("EXPLAIN PARTITIONS {text}"))
        .fetch_all(pool)
        .await?;
    for row in rows {
        let field = |name: &str| -> String {
            let Some(column) = row.columns().iter().find(|c| c.name() == name) else {
                return String::new();
            };
            let index = column.ordinal();
            row.try_get::<Option<String>, _>(index)
                .map(Option::unwrap_or_default)
                .or_else(|_| {
                    row.try_get::<Option<i64>, _>(index)
                        .map(|v| v.map(|v| v.to_string()).unwrap_or_default())
                })
                .or_else(|_| {
                    row.try_get::<Option<u64>, _>(index)
                        .map(|v| v.map(|v| v.to_string()).unwrap_or_default())
                })
                .unwrap_or_default()
        };
        let partitions = field("partitions");
        let count = partitions.split(',').filter(|p| !p.is_empty()).count();
        let span = match (
            partitions.split(',').next(),
            partitions.split(',').next_back(),
        ) {
            (Some(first), Some(last)) if count > 1 => format!("{first}..{last}"),
            _ => partitions.clone(),
        };
        println!(
            "  EXPLAIN {}: partitions {count} ({span}), type {}, key {}, rows {}, Extra: {}",
            field("table"),
            field("type"),
            field("key"),
            field("rows"),
            field("Extra"),
        );
    }
    Ok(())
}

/// Writes the statement's parameters into its SQL as literals, for `EXPLAIN`.
fn inline(statement: &Statement) -> String {
    let mut params = statement.params.iter();
    let mut out = String::with_capacity(statement.sql.len() + 64);
    for c in statement.sql.chars() {
        if c != '?' {
            out.push(c);
            continue;
        }
        match params.next().expect("a parameter per placeholder") {
            Param::Text(text) => {
                out.push('\'');
                out.push_str(&text.replace('\\', "\\\\").replace('\'', "''"));
                out.push('\'');
            }
            Param::Int(value) => out.push_str(&value.to_string()),
            Param::Time(us) => {
                out.push_str(&format!(
                    "'{}'",
                    datetime_from_us(*us).format("%Y-%m-%d %H:%M:%S%.6f")
                ));
            }
        }
    }
    out
}

/// Converts a request's time bound to the UTC time that the store binds.
fn naive(timestamp: Option<&pbjson_types::Timestamp>) -> chrono::NaiveDateTime {
    let timestamp = timestamp.expect("every listing has both bounds");
    let us = timestamp.seconds * 1_000_000 + i64::from(timestamp.nanos) / 1_000;
    datetime_from_us(us).naive_utc()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
