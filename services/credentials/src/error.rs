//! Errors of the credentials service: request errors, mapped to gRPC statuses once in `grpc.rs` (through
//! platform's `request_error`), and start-up errors, which end `App::build`/`App::run`.

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("envelope: {0}")]
    Envelope(#[from] crate::envelope::EnvelopeError),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("a secret named {0:?} already exists in this workspace")]
    AlreadyExists(String),
    #[error("resolving secrets requires a service token")]
    Unauthenticated,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    GitHubApp(#[from] crate::github_app::GitHubAppError),
}

impl From<crate::kinds::InvalidSecret> for CredentialsError {
    fn from(error: crate::kinds::InvalidSecret) -> Self {
        Self::InvalidArgument(error.0)
    }
}

/// Why the service could not start or stopped serving (configuration, database, NATS,
/// the listener), kept apart from [`CredentialsError`], whose variants reach callers as statuses.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsStartupError {
    #[error(transparent)]
    Start(#[from] backflow_platform::service::StartError),
    #[error("credentials.grpc_listen: {0}")]
    Grpc(#[from] backflow_platform::grpc::GrpcError),
    #[error("credentials.master_key_file: {path}: {message}")]
    MasterKey { path: String, message: String },
    #[error("{0}")]
    Setup(String),
}
