//! Types and gRPC stubs generated from `proto/oplog/v1`.

#![allow(missing_docs, clippy::all)]

tonic::include_proto!("oplog.v1");
include!(concat!(env!("OUT_DIR"), "/oplog.v1.serde.rs"));

/// Encoded descriptor set of the oplog API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("oplog_descriptor");
