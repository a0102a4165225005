//! The `oplog` binary as a newcomer runs it: no configuration but ports and a file,
//! `oplog import` of the demo sample, `oplog query`, health, reflection, metrics and a
//! clean stop on SIGTERM.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OPLOG: &str = env!("CARGO_BIN_EXE_oplog");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo/sample-audit.jsonl")
}

struct Server {
    child: Child,
    grpc: u16,
    http: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `oplog` with no command, configured only by environment variables.
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (grpc, http) = (free_port(), free_port());
        let child = Command::new(OPLOG)
            .env("OPLOG_SQLITE_PATH", dir.path().join("oplog.db"))
            .env("OPLOG_GRPC_LISTEN", format!("127.0.0.1:{grpc}"))
            .env("OPLOG_HTTP_LISTEN", format!("127.0.0.1:{http}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start oplog");
        Self {
            child,
            grpc,
            http,
            _dir: dir,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(OPLOG)
            .args(args)
            .env("OPLOG_ENDPOINT", self.endpoint())
            .output()
            .expect("run oplog")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

async fn wait_ready(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(response) = http_get(server.http, "/readyz").await {
            if response.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "oplog did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn all_in_one_imports_and_answers_queries() {
    let mut server = Server::start();
    wait_ready(&server).await;

    let import = server.run(&["import", sample().to_str().unwrap()]);
    assert!(
        import.status.success(),
        "import failed: {}",
        stderr(&import)
    );
    assert!(
        stderr(&import).contains("imported 33 events"),
        "{}",
        stderr(&import)
    );

    let query = server.run(&[
        "query", "--output", "json", "list", "--actor", "u-1001", "--limit", "100",
    ]);
    assert!(query.status.success(), "query failed: {}", stderr(&query));
    let lines: Vec<serde_json::Value> = String::from_utf8(query.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|e| e["actor"]["id"] == "u-1001"));

    let table = server.run(&["query", "list", "--outcome", "denied"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("secrets.get"), "{table}");
    assert!(table.contains("TIME (UTC)"), "{table}");

    let metrics = http_get(server.http, "/metrics").await.expect("metrics");
    assert!(metrics.contains("oplog_query_requests_total"), "{metrics}");
    assert!(
        metrics.contains("oplog_events_received_total{source=\"append\"} 33"),
        "{metrics}"
    );

    stop_with_sigterm(&mut server);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_reports_bad_lines_and_keeps_the_rest() {
    let server = Server::start();
    wait_ready(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.jsonl");
    let good = std::fs::read_to_string(sample()).unwrap();
    let first = good.lines().next().unwrap();
    std::fs::write(
        &file,
        format!("{first}\n{{\"not\": \"an audit record\"}}\nnot json\n"),
    )
    .unwrap();

    let import = server.run(&["import", file.to_str().unwrap()]);
    assert!(
        !import.status.success(),
        "an import with bad records fails at the end"
    );
    let err = stderr(&import);
    assert!(err.contains(&format!("{}:2:", file.display())), "{err}");
    assert!(err.contains(&format!("{}:3:", file.display())), "{err}");
    assert!(err.contains("imported 1 events"), "{err}");

    let query = server.run(&["query", "--output", "json", "list"]);
    assert_eq!(String::from_utf8(query.stdout).unwrap().lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_reflection_answer_without_protos() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let server = Server::start();
    wait_ready(&server).await;
    let channel = tonic::transport::Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .expect("connect to oplog");
    let mut health = HealthClient::new(channel.clone());
    let status = health
        .check(HealthCheckRequest {
            service: "oplog.v1.OplogQuery".into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"oplog.v1.OplogQuery".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"oplog.v1.OplogIngest".to_owned()),
        "{names:?}"
    );
}

#[test]
fn unknown_config_key_is_reported_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oplog.toml");
    std::fs::write(&config, "[consumer]\nmax_batch_event = 5\n").unwrap();
    let output = Command::new(OPLOG)
        .args(["--config", config.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("max_batch_event"), "{err}");
    assert!(err.contains(config.to_str().unwrap()), "{err}");
}

fn stop_with_sigterm(server: &mut Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "oplog exits cleanly on SIGTERM: {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "oplog did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
