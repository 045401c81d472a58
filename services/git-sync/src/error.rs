//! Errors of the git-sync service: request errors, mapped to gRPC statuses once in `grpc.rs` (through
//! platform's `request_error`), and start-up errors, which end `App::build`/`App::run`.

use crate::settings::SettingsError;

#[derive(Debug, thiserror::Error)]
pub enum GitSyncError {
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
    #[error("warehouse source {source_id} does not exist in workspace {workspace_id}: create it first (backflow sources create) and name its id")]
    UnknownSource {
        workspace_id: String,
        source_id: String,
    },
    #[error("settings changed meanwhile: expected version {expected}, found {found}")]
    Conflict { expected: i64, found: i64 },
}

/// Why the service could not start or stopped serving (configuration, database, NATS,
/// the listener), kept apart from [`GitSyncError`], whose variants reach callers as statuses.
#[derive(Debug, thiserror::Error)]
pub enum GitSyncStartupError {
    #[error(transparent)]
    Start(#[from] backflow_platform::service::StartError),
    #[error("git_sync.grpc_listen: {0}")]
    Grpc(#[from] backflow_platform::grpc::GrpcError),
    #[error("{0}")]
    Setup(String),
}
