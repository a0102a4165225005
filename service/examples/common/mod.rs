//! Event generation and database set-up shared by the benchmark examples.

// Each example uses only part of this module.
#![allow(dead_code)]

use oplog::proto::{
    ActionType, Actor, ActorType, Change, OperationEvent, Outcome, Result as ResultCode, Target,
};
use sqlx::Connection;

/// Distinct actors; the most active has about 7% of the events.
pub const ACTORS: usize = 10_000;
/// Actions with their types, most frequent first; drawn from a power law.
pub const ACTIONS: [(&str, ActionType); 12] = [
    ("order.view", ActionType::Read),
    ("order.list", ActionType::Read),
    ("order.update", ActionType::Update),
    ("session.login", ActionType::Login),
    ("order.create", ActionType::Create),
    ("session.logout", ActionType::Logout),
    ("order.refund", ActionType::Update),
    ("report.export", ActionType::Export),
    ("job.run", ActionType::Execute),
    ("order.delete", ActionType::Delete),
    ("role.grant", ActionType::Grant),
    ("role.revoke", ActionType::Revoke),
];

/// A small deterministic generator (xorshift64*), so runs are comparable.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Draws a Zipf-like index in `0..n` by inverting a power-law CDF with exponent ~1.
    pub fn power_law(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (((n as f64 + 1.0).powf(u) - 1.0) as usize).min(n - 1)
    }
}

/// Secondary indexes of the events table, in migration order; the benchmarks drop the
/// last ones to show what each costs.
pub const SECONDARY_INDEXES: [&str; 10] = [
    "idx_events_event_id",
    "idx_events_actor",
    "idx_events_action_type",
    "idx_events_action",
    "idx_events_service",
    "idx_events_target",
    "idx_events_result",
    "idx_events_trace",
    "idx_events_tenant",
    "idx_events_service_result",
];

/// Microseconds in a day.
pub const DAY_US: i64 = 86_400_000_000;

/// Kinds of target, each with its number of distinct ids; ids are drawn from a power law.
pub const TARGETS: [(&str, usize); 3] = [
    ("order", 100_000),
    ("customer", 20_000),
    ("invoice", 50_000),
];

/// Services; the busiest ones are drawn most often.
pub const SERVICES: usize = 20;

/// Tenants; the busiest ones are drawn most often.
pub const TENANTS: usize = 50;

/// Generates `count` events in time order over `span_us` microseconds ending at `end_us`,
/// one at a time, so that millions of events never sit in memory at once.
///
/// Actors, targets, services, tenants and actions follow power laws. Metadata is 200 to
/// 2,000 bytes, one event in 20 has a change, one in 50 is denied and one in 100 failed.
/// Consecutive events share a trace, 1 to 8 events per trace, as one request crossing
/// services does.
pub struct Generator {
    rng: Rng,
    count: usize,
    next: usize,
    start_us: i64,
    span_us: i64,
    trace_id: String,
    trace_left: u64,
}

impl Generator {
    /// A generator with a fixed seed, so runs are comparable.
    pub fn new(count: usize, end_us: i64, span_us: i64) -> Self {
        Self {
            rng: Rng(0x9e37_79b9_7f4a_7c15),
            count,
            next: 0,
            start_us: end_us - span_us,
            span_us,
            trace_id: String::new(),
            trace_left: 0,
        }
    }
}

impl Iterator for Generator {
    type Item = OperationEvent;

    fn next(&mut self) -> Option<OperationEvent> {
        if self.next == self.count {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let rng = &mut self.rng;
        // Evenly spread, with up to a second of jitter: producers' clocks and queues
        // deliver events slightly out of order.
        let even = (self.span_us as i128 * i as i128 / self.count as i128) as i64;
        let occurred_at_us =
            (self.start_us + even - rng.below(1_000_000) as i64).max(self.start_us);
        if self.trace_left == 0 {
            self.trace_id = format!("{:016x}{:016x}", rng.next() | 1, rng.next());
            self.trace_left = rng.below(8) + 1;
        }
        self.trace_left -= 1;
        let actor = rng.power_law(ACTORS);
        let (action, action_type) = ACTIONS[rng.power_law(ACTIONS.len())];
        let metadata_len = 200 + rng.below(1800) as usize;
        let filler: String = std::iter::repeat_n('x', metadata_len.saturating_sub(60)).collect();
        let changes = if rng.below(20) == 0 {
            vec![Change {
                field: "status".into(),
                before_json: "\"open\"".into(),
                after_json: "\"closed\"".into(),
            }]
        } else {
            Vec::new()
        };
        let (target_type, target_ids) = TARGETS[rng.power_law(TARGETS.len())];
        let result = match rng.below(100) {
            0 | 1 => ResultCode::Denied,
            2 => ResultCode::Failure,
            _ => ResultCode::Success,
        };
        Some(OperationEvent {
            event_id: format!("bench-{i:09}"),
            occurred_at: Some(oplog::event::timestamp_from_us(occurred_at_us)),
            service: format!("svc-{}", rng.power_law(SERVICES)),
            tenant: format!("tenant-{}", rng.power_law(TENANTS)),
            actor: Some(Actor {
                id: format!("user-{actor:05}"),
                r#type: ActorType::User as i32,
                display_name: format!("User {actor}"),
                ip: format!("198.51.100.{}", rng.below(250) + 1),
                user_agent: "bench/1.0".into(),
                impersonator: None,
            }),
            action: action.into(),
            action_type: action_type as i32,
            target: Some(Target {
                r#type: target_type.into(),
                id: format!("{target_type}-{}", rng.power_law(target_ids)),
                name: String::new(),
            }),
            outcome: Some(Outcome {
                result: result as i32,
                error_code: if result == ResultCode::Failure {
                    "UNAVAILABLE".into()
                } else {
                    String::new()
                },
                message: String::new(),
            }),
            trace_id: self.trace_id.clone(),
            span_id: format!("{:016x}", rng.next() | 1),
            request_id: format!("req-{i}"),
            metadata_json: format!("{{\"ticket\":\"T-{i}\",\"note\":\"{filler}\"}}"),
            changes,
            schema_version: 1,
        })
    }
}

/// Generates `count` events over the 24 hours before `now_us`.
pub fn generate(count: usize, now_us: i64) -> Vec<OperationEvent> {
    Generator::new(count, now_us, DAY_US).collect()
}

/// Creates a database named `name` on the server of `base_url`, migrated and with day
/// partitions from `first_day` to 2 days after today, and returns its URL.
pub async fn fresh_database(
    base_url: &str,
    name: &str,
    first_day: chrono::NaiveDate,
) -> anyhow::Result<String> {
    let mut conn = sqlx::MySqlConnection::connect(base_url).await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let url = database_url(base_url, name);
    let mut config = oplog::config::Config::default();
    config.mysql.url = url.clone();
    let store = oplog::store::MySqlStore::connect(&config.mysql.settings()).await?;
    store.migrate().await?;
    let days = (chrono::Utc::now().date_naive() - first_day).num_days() + 3;
    oplog::partitions::create_ahead(store.pool(), first_day, days as u32).await?;
    Ok(url)
}

/// Returns the URL of database `name` on the server of `base_url`.
pub fn database_url(base_url: &str, name: &str) -> String {
    let (prefix, _) = base_url.rsplit_once('/').expect("URL has a database");
    format!("{prefix}/{name}")
}

/// Returns the day before today, the first day of the 24-hour benchmarks' partitions.
pub fn yesterday() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive() - chrono::Days::new(1)
}

/// Waits until MariaDB has purged the old row versions of earlier runs, so that a
/// measurement does not share the server with that purge. Gives up after two minutes
/// and prints a line. Dirty pages are not waited for: MariaDB writes them lazily, for
/// minutes, whatever the load.
pub async fn settle(base_url: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::MySqlConnection::connect(base_url).await?;
    let started = std::time::Instant::now();
    loop {
        let (_, length): (String, String) =
            sqlx::query_as("SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'")
                .fetch_one(&mut conn)
                .await?;
        if length.parse::<u64>().is_ok_and(|length| length <= 1_000) {
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            println!("settle: InnoDB history list still {length} long after 120 s");
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Drops the database `name`.
pub async fn drop_database(base_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::MySqlConnection::connect(base_url).await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Serves the gRPC API over `store` on a free loopback port, until the returned token
/// is cancelled. The listener is bound before this returns, so clients can connect at
/// once.
pub async fn serve_query_api(
    store: std::sync::Arc<oplog::store::MySqlStore>,
) -> anyhow::Result<(std::net::SocketAddr, tokio_util::sync::CancellationToken)> {
    let sink: std::sync::Arc<dyn oplog::ingest::EventSink> =
        std::sync::Arc::new(oplog::ingest::StoreSink(store.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server_stop = stop.clone();
    tokio::spawn(async move {
        let registry = prometheus::Registry::new();
        oplog::server::serve_grpc(
            listener,
            store,
            sink,
            &oplog::config::Config::default(),
            &registry,
            server_stop,
        )
        .await
    });
    Ok((addr, stop))
}

/// Returns the `p` quantile (0 to 1) of `sorted` latencies, by the nearest rank.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}
