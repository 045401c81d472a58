//! Errors of the credentials service; mapped to gRPC status codes once, in `grpc.rs`.

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error(transparent)]
    Start(#[from] backflow_platform::service::StartError),
    #[error("credentials.grpc_listen: {0}")]
    Grpc(#[from] backflow_platform::grpc::GrpcError),
    #[error("credentials.master_key_file: {path}: {message}")]
    MasterKey { path: String, message: String },
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
