//! Compiles the protobuf API into Rust types, gRPC stubs, serde impls following the
//! proto3 JSON mapping, and a descriptor set for server reflection.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts run single-threaded, so nothing reads the environment
    // concurrently.
    unsafe { env::set_var("PROTOC", protoc) };

    let proto_root = PathBuf::from("../proto");
    let protos = [
        proto_root.join("oplog/v1/event.proto"),
        proto_root.join("oplog/v1/service.proto"),
    ];
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("oplog_descriptor.bin");

    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptor_path)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_protos(&protos, &[proto_root])?;

    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .build(&[".oplog.v1"])?;

    println!("cargo:rerun-if-changed=../proto");
    // The migrations are embedded by `sqlx::migrate!`, which cannot see new files.
    println!("cargo:rerun-if-changed=../migrations");
    Ok(())
}
