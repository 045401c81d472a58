//! Errors of the Reverse ETL scheduler: request errors, mapped to gRPC statuses once in `grpc.rs` (through
//! platform's `request_error`), and start-up errors, which end `App::build`/`App::run`.

#[derive(Debug, thiserror::Error)]
pub enum RetlError {
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("sync {0} not found")]
    NotFound(String),
    #[error("destination {0} not found")]
    DestinationNotFound(String),
    #[error("run {0} not found")]
    RunNotFound(String),
    #[error("reverse etl model {0} not found in this workspace")]
    ModelNotFound(String),
    #[error("a sync named {0:?} already exists in this workspace")]
    AlreadyExists(String),
    #[error("a destination named {0:?} already exists in this workspace")]
    DestinationExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A service this one calls (catalog, credentials, NATS) is unreachable for now.
    #[error("{0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Why the service could not start or stopped serving (configuration, database, NATS,
/// the listener), kept apart from [`RetlError`], whose variants reach callers as statuses.
#[derive(Debug, thiserror::Error)]
pub enum RetlStartupError {
    #[error(transparent)]
    Start(#[from] backflow_platform::service::StartError),
    #[error("retl_scheduler.grpc_listen: {0}")]
    Grpc(#[from] backflow_platform::grpc::GrpcError),
    #[error("{0}")]
    Setup(String),
}
