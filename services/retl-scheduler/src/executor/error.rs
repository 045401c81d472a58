//! Why a run failed, in words a user can act on. Each variant says whether retrying
//! later may help (the catalog or credentials unreachable); the pipeline records the
//! message on the run as its error.

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

impl From<sqlx::Error> for ExecError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(RetlError::Storage(error))
    }
}
