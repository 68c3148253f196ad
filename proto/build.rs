//! Compiles the `.proto` files with protox (pure Rust), so no system `protoc`
//! is needed, then generates prost messages and tonic services from the
//! resulting descriptor set.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "alluxio/common.proto",
        "alluxio/file_system_master.proto",
        "alluxio/block_master.proto",
        "alluxio/block_worker.proto",
        "alluxio/meta_master.proto",
        "alluxio/job_master.proto",
        "alluxio/journal.proto",
        "alluxio/raft.proto",
        "csi/csi.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Data payloads as `bytes::Bytes`: chunks are sliced, not copied.
        .bytes(".alluxio.grpc")
        .compile_fds(descriptors)?;
    Ok(())
}
