//! Wiring of the long-running commands: `serve`, `consume` and `all-in-one`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;

use crate::config::Config;
use crate::consumer;
use crate::health::Readiness;
use crate::ingest::{EventSink, IngestService, KafkaSink, StoreSink};
use crate::kafka::EventProducer;
use crate::proto::oplog_ingest_server::OplogIngestServer;
use crate::proto::oplog_query_server::OplogQueryServer;
use crate::query::QueryService;
use crate::store::{MySqlStore, SqliteStore, Store};
use crate::telemetry::{http, metrics};

/// Readiness component name of the store.
const STORE: &str = "store";

/// Runs `oplog serve`: the query API over MySQL, and the Append API publishing to Kafka.
pub async fn run_serve(config: Config) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(connect_mysql(&config).await?);
    let producer = EventProducer::new(
        &config.kafka.settings(),
        &config.kafka.topic,
        Duration::from_secs(30),
    )
    .context("failed to create the Kafka producer")?;
    let sink: Arc<dyn EventSink> = Arc::new(KafkaSink(producer));
    run_grpc(config, store, sink).await
}

/// Runs `oplog all-in-one`: the query and Append APIs over one SQLite file, no Kafka.
pub async fn run_all_in_one(config: Config) -> anyhow::Result<()> {
    let path = &config.sqlite.path;
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(path)
            .await
            .with_context(|| format!("failed to open the SQLite store {}", path.display()))?,
    );
    tracing::info!(path = %path.display(), "opened SQLite store");
    let sink: Arc<dyn EventSink> = Arc::new(StoreSink(store.clone()));
    run_grpc(config, store, sink).await
}

/// Runs `oplog consume`: the Kafka consumer group writing to MySQL.
pub async fn run_consume(config: Config) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(connect_mysql(&config).await?);
    let registry = Registry::new();
    let metrics = consumer::Metrics {
        consumer: metrics::ConsumerMetrics::register(&registry)?,
        ingest: metrics::IngestMetrics::register(&registry)?,
    };
    let readiness = Arc::new(Readiness::default());
    readiness.set_ready(STORE);
    let shutdown = shutdown_token();
    let http_task = spawn_http(&config, registry, readiness.clone(), shutdown.clone()).await?;
    let settings = config.consumer_settings();
    consumer::run(
        settings,
        &config.kafka.settings(),
        store,
        metrics,
        readiness,
        shutdown.clone(),
    )
    .await
    .context("consumer failed")?;
    shutdown.cancel();
    http_task.await??;
    Ok(())
}

async fn connect_mysql(config: &Config) -> anyhow::Result<MySqlStore> {
    MySqlStore::connect(&config.mysql.settings())
        .await
        .with_context(|| {
            format!(
                "failed to connect to MySQL at {}",
                redact(&config.mysql.url)
            )
        })
}

async fn run_grpc(
    config: Config,
    store: Arc<dyn Store>,
    sink: Arc<dyn EventSink>,
) -> anyhow::Result<()> {
    let registry = Registry::new();
    let readiness = Arc::new(Readiness::default());
    readiness.set_ready(STORE);
    let shutdown = shutdown_token();
    let http_task = spawn_http(&config, registry.clone(), readiness, shutdown.clone()).await?;
    let listener = TcpListener::bind(config.grpc.listen)
        .await
        .with_context(|| {
            format!(
                "failed to listen for gRPC on {}; choose a free address with --grpc-listen",
                config.grpc.listen
            )
        })?;
    serve_grpc(listener, store, sink, &config, &registry, shutdown.clone()).await?;
    shutdown.cancel();
    http_task.await??;
    tracing::info!("server stopped");
    Ok(())
}

/// Serves the query, Append, health and reflection services on `listener` until
/// `shutdown` is cancelled, registering the API metrics in `registry`.
pub async fn serve_grpc(
    listener: TcpListener,
    store: Arc<dyn Store>,
    sink: Arc<dyn EventSink>,
    config: &Config,
    registry: &Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let query_metrics = metrics::QueryMetrics::register(registry)?;
    let ingest_metrics = metrics::IngestMetrics::register(registry)?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<OplogQueryServer<QueryService>>()
        .await;
    health_reporter
        .set_serving::<OplogIngestServer<IngestService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("failed to build the reflection service")?;

    let max = config.grpc.max_message_bytes;
    let query = QueryService::new(store, config.query.limits(), query_metrics);
    let query = OplogQueryServer::new(query)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let ingest = IngestService::new(sink, config.ingest.max_batch_events, ingest_metrics);
    let ingest = OplogIngestServer::new(ingest)
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);

    tracing::info!(addr = %listener.local_addr()?, "gRPC server listening");
    // Without TCP_NODELAY, a response written in several segments waits for the
    // client's delayed ACK, which adds about 40 ms to every large page.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(query)
        .add_service(ingest)
        .serve_with_incoming_shutdown(incoming, async move { shutdown.cancelled().await })
        .await
        .context("gRPC server failed")
}

async fn spawn_http(
    config: &Config,
    registry: Registry,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = http::bind(config.http.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "HTTP endpoint listening");
    Ok(tokio::spawn(http::serve(
        listener,
        registry,
        readiness,
        async move { shutdown.cancelled().await },
    )))
}

/// Returns a token cancelled on SIGINT or SIGTERM.
fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        cancel.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "failed to install the SIGTERM handler");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Returns the URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password() {
        assert_eq!(
            redact("mysql://u:secret@h:3306/db"),
            "mysql://u:***@h:3306/db"
        );
        assert_eq!(redact("mysql://h:3306/db"), "mysql://h:3306/db");
    }
}
