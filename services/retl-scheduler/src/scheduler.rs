//! The sync and run operations behind the gRPC API: validation, then the store.
//! Every operation is scoped to the workspace it names.

use crate::error::RetlError;
use crate::run::{self, RunRecord};
use crate::store::SyncStore;
use crate::sync::{self, require, NewSync, SyncRecord};
use backflow_proto::retl::v1::RunTrigger;

#[derive(Clone, Debug)]
pub struct Scheduler {
    store: SyncStore,
}

impl Scheduler {
    pub fn new(store: SyncStore) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &SyncStore {
        &self.store
    }

    pub async fn create_sync(&self, new: NewSync) -> Result<SyncRecord, RetlError> {
        let record = sync::validate_new(
            new,
            backflow_platform::new_id(),
            backflow_platform::now_unix_ms(),
        )?;
        self.store.create_sync(&record).await?;
        tracing::info!(
            workspace_id = %record.workspace_id,
            sync_id = %record.id,
            schedule = record.schedule.kind(),
            "sync created"
        );
        Ok(record)
    }

    pub async fn get_sync(
        &self,
        workspace_id: &str,
        sync_id: &str,
    ) -> Result<SyncRecord, RetlError> {
        require("workspace_id", workspace_id)?;
        require("sync_id", sync_id)?;
        self.store
            .get_sync(workspace_id, sync_id)
            .await?
            .ok_or_else(|| RetlError::NotFound(sync_id.to_string()))
    }

    pub async fn list_syncs(&self, workspace_id: &str) -> Result<Vec<SyncRecord>, RetlError> {
        require("workspace_id", workspace_id)?;
        self.store.list_syncs(workspace_id).await
    }

    /// Pauses (or resumes) a sync; doing it twice is harmless.
    pub async fn set_paused(
        &self,
        workspace_id: &str,
        sync_id: &str,
        paused: bool,
    ) -> Result<SyncRecord, RetlError> {
        require("workspace_id", workspace_id)?;
        require("sync_id", sync_id)?;
        if !self.store.set_paused(workspace_id, sync_id, paused).await? {
            return Err(RetlError::NotFound(sync_id.to_string()));
        }
        tracing::info!(%workspace_id, %sync_id, paused, "sync pause state changed");
        self.get_sync(workspace_id, sync_id).await
    }

    /// Queues a manual run and its command; refused while the sync is paused.
    pub async fn trigger(&self, workspace_id: &str, sync_id: &str) -> Result<RunRecord, RetlError> {
        require("workspace_id", workspace_id)?;
        require("sync_id", sync_id)?;
        let run = RunRecord::queued(
            workspace_id,
            sync_id,
            RunTrigger::Manual,
            run::manual_cause(&backflow_platform::new_id()),
            backflow_platform::now_unix_ms(),
        );
        self.store.queue_manual_run(&run).await?;
        tracing::info!(%workspace_id, %sync_id, run_id = %run.id, "manual run queued");
        Ok(run)
    }

    /// Runs newest first; an empty `sync_id` lists the whole workspace.
    pub async fn list_runs(
        &self,
        workspace_id: &str,
        sync_id: &str,
        limit: i32,
    ) -> Result<Vec<RunRecord>, RetlError> {
        require("workspace_id", workspace_id)?;
        if !sync_id.is_empty() {
            self.get_sync(workspace_id, sync_id).await?;
        }
        self.store
            .list_runs(workspace_id, sync_id, run::page_size(limit))
            .await
    }
}
