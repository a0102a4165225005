//! Configuration: defaults, overridden by a TOML file, overridden by environment
//! variables and command-line flags (see `cli`). Unknown keys in the file are errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::consumer::{BatchLimits, ConsumerSettings, DecodeLimits};
use crate::kafka::KafkaSettings;
use crate::query::QueryLimits;
use crate::store::mysql::MySqlSettings;
use crate::telemetry::LogFormat;

/// Everything a command can be configured with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Logging.
    pub log: LogConfig,
    /// The HTTP endpoint for metrics and health.
    pub http: HttpConfig,
    /// The gRPC server.
    pub grpc: GrpcConfig,
    /// The MySQL store.
    pub mysql: MySqlConfig,
    /// The SQLite store of the embedded mode.
    pub sqlite: SqliteConfig,
    /// Kafka connection and topic.
    pub kafka: KafkaConfig,
    /// The consumer group.
    pub consumer: ConsumerConfig,
    /// Query API limits.
    pub query: QueryConfig,
    /// Append API limits.
    pub ingest: IngestConfig,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Line format.
    pub format: LogFormat,
    /// Filter in `RUST_LOG` syntax.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// HTTP endpoint settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of `/metrics`, `/livez` and `/readyz`.
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 9464).into(),
        }
    }
}

/// gRPC server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Address of the gRPC server.
    pub listen: SocketAddr,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 50051).into(),
            max_message_bytes: 16 << 20,
        }
    }
}

/// MySQL store settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MySqlConfig {
    /// Connection URL, `mysql://user:password@host:port/database`.
    pub url: String,
    /// Maximum connections in the pool.
    pub max_connections: u32,
    /// Maximum wait for a pooled connection, in milliseconds.
    pub acquire_timeout_ms: u64,
    /// Maximum bytes of one INSERT statement; must stay below the server's
    /// `max_allowed_packet`.
    pub max_statement_bytes: usize,
    /// Day partitions `oplog migrate` creates ahead of today.
    pub partitions_ahead_days: u32,
    /// Maximum wait of one statement, lock waits included, in milliseconds.
    pub statement_timeout_ms: u64,
    /// Days of events kept: `oplog partitions maintain` drops day partitions whose
    /// whole range is older, and the consumer dead-letters older events.
    pub retention_days: u32,
}

impl Default for MySqlConfig {
    fn default() -> Self {
        Self {
            url: "mysql://oplog:oplog@127.0.0.1:3306/oplog".into(),
            max_connections: 10,
            acquire_timeout_ms: 5_000,
            max_statement_bytes: 4 << 20,
            partitions_ahead_days: 7,
            statement_timeout_ms: 30_000,
            retention_days: 365,
        }
    }
}

impl MySqlConfig {
    /// Store settings for these values.
    pub fn settings(&self) -> MySqlSettings {
        MySqlSettings {
            url: self.url.clone(),
            max_connections: self.max_connections,
            acquire_timeout: Duration::from_millis(self.acquire_timeout_ms),
            max_statement_bytes: self.max_statement_bytes,
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        }
    }
}

/// SQLite store settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// Database file; created when missing.
    pub path: PathBuf,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("oplog.db"),
        }
    }
}

/// Kafka settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topic the services publish events to.
    pub topic: String,
    /// Extra librdkafka properties for every client, such as `security.protocol`.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: "oplog-events".into(),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// Client settings for these values.
    pub fn settings(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.brokers.clone(),
            properties: self.properties.clone(),
        }
    }
}

/// Consumer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Kafka consumer group; also the key of the offsets stored in MySQL.
    pub group_id: String,
    /// Topic for messages that cannot be stored; defaults to `<topic>.dead-letter`.
    pub dead_letter_topic: Option<String>,
    /// A batch is written at this many events.
    pub max_batch_events: usize,
    /// A batch is written at this many bytes of event data.
    pub max_batch_bytes: usize,
    /// A batch is written when its first message has waited this many milliseconds.
    pub max_batch_wait_ms: u64,
    /// Batches written at once, each in its own transaction and connection. A
    /// partition's batches always go to the same writer. Must be below
    /// `mysql.max_connections`.
    pub writers: usize,
    /// Largest message value accepted, in bytes; larger ones are dead-lettered.
    pub max_event_bytes: usize,
    /// How far an event time may be ahead of the consumer's clock, in seconds; later
    /// events are dead-lettered.
    pub max_future_skew_s: u64,
    /// Buffered bytes (the batches being written and those filling) above which the
    /// consumer pauses its partitions.
    pub max_buffered_bytes: usize,
    /// Kilobytes librdkafka may prefetch per partition.
    pub fetch_queue_kbytes: usize,
    /// Interval at which the lag metric is refreshed from the brokers' high
    /// watermarks, in milliseconds.
    pub lag_interval_ms: u64,
    /// Kafka session timeout, in milliseconds.
    pub session_timeout_ms: u64,
    /// First delay between retries of a failed write, in milliseconds.
    pub retry_backoff_ms: u64,
    /// Maximum delay between retries of a failed write, in milliseconds.
    pub max_retry_backoff_ms: u64,
    /// How long shutdown may spend writing the last batch, in milliseconds.
    pub shutdown_timeout_ms: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            group_id: "oplog".into(),
            dead_letter_topic: None,
            max_batch_events: 4_000,
            max_batch_bytes: 16 << 20,
            max_batch_wait_ms: 500,
            writers: 2,
            max_event_bytes: 1 << 20,
            max_future_skew_s: 3_600,
            max_buffered_bytes: 128 << 20,
            fetch_queue_kbytes: 16 << 10,
            lag_interval_ms: 5_000,
            session_timeout_ms: 45_000,
            retry_backoff_ms: 100,
            max_retry_backoff_ms: 30_000,
            shutdown_timeout_ms: 10_000,
        }
    }
}

impl ConsumerConfig {
    /// Consumer settings for these values, the Kafka topic and the retention.
    pub fn settings(&self, kafka: &KafkaConfig, retention_days: u32) -> ConsumerSettings {
        ConsumerSettings {
            topic: kafka.topic.clone(),
            group_id: self.group_id.clone(),
            dead_letter_topic: self
                .dead_letter_topic
                .clone()
                .unwrap_or_else(|| format!("{}.dead-letter", kafka.topic)),
            batch: BatchLimits {
                max_events: self.max_batch_events,
                max_bytes: self.max_batch_bytes,
                max_wait: Duration::from_millis(self.max_batch_wait_ms),
            },
            writers: self.writers,
            decode: DecodeLimits {
                max_event_bytes: self.max_event_bytes,
                max_future_skew: Duration::from_secs(self.max_future_skew_s),
                retention_days: Some(retention_days),
            },
            max_buffered_bytes: self.max_buffered_bytes,
            fetch_queue_kbytes: self.fetch_queue_kbytes,
            lag_interval: Duration::from_millis(self.lag_interval_ms),
            session_timeout: Duration::from_millis(self.session_timeout_ms),
            retry_backoff: Duration::from_millis(self.retry_backoff_ms),
            max_retry_backoff: Duration::from_millis(self.max_retry_backoff_ms),
            shutdown_timeout: Duration::from_millis(self.shutdown_timeout_ms),
        }
    }
}

/// Query API limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Page size of `ListEvents` when a request sets 0.
    pub default_page_size: u32,
    /// Largest page size of `ListEvents`.
    pub max_page_size: u32,
    /// Most events `GetTrace` returns.
    pub max_trace_events: u32,
}

impl Default for QueryConfig {
    fn default() -> Self {
        let limits = QueryLimits::default();
        Self {
            default_page_size: limits.default_page_size,
            max_page_size: limits.max_page_size,
            max_trace_events: limits.max_trace_events,
        }
    }
}

impl QueryConfig {
    /// Query limits for these values.
    pub fn limits(&self) -> QueryLimits {
        QueryLimits {
            default_page_size: self.default_page_size,
            max_page_size: self.max_page_size,
            max_trace_events: self.max_trace_events,
        }
    }
}

/// Append API limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Maximum events in one Append request.
    pub max_batch_events: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_batch_events: 5_000,
        }
    }
}

/// Errors of loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config file {path}: {source}")]
    Read {
        /// Path of the file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// Path of the file.
        path: PathBuf,
        /// The parse error, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Settings of `oplog consume`.
    pub fn consumer_settings(&self) -> ConsumerSettings {
        self.consumer
            .settings(&self.kafka, self.mysql.retention_days)
    }

    /// Loads `path` (or nothing when `None`) over the defaults, then applies the
    /// environment variables `OPLOG__<SECTION>__<KEY>`, such as
    /// `OPLOG__CONSUMER__SESSION_TIMEOUT_MS=6000`, which reach every key of the file.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Config::load`] with the environment given explicitly.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let source = path.map_or_else(|| PathBuf::from("<defaults>"), Path::to_owned);
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_owned(),
                    source,
                })?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            set_path(&mut table, &key.to_lowercase(), &value).map_err(|problem| {
                ConfigError::Invalid(format!("environment variable {name}: {problem}"))
            })?;
        }
        Config::deserialize(toml::Value::Table(table)).map_err(|e| {
            ConfigError::Invalid(format!("{} and OPLOG__* variables: {e}", source.display()))
        })
    }
    /// Checks values that the types alone allow but that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            (
                "consumer.max_batch_events",
                self.consumer.max_batch_events as u64,
            ),
            (
                "consumer.max_batch_bytes",
                self.consumer.max_batch_bytes as u64,
            ),
            (
                "consumer.max_event_bytes",
                self.consumer.max_event_bytes as u64,
            ),
            ("consumer.writers", self.consumer.writers as u64),
            ("consumer.retry_backoff_ms", self.consumer.retry_backoff_ms),
            ("consumer.lag_interval_ms", self.consumer.lag_interval_ms),
            (
                "query.default_page_size",
                u64::from(self.query.default_page_size),
            ),
            ("query.max_page_size", u64::from(self.query.max_page_size)),
            (
                "query.max_trace_events",
                u64::from(self.query.max_trace_events),
            ),
            (
                "ingest.max_batch_events",
                self.ingest.max_batch_events as u64,
            ),
            (
                "mysql.max_connections",
                u64::from(self.mysql.max_connections),
            ),
            (
                "mysql.max_statement_bytes",
                self.mysql.max_statement_bytes as u64,
            ),
            (
                "mysql.statement_timeout_ms",
                self.mysql.statement_timeout_ms,
            ),
            ("mysql.retention_days", u64::from(self.mysql.retention_days)),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::Invalid(format!(
                "{name} is 0; set a positive value"
            )));
        }
        if self.query.default_page_size > self.query.max_page_size {
            return Err(ConfigError::Invalid(format!(
                "query.default_page_size {} is above query.max_page_size {}; lower it",
                self.query.default_page_size, self.query.max_page_size
            )));
        }
        if self.consumer.writers >= self.mysql.max_connections as usize {
            return Err(ConfigError::Invalid(format!(
                "consumer.writers {} needs more connections than mysql.max_connections {}: each writer holds one, and claims need another; raise mysql.max_connections above consumer.writers",
                self.consumer.writers, self.mysql.max_connections
            )));
        }
        if self.consumer.max_retry_backoff_ms < self.consumer.retry_backoff_ms {
            return Err(ConfigError::Invalid(format!(
                "consumer.max_retry_backoff_ms {} is below consumer.retry_backoff_ms {}; raise it",
                self.consumer.max_retry_backoff_ms, self.consumer.retry_backoff_ms
            )));
        }
        Ok(())
    }
}

/// Prefix of the environment variables that set any configuration key.
const ENV_PREFIX: &str = "OPLOG__";

/// Sets `section__key` (already lower-case) in `table`. The value is read as a TOML
/// value when it parses as one (`6000`, `true`, `["a"]`), else as a string.
fn set_path(table: &mut toml::Table, path: &str, value: &str) -> Result<(), String> {
    let parts: Vec<&str> = path.split("__").collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("expected OPLOG__<SECTION>__<KEY>, such as OPLOG__MYSQL__URL".into());
    }
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, sections) = parts.split_last().expect("split yields at least one part");
    let mut current = table;
    for section in sections {
        let entry = current
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("{section} is a value, not a section"))?;
    }
    current.insert(last.to_string(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_keeps_the_rest() {
        let config: Config = toml::from_str(
            "[consumer]\nmax_batch_events = 10\n[kafka.properties]\n\"security.protocol\" = \"SSL\"\n",
        )
        .unwrap();
        assert_eq!(config.consumer.max_batch_events, 10);
        assert_eq!(config.consumer.max_batch_wait_ms, 500);
        assert_eq!(config.kafka.properties["security.protocol"], "SSL");
    }

    #[test]
    fn unknown_key_is_an_error() {
        let err = toml::from_str::<Config>("[consumer]\nmax_batch_event = 10\n").unwrap_err();
        assert!(err.to_string().contains("max_batch_event"), "{err}");
    }

    #[test]
    fn dead_letter_topic_follows_the_topic() {
        let config = Config::default();
        let settings = config.consumer_settings();
        assert_eq!(settings.dead_letter_topic, "oplog-events.dead-letter");
    }

    #[test]
    fn environment_reaches_every_key() {
        let env = [
            (
                "OPLOG__CONSUMER__SESSION_TIMEOUT_MS".to_owned(),
                "6000".to_owned(),
            ),
            (
                "OPLOG__MYSQL__URL".to_owned(),
                "mysql://u:p@db:3306/x".to_owned(),
            ),
            (
                "OPLOG__KAFKA__PROPERTIES__SECURITY.PROTOCOL".to_owned(),
                "SSL".to_owned(),
            ),
            ("OPLOG_TEST_MYSQL_URL".to_owned(), "ignored".to_owned()),
        ];
        let config = Config::load_with_env(None, env).unwrap();
        assert_eq!(config.consumer.session_timeout_ms, 6000);
        assert_eq!(config.mysql.url, "mysql://u:p@db:3306/x");
        assert_eq!(config.kafka.properties["security.protocol"], "SSL");
    }

    #[test]
    fn unknown_environment_key_is_an_error() {
        let env = [(
            "OPLOG__CONSUMER__MAX_BATCH_EVENT".to_owned(),
            "5".to_owned(),
        )];
        let err = Config::load_with_env(None, env).unwrap_err();
        assert!(err.to_string().contains("max_batch_event"), "{err}");
    }

    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```toml\n").expect("README has a TOML example") + 8;
        let end = start + readme[start..].find("```").expect("the example ends");
        let config: Config = toml::from_str(&readme[start..end]).expect("the example parses");
        config.validate().expect("the example is valid");
    }

    #[test]
    fn zero_batch_size_is_rejected() {
        let mut config = Config::default();
        config.consumer.max_batch_events = 0;
        let err = config.validate().unwrap_err();
        assert!(
            err.to_string().contains("consumer.max_batch_events"),
            "{err}"
        );
    }
}
