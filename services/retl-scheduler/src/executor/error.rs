//! Why a run failed, in words a user can act on. Each variant says whether retrying
//! later may help (the catalog or credentials unreachable); the pipeline records the
//! message on the run as its error. [`ExecError::is_outage`] tells an outage of a part
//! the run depends on (its store's database, NATS, the warehouse's connection) from a
//! failure of the run itself: an outage hands the run back to resume, it does not fail.

use crate::destinations::DestinationError;
use crate::diff::DiffError;
use crate::error::RetlError;
use crate::executor::mapping::MapError;
use crate::store::diff_state::StateStoreError;
use backflow_warehouse::WarehouseError;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("catalog: {message}")]
    Catalog { message: String, transient: bool },
    #[error("credentials: {0}")]
    Credentials(#[from] backflow_platform::credentials_client::CredentialsClientError),
    #[error("warehouse: {0}")]
    Warehouse(#[from] WarehouseError),
    #[error("diff: {0}")]
    Diff(#[from] DiffError),
    #[error("field mapping: {0}")]
    Mapping(#[from] MapError),
    #[error("{0}")]
    State(#[from] StateStoreError),
    #[error("{0}")]
    Destination(#[from] DestinationError),
    /// The destination's endpoint answered 410 Gone: the run stopped sending, and
    /// `outcome` says what became of the syncs using it ([`crate::executor::endpoint_gone`]).
    #[error("destination {destination_id} answered 410 gone at {endpoint} ({message}): the run stopped sending and committed nothing; {outcome}")]
    EndpointGone {
        destination_id: String,
        endpoint: String,
        message: String,
        outcome: String,
    },
    #[error("{0}")]
    Store(#[from] RetlError),
    #[error("spilling the extract to disk: {0}")]
    Spill(#[from] std::io::Error),
    #[error("the sync is not usable: {0}")]
    Sync(String),
    #[error("cancelled")]
    Cancelled,
    #[error("the run's lease was lost; another executor resumes it")]
    LeaseLost,
}

/// Whether a database error is the database being away (connection lost, server
/// shutting down or starting up), not a refusal of the statement.
pub fn is_database_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL classes 08 (connection exception) and 57 (operator intervention:
        // admin/crash shutdown, cannot connect now)
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57")),
        _ => false,
    }
}

impl ExecError {
    /// The run stopped because something it depends on is away for now (its store's
    /// database, NATS under the diff state, the warehouse's connection, the catalog or
    /// credentials unreachable); the same run resumed later may well succeed.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Catalog { transient, .. } => *transient,
            Self::Credentials(error) => error.is_transient(),
            Self::Warehouse(error) => match error {
                WarehouseError::Unreachable { .. } | WarehouseError::RateLimited { .. } => true,
                WarehouseError::QueryFailed {
                    code: Some(code), ..
                } => code.starts_with("08") || code.starts_with("57"),
                _ => false,
            },
            Self::State(StateStoreError::Nats { .. }) => true,
            Self::Store(RetlError::Storage(error)) => is_database_outage(error),
            Self::Store(RetlError::Unavailable(_)) => true,
            _ => false,
        }
    }
}

impl From<sqlx::Error> for ExecError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(RetlError::Storage(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_from_failures() {
        let lost = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(ExecError::from(lost).is_outage());
        assert!(ExecError::from(sqlx::Error::PoolTimedOut).is_outage());
        assert!(!ExecError::from(sqlx::Error::RowNotFound).is_outage());
        let nats = StateStoreError::Nats {
            operation: "put",
            message: "timed out".into(),
        };
        assert!(ExecError::State(nats).is_outage());
        let conflict = StateStoreError::Conflict {
            sync_id: "s".into(),
        };
        assert!(!ExecError::State(conflict).is_outage());
        let shutdown = WarehouseError::QueryFailed {
            code: Some("57P01".into()),
            message: "terminating connection due to administrator command".into(),
        };
        assert!(ExecError::Warehouse(shutdown).is_outage());
        let syntax = WarehouseError::QueryFailed {
            code: Some("42601".into()),
            message: "syntax error".into(),
        };
        assert!(!ExecError::Warehouse(syntax).is_outage());
        let unreachable = WarehouseError::Unreachable {
            endpoint: "db:5432".into(),
            detail: "connection refused".into(),
        };
        assert!(ExecError::Warehouse(unreachable).is_outage());
        assert!(!ExecError::Sync("no primary key".into()).is_outage());
        assert!(!ExecError::Cancelled.is_outage());
    }
}
