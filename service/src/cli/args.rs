//! Command-line flags that override configuration values. Each flag also reads the
//! environment variable its help names, such as `OPLOG_MYSQL_URL` for `--mysql-url`.
//! A flag wins over its variable, and both win over the config file and the
//! `OPLOG__<SECTION>__<KEY>` variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::config::Config;

/// Listen addresses of a server command.
#[derive(Debug, Clone, Default, Args)]
pub struct ListenArgs {
    /// gRPC listen address [config: grpc.listen; default: 127.0.0.1:50051].
    #[arg(long, env = "OPLOG_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<SocketAddr>,
    /// HTTP listen address of /metrics, /livez and /readyz [config: http.listen; default:
    /// 127.0.0.1:9464].
    #[arg(long, env = "OPLOG_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
}

impl ListenArgs {
    /// Applies the flags that are set.
    pub fn apply(&self, config: &mut Config) {
        set(&mut config.grpc.listen, self.grpc_listen);
        set(&mut config.http.listen, self.http_listen);
    }
}

/// Connection to the MySQL store.
#[derive(Debug, Clone, Default, Args)]
pub struct MySqlArgs {
    /// MySQL URL, mysql://USER:PASSWORD@HOST:PORT/DATABASE; the database must exist
    /// [config: mysql.url; default: mysql://oplog:oplog@127.0.0.1:3306/oplog].
    #[arg(
        long,
        env = "OPLOG_MYSQL_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub mysql_url: Option<String>,
    /// Maximum connections in the MySQL pool [config: mysql.max_connections; default: 10].
    #[arg(long, env = "OPLOG_MYSQL_MAX_CONNECTIONS", value_name = "N")]
    pub mysql_max_connections: Option<u32>,
}

impl MySqlArgs {
    /// Applies the flags that are set.
    pub fn apply(&self, config: &mut Config) {
        set(&mut config.mysql.url, self.mysql_url.clone());
        set(
            &mut config.mysql.max_connections,
            self.mysql_max_connections,
        );
    }
}

/// Connection to Kafka.
#[derive(Debug, Clone, Default, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT...] [config: kafka.brokers; default:
    /// 127.0.0.1:9092].
    #[arg(long, env = "OPLOG_KAFKA_BROKERS", value_name = "LIST")]
    pub kafka_brokers: Option<String>,
    /// Topic of the events [config: kafka.topic; default: oplog-events].
    #[arg(long, env = "OPLOG_KAFKA_TOPIC", value_name = "TOPIC")]
    pub kafka_topic: Option<String>,
}

impl KafkaArgs {
    /// Applies the flags that are set.
    pub fn apply(&self, config: &mut Config) {
        set(&mut config.kafka.brokers, self.kafka_brokers.clone());
        set(&mut config.kafka.topic, self.kafka_topic.clone());
    }
}

/// Consumer group and batching.
#[derive(Debug, Clone, Default, Args)]
pub struct ConsumerArgs {
    /// Kafka consumer group, also the key of the stored offsets [config:
    /// consumer.group_id; default: oplog].
    #[arg(long, env = "OPLOG_CONSUMER_GROUP_ID", value_name = "GROUP")]
    pub group_id: Option<String>,
    /// Topic for messages that cannot be stored [config: consumer.dead_letter_topic;
    /// default: <topic>.dead-letter].
    #[arg(long, env = "OPLOG_CONSUMER_DEAD_LETTER_TOPIC", value_name = "TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// Write a batch at this many events [config: consumer.max_batch_events; default: 2000].
    #[arg(long, env = "OPLOG_CONSUMER_MAX_BATCH_EVENTS", value_name = "EVENTS")]
    pub max_batch_events: Option<usize>,
    /// Write a batch at this many bytes of event data [config: consumer.max_batch_bytes;
    /// default: 4194304].
    #[arg(long, env = "OPLOG_CONSUMER_MAX_BATCH_BYTES", value_name = "BYTES")]
    pub max_batch_bytes: Option<usize>,
    /// Write a batch when its first message has waited this long, in milliseconds
    /// [config: consumer.max_batch_wait_ms; default: 500].
    #[arg(long, env = "OPLOG_CONSUMER_MAX_BATCH_WAIT_MS", value_name = "MS")]
    pub max_batch_wait_ms: Option<u64>,
    /// Dead-letter message values larger than this many bytes [config:
    /// consumer.max_event_bytes; default: 1048576].
    #[arg(long, env = "OPLOG_CONSUMER_MAX_EVENT_BYTES", value_name = "BYTES")]
    pub max_event_bytes: Option<usize>,
}

impl ConsumerArgs {
    /// Applies the flags that are set.
    pub fn apply(&self, config: &mut Config) {
        let consumer = &mut config.consumer;
        set(&mut consumer.group_id, self.group_id.clone());
        if self.dead_letter_topic.is_some() {
            consumer.dead_letter_topic = self.dead_letter_topic.clone();
        }
        set(&mut consumer.max_batch_events, self.max_batch_events);
        set(&mut consumer.max_batch_bytes, self.max_batch_bytes);
        set(&mut consumer.max_batch_wait_ms, self.max_batch_wait_ms);
        set(&mut consumer.max_event_bytes, self.max_event_bytes);
    }
}

/// The SQLite file of the embedded mode.
#[derive(Debug, Clone, Default, Args)]
pub struct SqliteArgs {
    /// SQLite database file, created when missing [config: sqlite.path; default: oplog.db].
    #[arg(long, env = "OPLOG_SQLITE_PATH", value_name = "FILE")]
    pub sqlite_path: Option<PathBuf>,
}

impl SqliteArgs {
    /// Applies the flags that are set.
    pub fn apply(&self, config: &mut Config) {
        set(&mut config.sqlite.path, self.sqlite_path.clone());
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}
