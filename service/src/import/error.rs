//! Errors of the import readers: [`ImportError`] stops a file, [`MapError`] rejects one
//! record and the import goes on.

use std::{io, path::PathBuf};

/// A failure that ends reading a file: it cannot be opened, or its bytes cannot be read
/// or decompressed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be opened.
    #[error("failed to open {}: {source}; check the path and its permissions", path.display())]
    Open {
        /// Path as given.
        path: PathBuf,
        /// Error from the operating system.
        source: io::Error,
    },
    /// Reading or decompressing failed part way; records before `line` were returned.
    #[error("failed to read {name} at line {line}: {source}; if it is gzip-compressed, check that the file is complete")]
    Read {
        /// File path, or another name of the input such as `<stdin>`.
        name: String,
        /// Line being read when the error happened (1-based).
        line: u64,
        /// Error from the reader or the gzip decoder.
        source: io::Error,
    },
}

/// Failure to map one record to an [`OperationEvent`](crate::proto::OperationEvent).
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The line is not JSON text.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The record is JSON but does not have the shape of the format it was read as.
    #[error("invalid {format} record: {source}")]
    Shape {
        /// Format the record was read as, such as `CloudTrail`.
        format: &'static str,
        /// Deserialization error naming the field and its position.
        source: serde_json::Error,
    },
    /// Auto-detection found no known format.
    #[error("unrecognized record: expected a Kubernetes audit event, a CloudTrail record or an oplog event")]
    Unrecognized,
    /// A field the mapping needs is absent or empty.
    #[error("invalid record: missing {field}")]
    Missing {
        /// Source field (or alternatives) in the input format, such as `auditID`.
        field: &'static str,
    },
    /// A field is longer than the event schema allows, and cutting it would change its
    /// meaning (it is an id, not free text).
    #[error("invalid {field}: {len} bytes is over the limit of {max} bytes; such a record cannot be stored")]
    TooLong {
        /// Source field in the input format.
        field: &'static str,
        /// Length in bytes of UTF-8.
        len: usize,
        /// Limit in bytes of UTF-8.
        max: usize,
    },
    /// A field has a value the mapping cannot use.
    #[error("invalid {field} {value:?}: {reason}")]
    Value {
        /// Source field in the input format.
        field: &'static str,
        /// The value, cut to a readable length.
        value: String,
        /// Description of the problem and of the expected value.
        reason: String,
    },
    /// A line is longer than the reader accepts; the reader skipped it.
    #[error("invalid line: longer than {max} bytes; write one record per line")]
    LineTooLong {
        /// Limit in bytes.
        max: usize,
    },
    /// A CloudTrail `{"Records":[...]}` document ends before its array is closed; the
    /// rest of the document is skipped.
    #[error(
        "invalid CloudTrail document: the Records array is not closed; the file may be truncated"
    )]
    UnclosedRecords,
}

impl MapError {
    /// Builds [`MapError::Value`], cutting `value` so that a huge field does not flood the
    /// message.
    pub(crate) fn value(field: &'static str, value: &str, reason: impl Into<String>) -> Self {
        const SHOWN: usize = 120;
        MapError::Value {
            field,
            value: super::fields::truncate(value, SHOWN),
            reason: reason.into(),
        }
    }
}
