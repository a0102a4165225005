//! Shared helpers of the integration tests: access to the real MariaDB and Kafka that
//! `scripts/test.sh` starts, events to store, and an in-process gRPC server.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oplog::config::Config;
use oplog::ingest::{EventSink, StoreSink};
use oplog::proto::{
    ActionType, Actor, ActorType, Change, OperationEvent, Outcome, Result as ResultCode, Target,
};
use oplog::store::mysql::MySqlSettings;
use oplog::store::{MySqlStore, Store};
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Environment variable with the URL of the test MariaDB.
pub const MYSQL_URL_VAR: &str = "OPLOG_TEST_MYSQL_URL";
/// Environment variable with the test Kafka bootstrap servers.
pub const KAFKA_BROKERS_VAR: &str = "OPLOG_TEST_KAFKA_BROKERS";

/// Returns the value of a service variable. When it is unset, a test fails under
/// `CI=true` and is skipped with a message elsewhere.
pub fn service_var(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            let message = format!(
                "{var} is not set, so this test has no service to run against; \
                 run scripts/test.sh, which starts MariaDB and Kafka and sets it"
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{message}");
            }
            eprintln!("SKIPPED: {message}");
            None
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Returns a name unique to this test process and call, such as `prefix_1234_7`.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// Creates an empty database `oplog_t_*` on the test server and returns its URL.
pub async fn fresh_mysql_database(base_url: &str) -> String {
    let name = unique_name("oplog_t");
    let mut conn = sqlx::MySqlConnection::connect(base_url)
        .await
        .unwrap_or_else(|e| panic!("failed to connect to the test MariaDB at {base_url}: {e}"));
    sqlx::raw_sql(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (prefix, _) = base_url.rsplit_once('/').expect("URL has a database part");
    format!("{prefix}/{name}")
}

/// Connects to a fresh, migrated database with day partitions around today.
pub async fn migrated_mysql_store(base_url: &str) -> MySqlStore {
    let url = fresh_mysql_database(base_url).await;
    let store = MySqlStore::connect(&mysql_settings(&url))
        .await
        .expect("connect to test database");
    store.migrate().await.expect("migrate test database");
    let today = chrono::Utc::now().date_naive();
    oplog::partitions::create_ahead(store.pool(), today, 2)
        .await
        .expect("create partitions");
    store
}

/// Store settings for `url` with the defaults of the configuration.
pub fn mysql_settings(url: &str) -> MySqlSettings {
    let mut config = Config::default();
    config.mysql.url = url.to_owned();
    config.mysql.settings()
}

/// A running in-process gRPC server; stops when dropped.
pub struct TestServer {
    /// Address of the server.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
}

impl TestServer {
    /// Starts the query and Append APIs over `store` on a free loopback port.
    pub async fn start(store: Arc<dyn Store>) -> Self {
        let sink: Arc<dyn EventSink> = Arc::new(StoreSink(store.clone()));
        Self::start_with(store, sink, Config::default()).await
    }

    /// Starts the APIs with an explicit sink and configuration.
    pub async fn start_with(
        store: Arc<dyn Store>,
        sink: Arc<dyn EventSink>,
        config: Config,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            let registry = prometheus::Registry::new();
            oplog::server::serve_grpc(listener, store, sink, &config, &registry, token)
                .await
                .expect("gRPC server runs");
        });
        Self { addr, shutdown }
    }

    /// Returns the endpoint URL of the server.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connects a query client.
    pub async fn query_client(
        &self,
    ) -> oplog::proto::oplog_query_client::OplogQueryClient<tonic::transport::Channel> {
        connect_retrying(|| {
            oplog::proto::oplog_query_client::OplogQueryClient::connect(self.endpoint())
        })
        .await
    }

    /// Connects an Append client.
    pub async fn ingest_client(
        &self,
    ) -> oplog::proto::oplog_ingest_client::OplogIngestClient<tonic::transport::Channel> {
        connect_retrying(|| {
            oplog::proto::oplog_ingest_client::OplogIngestClient::connect(self.endpoint())
        })
        .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn connect_retrying<T, F, Fut>(connect: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::transport::Error>>,
{
    let mut last = None;
    for _ in 0..50 {
        match connect().await {
            Ok(client) => return client,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("failed to connect to the test server: {last:?}");
}

/// Microseconds since the epoch as a protobuf timestamp.
pub fn ts(us: i64) -> pbjson_types::Timestamp {
    oplog::event::timestamp_from_us(us)
}

/// 2026-01-01T00:00:00Z in microseconds since the epoch.
pub const MIDNIGHT_2026_US: i64 = 1_767_225_600_000_000;

/// Builds a complete, valid event. Tests change the fields they check.
pub fn event(id: &str, occurred_at_us: i64) -> OperationEvent {
    OperationEvent {
        event_id: id.to_owned(),
        occurred_at: Some(ts(occurred_at_us)),
        service: "billing".into(),
        tenant: "acme".into(),
        actor: Some(Actor {
            id: "alice".into(),
            r#type: ActorType::User as i32,
            display_name: "Alice".into(),
            ip: "192.0.2.10".into(),
            user_agent: "oplog-test/1.0".into(),
            impersonator: None,
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
        metadata_json: r#"{"reason":"duplicate charge"}"#.into(),
        changes: vec![Change {
            field: "status".into(),
            before_json: r#""paid""#.into(),
            after_json: r#""refunded""#.into(),
        }],
        schema_version: 1,
    }
}

/// Builds an event with 4-byte UTF-8 in every text field that allows it, nested JSON
/// metadata and changes.
pub fn unicode_event(id: &str, occurred_at_us: i64) -> OperationEvent {
    let mut e = event(id, occurred_at_us);
    e.service = "billing-😀".into();
    e.tenant = "tenant-𝔘𝔫𝔦".into();
    let actor = e.actor.as_mut().expect("event has an actor");
    actor.id = "user-🦀".into();
    actor.display_name = "Zoë 🦀 Ünïcode".into();
    actor.user_agent = "agent/😀".into();
    actor.ip = "2001:db8::7".into();
    actor.impersonator = Some(oplog::proto::Impersonator {
        id: "admin-🔑".into(),
        r#type: ActorType::User as i32,
    });
    e.action = "order.refund.🧾".into();
    let target = e.target.as_mut().expect("event has a target");
    target.r#type = "order-📦".into();
    target.id = "o-🆔".into();
    target.name = "Order 📦".into();
    let outcome = e.outcome.as_mut().expect("event has an outcome");
    outcome.result = ResultCode::Denied as i32;
    outcome.error_code = "E-🚫".into();
    outcome.message = "denied: 🚫 not allowed".into();
    e.request_id = "req-🆔".into();
    e.metadata_json =
        r#"{"a":{"b":[1,2.5,"😀",{"c":null,"d":true}]},"emoji":"🦀","n":-1e-7}"#.into();
    e.changes = vec![
        Change {
            field: "spec.owner".into(),
            before_json: r#"{"name":"Zoë 🦀"}"#.into(),
            after_json: "null".into(),
        },
        Change {
            field: "labels".into(),
            before_json: String::new(),
            after_json: r#"["😀"]"#.into(),
        },
    ];
    e
}

/// A query client of a test server.
pub type QueryClient =
    oplog::proto::oplog_query_client::OplogQueryClient<tonic::transport::Channel>;

/// Lists every event matching `request`, following the page tokens.
pub async fn list_all(
    client: &mut QueryClient,
    request: oplog::proto::ListEventsRequest,
) -> Vec<OperationEvent> {
    let mut request = oplog::proto::ListEventsRequest {
        page_size: 1000,
        ..request
    };
    let mut events = Vec::new();
    loop {
        let page = client
            .list_events(request.clone())
            .await
            .expect("ListEvents")
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        request.page_token = page.next_page_token;
    }
}

/// Lists all events until there are at least `expected` or 90 seconds have passed.
pub async fn wait_for_events(client: &mut QueryClient, expected: usize) -> Vec<OperationEvent> {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let events = list_all(client, Default::default()).await;
        if events.len() >= expected || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An `oplog consume` process of the binary under test.
pub struct ConsumerProcess {
    child: std::process::Child,
}

impl ConsumerProcess {
    /// Starts `oplog --config <config> consume`, logging to `log`.
    pub fn start(config: &std::path::Path, log: &std::path::Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the consumer log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_oplog"))
            .arg("--config")
            .arg(config)
            .arg("consume")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start oplog consume");
        Self { child }
    }

    /// Process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap the consumer");
    }

    /// Sends SIGTERM and waits up to `timeout` for a clean exit.
    pub fn terminate(mut self, timeout: Duration) -> std::process::ExitStatus {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("send SIGTERM");
        assert!(status.success());
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the consumer") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("oplog consume did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resident memory now and at its peak, in KiB, from /proc.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a consumer config file for `topic` into `dir` and returns its path. `extra`
/// lines go into the `[consumer]` table, `mysql_extra` lines into `[mysql]`.
pub fn consumer_config(
    dir: &std::path::Path,
    mysql_url: &str,
    brokers: &str,
    topic: &str,
    extra: &str,
    mysql_extra: &str,
) -> std::path::PathBuf {
    let path = dir.join(format!("{topic}.toml"));
    let text = format!(
        "[log]\nfilter = \"info\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         [mysql]\nurl = \"{mysql_url}\"\n{mysql_extra}\n\n\
         [kafka]\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\n\n\
         [consumer]\ngroup_id = \"{topic}\"\nmax_batch_wait_ms = 100\n\
         session_timeout_ms = 6000\nlag_interval_ms = 1000\n{extra}\n"
    );
    std::fs::write(&path, text).expect("write the consumer config");
    path
}

/// Publishes `events` messages to `partitions` partitions in chunks of 20,000 with a
/// pause between them, so that the stream is still flowing while a test disturbs the
/// consumers. Message `i` goes to partition `i % partitions` with the event id
/// `crash-p<partition>-<i>`; with `bad_every = Some(n)`, every n-th message is
/// undecodable instead. Returns the messages per partition.
pub async fn produce_stream(
    kafka: oplog::kafka::KafkaSettings,
    topic: String,
    partitions: i32,
    events: usize,
    bad_every: Option<usize>,
) -> std::collections::HashMap<i32, usize> {
    use prost::Message as _;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let producer: FutureProducer = kafka
        .client_config()
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let mut produced = std::collections::HashMap::new();
    for chunk in (0..events).collect::<Vec<_>>().chunks(20_000) {
        let mut deliveries = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let partition = (i % partitions as usize) as i32;
            *produced.entry(partition).or_insert(0) += 1;
            let bad = bad_every.is_some_and(|n| i % n == n - 1);
            let (key, payload) = if bad {
                (format!("bad-p{partition}-{i:07}"), vec![0xff, 0xfe, 0xfd])
            } else {
                let id = format!("crash-p{partition}-{i:07}");
                let payload = event(&id, MIDNIGHT_2026_US + i as i64).encode_to_vec();
                (id, payload)
            };
            let record = FutureRecord::to(&topic)
                .partition(partition)
                .key(&key)
                .payload(&payload);
            let delivery = producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("queue the message");
            deliveries.push(delivery);
        }
        for delivery in deliveries {
            delivery
                .await
                .expect("delivery result")
                .map_err(|(e, _)| e)
                .expect("the broker acknowledges the message");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    produced
}

/// Stored rows and distinct event ids per partition, for ids `crash-p<partition>-…`.
pub async fn rows_per_partition(
    pool: &sqlx::MySqlPool,
) -> std::collections::HashMap<i32, (usize, usize)> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT CAST(SUBSTRING_INDEX(SUBSTRING_INDEX(event_id, '-', 2), '-', -1) AS CHAR), \
         COUNT(*), COUNT(DISTINCT event_id) FROM oplog_events GROUP BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("count rows per partition");
    rows.into_iter()
        .filter_map(|(p, count, distinct)| {
            let partition = p.strip_prefix('p')?.parse().ok()?;
            Some((partition, (count as usize, distinct as usize)))
        })
        .collect()
}

/// Waits until the stored offsets of `topic` (group named like the topic) add up to
/// `total`, failing with the tail of `log` after `timeout`.
pub async fn wait_for_offsets(
    store: &MySqlStore,
    topic: &str,
    total: usize,
    timeout: Duration,
    log: &std::path::Path,
) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let offsets = store
            .load_offsets(topic, topic)
            .await
            .expect("load offsets");
        if offsets.values().sum::<i64>() as usize == total {
            return;
        }
        if std::time::Instant::now() > deadline {
            let log_tail = std::fs::read_to_string(log).unwrap_or_default();
            panic!(
                "stored offsets {offsets:?} did not reach {total}; the consumer log ends with:\n{}",
                &log_tail[log_tail.len().saturating_sub(3000)..]
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A MariaDB server of the test's own, on a free loopback port, so that a test can stop
/// and restart it without disturbing other tests.
pub struct PrivateMariaDb {
    dir: tempfile::TempDir,
    port: u16,
    server: PathBuf,
    child: Option<std::process::Child>,
}

use std::path::PathBuf;

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

impl PrivateMariaDb {
    /// Initializes a data directory and starts the server. Returns `None` (and prints why)
    /// when MariaDB is not installed; fails under `CI=true`.
    pub async fn start() -> Option<Self> {
        let binaries = (
            find_binary(&["mariadbd", "mysqld"]),
            find_binary(&["mariadb-install-db", "mysql_install_db"]),
        );
        let (Some(server), Some(install_db)) = binaries else {
            let message = "mariadbd or mariadb-install-db is not installed; run scripts/services.sh start, which installs them";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{message}");
            }
            eprintln!("SKIPPED: {message}");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let mut install = std::process::Command::new(install_db);
        install.args([
            "--no-defaults",
            &format!("--datadir={}", dir.path().join("data").display()),
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
        ]);
        if is_root() {
            install.arg("--user=root");
        }
        let output = install.output().expect("run mariadb-install-db");
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut db = Self {
            dir,
            port,
            server,
            child: None,
        };
        db.launch().await;
        let root = format!("mysql://root@127.0.0.1:{port}/mysql");
        let mut conn = sqlx::MySqlConnection::connect(&root)
            .await
            .expect("connect as root");
        sqlx::raw_sql("CREATE DATABASE oplog CHARACTER SET utf8mb4")
            .execute(&mut conn)
            .await
            .expect("create database");
        Some(db)
    }

    /// URL of the `oplog` database as root.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/oplog", self.port)
    }

    async fn launch(&mut self) {
        let dir = self.dir.path();
        let mut command = std::process::Command::new(&self.server);
        command.args([
            "--no-defaults".to_owned(),
            format!("--datadir={}", dir.join("data").display()),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--port={}", self.port),
            format!("--socket={}", dir.join("mysql.sock").display()),
            format!("--pid-file={}", dir.join("mysql.pid").display()),
            format!("--log-error={}", dir.join("error.log").display()),
            "--innodb-buffer-pool-size=128M".to_owned(),
            "--character-set-server=utf8mb4".to_owned(),
            "--collation-server=utf8mb4_general_ci".to_owned(),
        ]);
        if is_root() {
            command.arg("--user=root");
        }
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let url = format!("mysql://root@127.0.0.1:{}/mysql", self.port);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while sqlx::MySqlConnection::connect(&url).await.is_err() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            assert!(
                std::time::Instant::now() < deadline,
                "the private MariaDB did not start; its log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the server with SIGKILL, as a crash or a lost host would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL mariadbd");
            child.wait().expect("reap mariadbd");
        }
    }

    /// Starts the server again on the same data and port.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// A topic and its dead-letter topic on the test broker.
pub struct TestTopic {
    /// Client settings of the test broker.
    pub kafka: oplog::kafka::KafkaSettings,
    /// The events topic.
    pub topic: String,
    /// The dead-letter topic, `<topic>.dead-letter`.
    pub dead_letter_topic: String,
}

/// Creates a topic named `<prefix>_<unique>` with `partitions` partitions and its
/// dead-letter topic.
pub async fn create_topic(brokers: &str, prefix: &str, partitions: i32) -> TestTopic {
    let kafka = oplog::kafka::KafkaSettings {
        brokers: brokers.to_owned(),
        properties: Default::default(),
    };
    let topic = unique_name(prefix);
    let dead_letter_topic = format!("{topic}.dead-letter");
    oplog::kafka::ensure_topic(&kafka, &topic, partitions, 1)
        .await
        .expect("create the events topic");
    oplog::kafka::ensure_topic(&kafka, &dead_letter_topic, 1, 1)
        .await
        .expect("create the dead-letter topic");
    TestTopic {
        kafka,
        topic,
        dead_letter_topic,
    }
}

impl TestTopic {
    /// Returns a configuration consuming this topic with a group named like it.
    pub fn config(&self) -> Config {
        let mut config = Config::default();
        config.kafka.brokers = self.kafka.brokers.clone();
        config.kafka.topic = self.topic.clone();
        config.consumer.group_id = self.topic.clone();
        config.consumer.dead_letter_topic = Some(self.dead_letter_topic.clone());
        config
    }
}

/// A consumer running in the test process.
pub struct RunningConsumer {
    /// Metrics the consumer registered.
    pub registry: prometheus::Registry,
    /// Readiness the consumer reports to.
    pub readiness: Arc<oplog::health::Readiness>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Starts `oplog consume` in the test process with `config`, writing to `store`.
pub fn spawn_consumer(config: &Config, store: Arc<dyn Store>) -> RunningConsumer {
    let settings = config.consumer_settings();
    let kafka = config.kafka.settings();
    let registry = prometheus::Registry::new();
    let metrics = oplog::consumer::Metrics {
        consumer: oplog::telemetry::metrics::ConsumerMetrics::register(&registry)
            .expect("register consumer metrics"),
        ingest: oplog::telemetry::metrics::IngestMetrics::register(&registry)
            .expect("register ingest metrics"),
    };
    let readiness = Arc::new(oplog::health::Readiness::default());
    let stop = CancellationToken::new();
    let task = {
        let (readiness, stop) = (readiness.clone(), stop.clone());
        tokio::spawn(async move {
            oplog::consumer::run(settings, &kafka, store, metrics, readiness, stop)
                .await
                .expect("the consumer runs");
        })
    };
    RunningConsumer {
        registry,
        readiness,
        stop,
        task,
    }
}

impl RunningConsumer {
    /// Stops the consumer and waits for it to finish.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("the consumer stops cleanly");
    }
}

/// Returns the URL of the database `store` is connected to, on the server of `base_url`.
pub async fn database_url(base_url: &str, store: &MySqlStore) -> String {
    let database: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(store.pool())
        .await
        .expect("read the database name");
    let (prefix, _) = base_url.rsplit_once('/').expect("URL has a database part");
    format!("{prefix}/{database}")
}

/// A topic, a migrated database and a config file for `oplog consume` processes.
pub struct ProcessFixture {
    /// The topic and its dead-letter topic.
    pub topic: TestTopic,
    /// The database the consumers write to.
    pub store: MySqlStore,
    /// The config file of the consumers.
    pub config: std::path::PathBuf,
    /// The log file the consumers append to.
    pub log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl ProcessFixture {
    /// Creates a topic named after `prefix` with `partitions` partitions, a migrated
    /// database and a consumer config with `extra` lines in its `[consumer]` table.
    pub async fn new(
        brokers: &str,
        mysql_url: &str,
        prefix: &str,
        partitions: i32,
        extra: &str,
    ) -> Self {
        let topic = create_topic(brokers, prefix, partitions).await;
        let store = migrated_mysql_store(mysql_url).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let url = database_url(mysql_url, &store).await;
        let config = consumer_config(dir.path(), &url, brokers, &topic.topic, extra, "");
        let log = dir.path().join("consumer.log");
        Self {
            topic,
            store,
            config,
            log,
            _dir: dir,
        }
    }

    /// Publishes `events` messages in the background; see [`produce_stream`].
    pub fn produce(
        &self,
        partitions: i32,
        events: usize,
        bad_every: Option<usize>,
    ) -> tokio::task::JoinHandle<std::collections::HashMap<i32, usize>> {
        tokio::spawn(produce_stream(
            self.topic.kafka.clone(),
            self.topic.topic.clone(),
            partitions,
            events,
            bad_every,
        ))
    }

    /// Starts one `oplog consume` process.
    pub fn start_consumer(&self) -> ConsumerProcess {
        ConsumerProcess::start(&self.config, &self.log)
    }
}
