//! Errors of the dbt Cloud listener: request errors, mapped to gRPC statuses once in `grpc.rs` (through
//! platform's `request_error`), and start-up errors, which end `App::build`/`App::run`.

#[derive(Debug, thiserror::Error)]
pub enum DbtCloudError {
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("connection {0} not found")]
    NotFound(String),
    #[error("a connection named {0:?} already exists in this workspace")]
    AlreadyExists(String),
}

/// Why the service could not start or stopped serving (configuration, database, NATS,
/// the listener), kept apart from [`DbtCloudError`], whose variants reach callers as statuses.
#[derive(Debug, thiserror::Error)]
pub enum DbtCloudStartupError {
    #[error(transparent)]
    Start(#[from] backflow_platform::service::StartError),
    #[error("dbt_cloud_listener.grpc_listen: {0}")]
    Grpc(#[from] backflow_platform::grpc::GrpcError),
    #[error("{0}")]
    Setup(String),
}
