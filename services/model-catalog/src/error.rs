//! Errors of the model-catalog service; mapped to gRPC status codes once, in `grpc.rs`.

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Start(#[from] backflow_platform::service::StartError),
    #[error("model_catalog.grpc_listen: {0}")]
    Grpc(#[from] backflow_platform::grpc::GrpcError),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} named {name:?} already exists in this workspace")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub fn not_found(kind: &'static str, id: &str) -> CatalogError {
    CatalogError::NotFound {
        kind,
        id: id.to_string(),
    }
}
