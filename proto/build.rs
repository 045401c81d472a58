//! Compiles `backflow/**/*.proto` with protox (pure Rust, no system `protoc`) and
//! writes the descriptor set used for gRPC reflection next to the generated code.

const PROTOS: &[&str] = &[
    "backflow/auth/v1/auth.proto",
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
    let mut compiler = protox::Compiler::new(["."])?;
    compiler.include_imports(true).open_files(PROTOS)?;
    let descriptors = compiler.file_descriptor_set();
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // Encoded by protox itself: prost_types would drop custom options such as
    // `(backflow.auth.v1.access)`, which the auth layer reads from this set.
    std::fs::write(
        out_dir.join("backflow_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
