//! Readers for `oplog import`: turn audit logs of other systems into [`OperationEvent`]s.
//!
//! [`open`] streams a file, plain or gzip-compressed (detected from its magic bytes),
//! and yields one [`Record`] per input record: an event, a record skipped on purpose
//! (such as a non-final Kubernetes stage) or an invalid record with the reason. A bad
//! record never stops the import; only an I/O error does.
//!
//! Supported inputs, mixed freely under [`Format::Auto`]:
//! - Kubernetes API server audit events, one JSON object per line, raw or wrapped in the
//!   GKE (Cloud Audit Logs) or AKS (diagnostic record) envelope;
//! - AWS CloudTrail, as S3 log files `{"Records":[...]}` or one record per line;
//! - oplog's own events in the proto3 JSON mapping, one per line.
//!
//! The README section "Importing audit logs" lists which source field becomes which
//! event field.

mod cloudtrail;
mod detect;
mod document;
mod error;
mod fields;
mod input;
mod kubernetes;
mod oplog_json;
mod reader;

use std::{fs::File, path::Path};

pub use error::{ImportError, MapError};
pub use reader::Records;

use crate::proto::OperationEvent;

/// Input format of `oplog import`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Detect the format of each record, so one file may mix formats.
    #[default]
    Auto,
    /// Kubernetes API server audit events, raw or in the GKE or AKS envelope.
    #[value(alias = "k8s")]
    Kubernetes,
    /// AWS CloudTrail: S3 log files `{"Records":[...]}` or one record per line.
    #[value(name = "cloudtrail")]
    CloudTrail,
    /// oplog events, one per line in the proto3 JSON mapping.
    Oplog,
}

/// One record read from the input and what became of it.
#[derive(Debug)]
pub struct Record {
    /// Line where the record starts (1-based), to point a user at the input.
    pub line: u64,
    /// The mapped event, or why there is none.
    pub outcome: RecordOutcome,
}

/// Outcome of one input record.
#[derive(Debug)]
pub enum RecordOutcome {
    /// The record maps to this event, which fits the limits of the event schema.
    Event(Box<OperationEvent>),
    /// The record is not imported on purpose, for the reason given, such as a
    /// Kubernetes stage that is not final or a CloudTrail digest file.
    Skipped(&'static str),
    /// The record cannot be mapped.
    Invalid(MapError),
}

/// Opens `path` and returns an iterator over its records. Gzip compression is detected
/// from the content, not the file name.
///
/// # Errors
///
/// Returns [`ImportError::Open`] when the file cannot be opened and
/// [`ImportError::Read`] when its first bytes cannot be read or decompressed.
pub fn open(path: &Path, format: Format) -> Result<Records, ImportError> {
    let file = File::open(path).map_err(|source| ImportError::Open {
        path: path.to_owned(),
        source,
    })?;
    Records::new(file, path.display().to_string(), format)
}
