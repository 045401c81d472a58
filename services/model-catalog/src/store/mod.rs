//! Storage of the catalog: warehouse sources, the project projection fed by git-sync
//! events, model versions per commit, and Reverse ETL models. Portable SQL only.

mod models;
mod projects;
mod retl_models;
mod sources;

pub use projects::{Applied, ProjectRecord, ProjectStatus, RunOutcome};
pub use retl_models::RetlModelRecord;
pub use sources::SourceRecord;

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
