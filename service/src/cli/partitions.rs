//! `oplog partitions maintain`: day partitions ahead and retention, for a CronJob or by
//! hand.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand};
use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

use super::args::MySqlArgs;
use crate::config::Config;
use crate::partitions::maintain::{self, Action, Options, RunOutcome};
use crate::store::MySqlStore;

/// Exit code of a run that did part of its plan.
const EXIT_PARTIAL: u8 = 2;

/// Subcommands of `oplog partitions`.
#[derive(Debug, Subcommand)]
pub enum PartitionsCommand {
    /// Create day partitions ahead and drop those past the retention. Exits 0 when the
    /// whole plan was carried out, 2 when part of it was left, 1 when nothing could be
    /// done.
    Maintain(MaintainArgs),
}

/// Arguments of `oplog partitions maintain`.
#[derive(Debug, Args)]
pub struct MaintainArgs {
    #[command(flatten)]
    mysql: MySqlArgs,
    /// Days after today (UTC) that must have a partition [config:
    /// mysql.partitions_ahead_days; default: 7].
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=3650))]
    ahead: Option<u32>,
    /// Days kept: partitions whose whole range is older are dropped; at least 1
    /// [config: mysql.retention_days; default: 365].
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
    retention: Option<u32>,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The day to plan for instead of today (UTC), as YYYY-MM-DD; for backfills and
    /// tests. A later day than today needs --dry-run, and drops never reach past the
    /// real date minus the retention either way.
    #[arg(long, value_name = "DATE")]
    today: Option<NaiveDate>,
    /// Identity running the maintenance, recorded in the audit event of each drop.
    #[arg(
        long,
        env = "OPLOG_MAINTENANCE_ACTOR",
        default_value = "system:oplog-maintenance"
    )]
    actor: String,
    /// Maximum wait for a metadata lock per attempt, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    lock_wait_timeout: u64,
    /// Attempts per statement before giving up.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    attempts: u32,
    /// Maximum wait for another run to release the maintenance lock, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    named_lock_timeout: u64,
    /// Write the run's metrics to FILE in the Prometheus text format, for the textfile
    /// collector of a node exporter.
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
}

impl PartitionsCommand {
    /// Runs the subcommand.
    pub async fn run(self, config: Config) -> anyhow::Result<ExitCode> {
        match self {
            PartitionsCommand::Maintain(args) => args.run(config).await,
        }
    }
}

impl MaintainArgs {
    async fn run(self, mut config: Config) -> anyhow::Result<ExitCode> {
        self.mysql.apply(&mut config);
        let options = Options {
            today: self.today.unwrap_or_else(|| Utc::now().date_naive()),
            ahead_days: self.ahead.unwrap_or(config.mysql.partitions_ahead_days),
            retention_days: self.retention.unwrap_or(config.mysql.retention_days),
            dry_run: self.dry_run,
            lock_wait_timeout: Duration::from_secs(self.lock_wait_timeout),
            max_attempts: self.attempts,
            named_lock_timeout: Duration::from_secs(self.named_lock_timeout),
            actor: self.actor.clone(),
            create_only: false,
        };
        let real_today = Utc::now().date_naive();
        anyhow::ensure!(
            options.today <= real_today || options.dry_run,
            "--today {} is after today ({real_today}); plan a future day only with --dry-run",
            options.today
        );
        anyhow::ensure!(
            options.retention_days >= 1,
            "mysql.retention_days is 0; set a retention of at least 1 day"
        );
        let url = crate::server::redact(&config.mysql.url);
        let store = MySqlStore::connect(&config.mysql.settings())
            .await
            .with_context(|| format!("failed to connect to MySQL at {url}"))?;
        let result = maintain::run(&store, &options).await;
        let (outcome, created, dropped) = match &result {
            Ok((plan, report)) => {
                print_plan(plan, &options);
                print_report(report, &options);
                let created = count(&report.done, |a| matches!(a, Action::Create { .. }));
                let dropped = count(&report.done, |a| matches!(a, Action::Drop { .. }));
                (report.outcome(), created, dropped)
            }
            Err(_) => (RunOutcome::Failure, 0, 0),
        };
        // A dry run changes nothing, so it leaves the last real run's metrics alone.
        if let (Some(path), false) = (&self.metrics_file, options.dry_run) {
            write_metrics(path, outcome, created, dropped)?;
        }
        result.context("partition maintenance failed")?;
        Ok(match outcome {
            RunOutcome::Success => ExitCode::SUCCESS,
            RunOutcome::Partial => ExitCode::from(EXIT_PARTIAL),
            RunOutcome::Failure => ExitCode::FAILURE,
        })
    }
}

fn count(actions: &[Action], predicate: impl Fn(&Action) -> bool) -> i64 {
    actions.iter().filter(|a| predicate(a)).count() as i64
}

fn print_plan(plan: &[Action], options: &Options) {
    let mode = if options.dry_run {
        " (dry run: nothing is changed)"
    } else {
        ""
    };
    println!(
        "plan for {} with {} days ahead and a retention of {} days{mode}:",
        options.today, options.ahead_days, options.retention_days
    );
    if plan.is_empty() {
        println!("  nothing to do");
    }
    for action in plan {
        println!("  {action}");
    }
}

fn print_report(report: &maintain::Report, options: &Options) {
    if options.dry_run {
        return;
    }
    for action in &report.done {
        println!("done: {action}");
    }
    for (action, why) in &report.left {
        println!("left: {action}: {why}");
    }
}

fn write_metrics(
    path: &PathBuf,
    outcome: RunOutcome,
    created: i64,
    dropped: i64,
) -> anyhow::Result<()> {
    let registry = Registry::new();
    let outcome_gauge = IntGaugeVec::new(
        Opts::new(
            "oplog_partitions_maintenance_outcome",
            "1 for the outcome of the last partition maintenance run.",
        ),
        &["outcome"],
    )?;
    for (name, value) in [
        ("success", RunOutcome::Success),
        ("partial", RunOutcome::Partial),
        ("failure", RunOutcome::Failure),
    ] {
        outcome_gauge
            .with_label_values(&[name])
            .set(i64::from(outcome == value));
    }
    let gauges = [
        (
            "oplog_partitions_created",
            "Day partitions created by the last run.",
            created,
        ),
        (
            "oplog_partitions_dropped",
            "Day partitions dropped by the last run.",
            dropped,
        ),
        (
            "oplog_partitions_maintenance_timestamp_seconds",
            "When the last partition maintenance run ended.",
            Utc::now().timestamp(),
        ),
    ];
    registry.register(Box::new(outcome_gauge))?;
    for (name, help, value) in gauges {
        let gauge = IntGauge::new(name, help)?;
        gauge.set(value);
        registry.register(Box::new(gauge))?;
    }
    let mut text = String::new();
    prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut text)?;
    // Written whole and renamed, so a collector never reads half a file.
    let partial = path.with_extension("tmp");
    std::fs::write(&partial, text)
        .with_context(|| format!("failed to write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}
