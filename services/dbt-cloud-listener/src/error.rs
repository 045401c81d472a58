//! Errors of the dbt Cloud listener; mapped to gRPC status codes once, in `grpc.rs`.

#[derive(Debug, thiserror::Error)]
pub enum DbtCloudError {
    #[error(transparent)]
    Start(#[from] backflow_platform::service::StartError),
    #[error("dbt_cloud_listener.grpc_listen: {0}")]
    Grpc(#[from] backflow_platform::grpc::GrpcError),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("connection {0} not found")]
    NotFound(String),
    #[error("a connection named {0:?} already exists in this workspace")]
    AlreadyExists(String),
}
