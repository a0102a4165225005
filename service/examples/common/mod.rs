//! Event generation and database set-up shared by the benchmark examples.

use oplog::proto::{
    ActionType, Actor, ActorType, Change, OperationEvent, Outcome, Result as ResultCode, Target,
};
use sqlx::Connection;

pub const ACTORS: usize = 10_000;
const ACTIONS: [(&str, ActionType); 8] = [
    ("order.view", ActionType::Read),
    ("order.list", ActionType::Read),
    ("order.update", ActionType::Update),
    ("order.create", ActionType::Create),
    ("order.refund", ActionType::Update),
    ("session.login", ActionType::Login),
    ("report.export", ActionType::Export),
    ("role.grant", ActionType::Grant),
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

pub fn generate(count: usize, now_us: i64) -> Vec<OperationEvent> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let day_us = 86_400_000_000;
    (0..count)
        .map(|i| {
            let actor = rng.power_law(ACTORS);
            let (action, action_type) = ACTIONS[rng.power_law(ACTIONS.len())];
            let metadata_len = 200 + rng.below(1800) as usize;
            let filler: String =
                std::iter::repeat_n('x', metadata_len.saturating_sub(60)).collect();
            let changes = if rng.below(20) == 0 {
                vec![Change {
                    field: "status".into(),
                    before_json: "\"open\"".into(),
                    after_json: "\"closed\"".into(),
                }]
            } else {
                Vec::new()
            };
            OperationEvent {
                event_id: format!("bench-{i:09}"),
                occurred_at: Some(oplog::event::timestamp_from_us(
                    now_us - day_us + (rng.below(day_us as u64) as i64),
                )),
                service: format!("svc-{}", rng.power_law(20)),
                tenant: format!("tenant-{}", rng.power_law(50)),
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
                    r#type: "order".into(),
                    id: format!("o-{}", rng.power_law(100_000)),
                    name: String::new(),
                }),
                outcome: Some(Outcome {
                    result: if rng.below(50) == 0 {
                        ResultCode::Denied
                    } else {
                        ResultCode::Success
                    } as i32,
                    error_code: String::new(),
                    message: String::new(),
                }),
                trace_id: format!("{:016x}{:016x}", rng.next() | 1, rng.next()),
                span_id: format!("{:016x}", rng.next() | 1),
                request_id: format!("req-{i}"),
                metadata_json: format!("{{\"ticket\":\"T-{i}\",\"note\":\"{filler}\"}}"),
                changes,
                schema_version: 1,
            }
        })
        .collect()
}

/// Creates a database named `name` on the server of `base_url`, migrated and with day
/// partitions from yesterday to 2 days ahead, and returns its URL.
pub async fn fresh_database(base_url: &str, name: &str) -> anyhow::Result<String> {
    let mut conn = sqlx::MySqlConnection::connect(base_url).await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let (prefix, _) = base_url.rsplit_once('/').expect("URL has a database");
    let url = format!("{prefix}/{name}");
    let mut config = oplog::config::Config::default();
    config.mysql.url = url.clone();
    let store = oplog::store::MySqlStore::connect(&config.mysql.settings()).await?;
    store.migrate().await?;
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    oplog::partitions::create_ahead(store.pool(), yesterday, 3).await?;
    Ok(url)
}

/// Drops the database `name`.
pub async fn drop_database(base_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::MySqlConnection::connect(base_url).await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    Ok(())
}
