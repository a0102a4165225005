//! `oplog query`: a client of the gRPC query API.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand, ValueEnum};
use comfy_table::{presets, Table};

use crate::event::timestamp_to_us;
use crate::proto::oplog_query_client::OplogQueryClient;
use crate::proto::{
    ActionType, GetEventRequest, GetTraceRequest, ListEventsRequest, OperationEvent,
    Result as ResultCode,
};

/// Arguments of `oplog query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// gRPC endpoint of `oplog serve` or `oplog all-in-one`.
    #[arg(
        long,
        env = "OPLOG_ENDPOINT",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    endpoint: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
    #[command(subcommand)]
    command: QueryCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    /// A readable table.
    Table,
    /// One event per line in the proto3 JSON mapping.
    Json,
}

#[derive(Debug, Subcommand)]
enum QueryCommand {
    /// List events matching every given filter, newest first.
    List(Box<ListArgs>),
    /// Show one event by id.
    Get {
        /// Event id.
        event_id: String,
    },
    /// Show every event of a trace, oldest first.
    Trace {
        /// W3C trace id, 32 lowercase hex digits.
        trace_id: String,
    },
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only events of the last DURATION, such as 30m, 24h or 7d.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", conflicts_with = "from")]
    since: Option<Duration>,
    /// Start of the range, inclusive, RFC 3339 such as 2026-12-01T00:00:00Z.
    #[arg(long, value_name = "TIME")]
    from: Option<DateTime<Utc>>,
    /// End of the range, exclusive, RFC 3339.
    #[arg(long, value_name = "TIME")]
    to: Option<DateTime<Utc>>,
    /// Actor id; repeat for any of several.
    #[arg(long = "actor", value_name = "ID")]
    actors: Vec<String>,
    /// Action type; repeat for any of several.
    #[arg(long = "action-type", value_enum, value_name = "TYPE")]
    action_types: Vec<ActionTypeArg>,
    /// Exact action such as order.refund; repeat for any of several.
    #[arg(long = "action", value_name = "ACTION")]
    actions: Vec<String>,
    /// Source service.
    #[arg(long)]
    service: Option<String>,
    /// Target type.
    #[arg(long)]
    target_type: Option<String>,
    /// Target id; needs --target-type.
    #[arg(long, requires = "target_type")]
    target_id: Option<String>,
    /// Outcome.
    #[arg(long, value_enum)]
    outcome: Option<OutcomeArg>,
    /// W3C trace id.
    #[arg(long)]
    trace_id: Option<String>,
    /// Tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Maximum events to print, fetched page by page.
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: usize,
    /// Events per request.
    #[arg(long, default_value_t = 100, value_name = "N")]
    page_size: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ActionTypeArg {
    Create,
    Read,
    Update,
    Delete,
    Login,
    Logout,
    Grant,
    Revoke,
    Export,
    Execute,
    Other,
}

impl From<ActionTypeArg> for ActionType {
    fn from(value: ActionTypeArg) -> Self {
        match value {
            ActionTypeArg::Create => ActionType::Create,
            ActionTypeArg::Read => ActionType::Read,
            ActionTypeArg::Update => ActionType::Update,
            ActionTypeArg::Delete => ActionType::Delete,
            ActionTypeArg::Login => ActionType::Login,
            ActionTypeArg::Logout => ActionType::Logout,
            ActionTypeArg::Grant => ActionType::Grant,
            ActionTypeArg::Revoke => ActionType::Revoke,
            ActionTypeArg::Export => ActionType::Export,
            ActionTypeArg::Execute => ActionType::Execute,
            ActionTypeArg::Other => ActionType::Other,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutcomeArg {
    Success,
    Failure,
    Denied,
}

impl From<OutcomeArg> for ResultCode {
    fn from(value: OutcomeArg) -> Self {
        match value {
            OutcomeArg::Success => ResultCode::Success,
            OutcomeArg::Failure => ResultCode::Failure,
            OutcomeArg::Denied => ResultCode::Denied,
        }
    }
}

impl QueryArgs {
    /// Runs the query and prints the events.
    pub async fn run(self) -> anyhow::Result<()> {
        let mut client = OplogQueryClient::connect(super::endpoint_url(&self.endpoint))
            .await
            .with_context(|| {
                format!(
                    "failed to connect to {}; is `oplog` running there?",
                    self.endpoint
                )
            })?;
        let events = match self.command {
            QueryCommand::List(args) => list(&mut client, *args).await?,
            QueryCommand::Get { event_id } => {
                let response = client.get_event(GetEventRequest { event_id }).await?;
                response.into_inner().event.into_iter().collect()
            }
            QueryCommand::Trace { trace_id } => {
                let response = client
                    .get_trace(GetTraceRequest { trace_id })
                    .await?
                    .into_inner();
                if response.truncated {
                    eprintln!("the trace has more events than the server returns");
                }
                response.events
            }
        };
        let mut out = std::io::stdout().lock();
        match self.output {
            Output::Json => {
                for event in &events {
                    serde_json::to_writer(&mut out, event)?;
                    writeln!(out)?;
                }
            }
            Output::Table => writeln!(out, "{}", table(&events))?,
        }
        Ok(())
    }
}

async fn list(
    client: &mut OplogQueryClient<tonic::transport::Channel>,
    args: ListArgs,
) -> anyhow::Result<Vec<OperationEvent>> {
    let from = args
        .from
        .or_else(|| args.since.map(|since| Utc::now() - since))
        .map(to_timestamp);
    let mut request = ListEventsRequest {
        from,
        to: args.to.map(to_timestamp),
        actor_ids: args.actors,
        action_types: args
            .action_types
            .into_iter()
            .map(|t| ActionType::from(t) as i32)
            .collect(),
        actions: args.actions,
        service: args.service.unwrap_or_default(),
        target_type: args.target_type.unwrap_or_default(),
        target_id: args.target_id.unwrap_or_default(),
        outcome: args
            .outcome
            .map(|o| ResultCode::from(o) as i32)
            .unwrap_or_default(),
        trace_id: args.trace_id.unwrap_or_default(),
        tenant: args.tenant.unwrap_or_default(),
        page_size: args.page_size,
        page_token: String::new(),
    };
    let mut events = Vec::new();
    while events.len() < args.limit {
        let page = client.list_events(request.clone()).await?.into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    events.truncate(args.limit);
    Ok(events)
}

fn to_timestamp(time: DateTime<Utc>) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

fn table(events: &[OperationEvent]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header([
        "TIME (UTC)",
        "SERVICE",
        "ACTOR",
        "ACTION",
        "TYPE",
        "TARGET",
        "RESULT",
    ]);
    for event in events {
        let time = event
            .occurred_at
            .as_ref()
            .and_then(|ts| timestamp_to_us("occurred_at", ts).ok())
            .map(|us| {
                crate::event::datetime_from_us(us).to_rfc3339_opts(SecondsFormat::Micros, true)
            })
            .unwrap_or_default();
        let actor = event
            .actor
            .as_ref()
            .map(|a| a.id.as_str())
            .unwrap_or_default();
        let target = match event.target.as_ref() {
            Some(t) if !t.r#type.is_empty() || !t.id.is_empty() => format!("{}/{}", t.r#type, t.id),
            _ => "-".to_owned(),
        };
        let action_type = ActionType::try_from(event.action_type)
            .map(|t| {
                t.as_str_name()
                    .trim_start_matches("ACTION_TYPE_")
                    .to_lowercase()
            })
            .unwrap_or_default();
        let result = event
            .outcome
            .as_ref()
            .and_then(|o| ResultCode::try_from(o.result).ok())
            .map(|r| r.as_str_name().trim_start_matches("RESULT_").to_lowercase())
            .unwrap_or_default();
        table.add_row([
            time,
            event.service.clone(),
            actor.to_owned(),
            event.action.clone(),
            action_type,
            target,
            result,
        ]);
    }
    table
}
