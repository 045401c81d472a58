//! Storage of the catalog: warehouse sources, the project projection fed by git-sync
//! events, model versions per commit, and Reverse ETL models. Portable SQL only.

mod columns;
mod following;
mod models;
mod projects;
mod retl_models;
mod sources;
mod usage;

pub use columns::{DescribedColumn, DescriptionKey};
pub use projects::{Applied, ProjectRecord, ProjectStatus, RunOutcome};
pub use retl_models::{RetlHealth, RetlModelChange, RetlModelRecord};
pub use sources::{SourceRecord, SourceUsers};
pub use usage::UsageApplied;

use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;

#[derive(Clone, Debug)]
pub struct CatalogStore {
    db: Database,
    outbox: Outbox,
}

impl CatalogStore {
    pub fn new(db: Database, outbox: Outbox) -> Self {
        Self { db, outbox }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }
}
