//! Errors of the dbt Cloud listener: request errors, mapped to gRPC statuses once in `grpc.rs` (through
//! platform's `request_error`), and start-up errors, which end `App::build`/`App::run`.

use crate::connection_check::CheckFailure;

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
    /// dbt Cloud refused the token or account, or could not be reached, or answered
    /// something that is not its API: what is wrong and what to do.
    #[error("{0}")]
    DbtCloud(CheckFailure),
    /// Something outside the request must change first (no public url configured, no
    /// connection for the account a sync waits on).
    #[error("{0}")]
    Precondition(String),
    /// A secret this call needs cannot be read or written in the credentials service.
    #[error("{message}")]
    Credentials { message: String, transient: bool },
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
