//! Compiles `backflow/**/*.proto` with protox (pure Rust, no system `protoc`) and
//! writes the descriptor set used for gRPC reflection next to the generated code.

use prost::Message;

const PROTOS: &[&str] = &[
    "backflow/credentials/v1/credentials.proto",
    "backflow/gitsync/v1/gitsync.proto",
    "backflow/catalog/v1/catalog.proto",
    "backflow/dbtcloud/v1/dbtcloud.proto",
    "backflow/retl/v1/retl.proto",
    "backflow/ops/v1/ops.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("backflow_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
