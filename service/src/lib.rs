//! oplog: an operation-log (audit trail) pipeline.
//!
//! Services publish [`proto::OperationEvent`]s to Kafka; the [`consumer`] stores them in
//! MySQL in batches together with the consumed offsets; the [`query`] service serves
//! them over gRPC. With nothing configured, [`server::run_all_in_one`] runs the whole
//! thing on SQLite.

pub mod proto;
pub mod event;
