//! Errors of the git-sync service; mapped to gRPC status codes once, in `grpc.rs`.

use crate::settings::SettingsError;

#[derive(Debug, thiserror::Error)]
pub enum GitSyncError {
    #[error(transparent)]
    Start(#[from] backflow_platform::service::StartError),
    #[error("git_sync.grpc_listen: {0}")]
    Grpc(#[from] backflow_platform::grpc::GrpcError),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("invalid settings: {0}")]
    InvalidSettings(#[from] SettingsError),
    #[error("cannot reach the repository: {0}")]
    Access(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("a connection named {0:?} already exists in this workspace")]
    AlreadyExists(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("settings changed meanwhile: expected version {expected}, found {found}")]
    Conflict { expected: i64, found: i64 },
}
