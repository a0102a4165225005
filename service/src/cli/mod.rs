//! The `oplog` command line.

mod args;
mod import;
mod partitions;
mod query;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::store::MySqlStore;
use crate::telemetry::{self, LogFormat};
use args::{ConsumerArgs, KafkaArgs, ListenArgs, MySqlArgs, SqliteArgs};

/// oplog: operation-log (audit trail) pipeline from Kafka into MySQL, with a gRPC query
/// API. With no command it runs `all-in-one`.
#[derive(Debug, Parser)]
#[command(name = "oplog", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file; flags and OPLOG_* variables override its values.
    #[arg(
        long,
        global = true,
        env = "OPLOG_CONFIG",
        value_name = "FILE",
        help_heading = "Global options"
    )]
    config: Option<PathBuf>,
    /// Log line format [config: log.format; default: text].
    #[arg(
        long,
        global = true,
        env = "OPLOG_LOG_FORMAT",
        value_enum,
        help_heading = "Global options"
    )]
    log_format: Option<LogFormat>,
    /// Log filter in RUST_LOG syntax, such as info or oplog=debug [config: log.filter;
    /// default: info].
    #[arg(
        long,
        global = true,
        env = "OPLOG_LOG_FILTER",
        value_name = "FILTER",
        help_heading = "Global options"
    )]
    log_filter: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The `all-in-one` arguments, parsed from the environment alone when no command is given.
#[derive(Debug, Parser)]
struct AllInOneDefaults {
    #[command(flatten)]
    sqlite: SqliteArgs,
    #[command(flatten)]
    listen: ListenArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the query and Append APIs over a local SQLite file, with no Kafka or MySQL
    /// (the default).
    AllInOne {
        #[command(flatten)]
        sqlite: SqliteArgs,
        #[command(flatten)]
        listen: ListenArgs,
    },
    /// Serve the gRPC query API over MySQL; Append publishes to Kafka.
    Serve {
        #[command(flatten)]
        mysql: MySqlArgs,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        listen: ListenArgs,
    },
    /// Consume the events topic into MySQL as a Kafka consumer group.
    Consume {
        #[command(flatten)]
        mysql: MySqlArgs,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        consumer: ConsumerArgs,
        /// HTTP listen address of /metrics, /livez and /readyz [config: http.listen;
        /// default: 127.0.0.1:9464].
        #[arg(long, env = "OPLOG_HTTP_LISTEN", value_name = "ADDR")]
        http_listen: Option<std::net::SocketAddr>,
    },
    /// Create or upgrade the MySQL schema and the day partitions ahead; safe to rerun.
    Migrate {
        #[command(flatten)]
        mysql: MySqlArgs,
        /// Day partitions to create after today, UTC [config: mysql.partitions_ahead_days;
        /// default: 7].
        #[arg(long, value_name = "DAYS")]
        ahead_days: Option<u32>,
    },
    /// Maintain the day partitions of the MySQL store.
    Partitions {
        #[command(subcommand)]
        command: partitions::PartitionsCommand,
    },
    /// Import audit logs (Kubernetes, CloudTrail, oplog JSON lines) through the Append
    /// API or straight to Kafka.
    Import(import::ImportArgs),
    /// Query stored events through the gRPC API.
    Query(query::QueryArgs),
}

impl Cli {
    /// Runs the command and returns the process exit code.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        if let Some(filter) = &self.log_filter {
            config.log.filter = filter.clone();
        }
        let command = self.command.unwrap_or_else(|| {
            // With no command, read the all-in-one flags' environment variables, which
            // clap only reads for a parsed subcommand.
            let defaults = AllInOneDefaults::parse_from(["oplog"]);
            Command::AllInOne {
                sqlite: defaults.sqlite,
                listen: defaults.listen,
            }
        });
        // Client commands print their results; their logs stay quiet unless asked.
        if matches!(command, Command::Query(_) | Command::Import(_)) && self.log_filter.is_none() {
            config.log.filter = "warn".into();
        }
        telemetry::init_logging(config.log.format, &config.log.filter)?;
        command.run(config).await
    }
}

impl Command {
    async fn run(self, mut config: Config) -> anyhow::Result<ExitCode> {
        match self {
            Command::AllInOne { sqlite, listen } => {
                sqlite.apply(&mut config);
                listen.apply(&mut config);
                config.validate()?;
                success(crate::server::run_all_in_one(config).await)
            }
            Command::Serve {
                mysql,
                kafka,
                listen,
            } => {
                mysql.apply(&mut config);
                kafka.apply(&mut config);
                listen.apply(&mut config);
                config.validate()?;
                success(crate::server::run_serve(config).await)
            }
            Command::Consume {
                mysql,
                kafka,
                consumer,
                http_listen,
            } => {
                mysql.apply(&mut config);
                kafka.apply(&mut config);
                consumer.apply(&mut config);
                if let Some(addr) = http_listen {
                    config.http.listen = addr;
                }
                config.validate()?;
                success(crate::server::run_consume(config).await)
            }
            Command::Migrate { mysql, ahead_days } => {
                mysql.apply(&mut config);
                if let Some(days) = ahead_days {
                    config.mysql.partitions_ahead_days = days;
                }
                success(migrate(&config).await)
            }
            Command::Import(args) => success(args.run(config).await),
            Command::Query(args) => success(args.run().await),
            Command::Partitions { command } => command.run(config).await,
        }
    }
}

/// Returns the endpoint as a URL: `host:port` gets `http://` in front.
fn endpoint_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    }
}

fn success(result: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    result.map(|()| ExitCode::SUCCESS)
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let url = crate::server::redact(&config.mysql.url);
    let store = MySqlStore::connect(&config.mysql.settings())
        .await
        .with_context(|| format!("failed to connect to MySQL at {url}"))?;
    store
        .migrate()
        .await
        .context("failed to apply migrations")?;
    println!("schema migrated");
    // The partitions ahead are created under the maintenance lock, as
    // `oplog partitions maintain` creates them, but nothing is dropped.
    let options = crate::partitions::maintain::Options {
        today: chrono::Utc::now().date_naive(),
        ahead_days: config.mysql.partitions_ahead_days,
        retention_days: config.mysql.retention_days,
        dry_run: false,
        lock_wait_timeout: std::time::Duration::from_secs(5),
        max_attempts: 5,
        named_lock_timeout: std::time::Duration::from_secs(300),
        actor: "system:oplog-migrate".into(),
        create_only: true,
    };
    let (_, report) = crate::partitions::maintain::run(&store, &options)
        .await
        .context("failed to create day partitions")?;
    for action in &report.done {
        println!("{action}");
    }
    if let Some((action, why)) = report.left.first() {
        anyhow::bail!("failed to {action}: {why}");
    }
    Ok(())
}

/// Formats an error with its causes, leaving out a cause whose text the message so far
/// already contains (many errors repeat their source's text).
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_without_scheme_gets_http() {
        assert_eq!(endpoint_url("127.0.0.1:50051"), "http://127.0.0.1:50051");
        assert_eq!(endpoint_url("https://oplog:443"), "https://oplog:443");
    }

    #[test]
    fn error_chain_skips_repeated_causes() {
        let inner = std::io::Error::other("connection refused");
        let error = anyhow::Error::new(inner)
            .context("database error: connection refused")
            .context("failed to connect to MySQL");
        assert_eq!(
            error_chain(&error),
            "failed to connect to MySQL: database error: connection refused"
        );
    }
}
