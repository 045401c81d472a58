//! Errors of the model-catalog service: request errors, mapped to gRPC statuses once in `grpc.rs` (through
//! platform's `request_error`), and start-up errors, which end `App::build`/`App::run`.

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// A commit given by the caller that the catalog has no models of for the connection.
    #[error("commit {commit} not found in connection {connection_id}: the catalog has no models parsed at it (`backflow runs list --connection {connection_id}` shows the commits it synced)")]
    CommitNotFound {
        commit: String,
        connection_id: String,
    },
    #[error("{kind} named {name:?} already exists in this workspace")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Optimistic concurrency: the resource changed between read and write.
    #[error(
        "{kind} {id} changed meanwhile (expected version {expected}, found {found}); read it again"
    )]
    Conflict {
        kind: &'static str,
        id: String,
        expected: i64,
        found: i64,
    },
    /// Valid, but not now: a failed connection test, a source still in use.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A service the catalog depends on (credentials) did not answer; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The warehouse said no (see [`backflow_warehouse::WarehouseError`]).
    #[error(transparent)]
    Warehouse(#[from] backflow_warehouse::WarehouseError),
}

pub fn not_found(kind: &'static str, id: &str) -> CatalogError {
    CatalogError::NotFound {
        kind,
        id: id.to_string(),
    }
}

/// Why the service could not start or stopped serving (configuration, database, NATS,
/// the listener), kept apart from [`CatalogError`], whose variants reach callers as statuses.
#[derive(Debug, thiserror::Error)]
pub enum CatalogStartupError {
    #[error(transparent)]
    Start(#[from] backflow_platform::service::StartError),
    #[error("model_catalog.grpc_listen: {0}")]
    Grpc(#[from] backflow_platform::grpc::GrpcError),
    #[error("{0}")]
    Setup(String),
}
