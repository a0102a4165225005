//! oplog: an operation-log (audit trail) pipeline.
//!
//! Services publish [`proto::OperationEvent`]s to Kafka; the [`consumer`] stores them in
//! MySQL in batches together with the consumed offsets; the [`query`] service serves
//! them over gRPC. With nothing configured, [`server::run_all_in_one`] runs the whole
//! thing on SQLite.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod consumer;
pub mod event;
pub mod health;
pub mod import;
pub mod ingest;
pub mod kafka;
pub mod partitions;
pub mod proto;
pub mod query;
pub mod server;
pub mod store;
pub mod telemetry;
