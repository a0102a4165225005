//! `oplog import`: reads audit log files and sends their events to the Append API or to
//! Kafka.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::args::KafkaArgs;
use crate::config::Config;
use crate::event::EventRecord;
use crate::import::{self, Format, RecordOutcome};
use crate::kafka::EventProducer;
use crate::proto::oplog_ingest_client::OplogIngestClient;
use crate::proto::{AppendRequest, OperationEvent};

/// Arguments of `oplog import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files to import; gzip-compressed files are detected by content.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Input format; auto detects it per record.
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,
    /// gRPC endpoint of the Append API (`oplog all-in-one` or `oplog serve`).
    #[arg(
        long,
        env = "OPLOG_ENDPOINT",
        default_value = "http://127.0.0.1:50051",
        conflicts_with = "kafka"
    )]
    endpoint: String,
    /// Publish straight to the Kafka topic instead of calling the Append API.
    #[arg(long)]
    kafka: bool,
    #[command(flatten)]
    kafka_args: KafkaArgs,
    /// Events per Append request or per wait for Kafka acknowledgements.
    #[arg(long, default_value_t = 500, value_name = "EVENTS")]
    batch_size: usize,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Counts of one import.
#[derive(Debug, Default)]
struct Totals {
    imported: u64,
    skipped: u64,
    invalid: u64,
}

enum Destination {
    Append(OplogIngestClient<tonic::transport::Channel>),
    Kafka(EventProducer),
}

impl Destination {
    async fn send(&mut self, events: Vec<OperationEvent>) -> anyhow::Result<()> {
        match self {
            Destination::Append(client) => {
                client
                    .append(AppendRequest { events })
                    .await
                    .context("the Append API rejected a batch")?;
            }
            Destination::Kafka(producer) => producer
                .send(&events)
                .await
                .context("failed to publish a batch to Kafka")?,
        }
        Ok(())
    }
}

impl ImportArgs {
    /// Imports every file, reporting records that cannot be mapped with file and line.
    /// Fails at the end when any record was invalid, after importing all the others.
    pub async fn run(self, mut config: Config) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.batch_size > 0,
            "--batch-size is 0; set a positive number of events"
        );
        let mut destination = if self.kafka {
            self.kafka_args.apply(&mut config);
            let producer = EventProducer::new(
                &config.kafka.settings(),
                &config.kafka.topic,
                Duration::from_secs(60),
            )
            .context("failed to create the Kafka producer")?;
            Destination::Kafka(producer)
        } else {
            let client = OplogIngestClient::connect(super::endpoint_url(&self.endpoint))
                .await
                .with_context(|| {
                    format!(
                        "failed to connect to {}; is `oplog` running there?",
                        self.endpoint
                    )
                })?
                .max_encoding_message_size(config.grpc.max_message_bytes);
            Destination::Append(client)
        };
        let mut totals = Totals::default();
        for path in &self.files {
            self.import_file(path, &mut destination, &mut totals)
                .await?;
        }
        eprintln!(
            "imported {} events from {} files; {} records skipped, {} invalid",
            totals.imported,
            self.files.len(),
            totals.skipped,
            totals.invalid
        );
        anyhow::ensure!(
            totals.invalid == 0,
            "{} records could not be imported; each is listed above with its file and line",
            totals.invalid
        );
        Ok(())
    }

    async fn import_file(
        &self,
        path: &PathBuf,
        destination: &mut Destination,
        totals: &mut Totals,
    ) -> anyhow::Result<()> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let progress = self.progress_bar(size);
        let records = import::Records::new(
            progress.wrap_read(file),
            path.display().to_string(),
            self.format,
        )?;
        let mut batch = Vec::with_capacity(self.batch_size);
        for record in records {
            let record = record?;
            match record.outcome {
                RecordOutcome::Event(event) => match EventRecord::from_event(&event) {
                    Ok(_) => batch.push(*event),
                    Err(e) => {
                        totals.invalid += 1;
                        progress.suspend(|| eprintln!("{}:{}: {e}", path.display(), record.line));
                    }
                },
                RecordOutcome::Skipped(_) => totals.skipped += 1,
                RecordOutcome::Invalid(e) => {
                    totals.invalid += 1;
                    progress.suspend(|| eprintln!("{}:{}: {e}", path.display(), record.line));
                }
            }
            if batch.len() >= self.batch_size {
                totals.imported += batch.len() as u64;
                destination.send(std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            totals.imported += batch.len() as u64;
            destination.send(batch).await?;
        }
        progress.finish_and_clear();
        Ok(())
    }

    fn progress_bar(&self, size: u64) -> ProgressBar {
        // Small files finish before a bar would be readable.
        if self.quiet || size < 8 << 20 {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}",
            )
            .expect("the progress template is valid"),
        );
        bar
    }
}
