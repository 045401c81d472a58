//! The sync and run operations behind the gRPC API: validation (against the Reverse ETL
//! model, through [`RetlModelLookup`]), then the store. Every operation is scoped to the
//! workspace it names. Destinations are [`DestinationAdmin`]'s.

use crate::destination_admin::DestinationAdmin;
use crate::destination_config::{NoSecrets, SecretResolver};
use crate::error::RetlError;
use crate::run::{self, RunRecord};
use crate::store::diff_state::DiffStateStore;
use crate::store::SyncStore;
use crate::sync::{self, model, require, NewSync, RetlModelLookup, SyncRecord, SyncUpdate};
use backflow_proto::retl::v1::RunTrigger;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Scheduler {
    store: SyncStore,
    models: Arc<dyn RetlModelLookup>,
    destinations: DestinationAdmin,
    diff_states: Option<DiffStateStore>,
}

impl Scheduler {
    /// A scheduler checking models with `models`; no secrets (destinations without a
    /// credential only) and no Backflow-side diff state to reset until given.
    pub fn new(store: SyncStore, models: Arc<dyn RetlModelLookup>) -> Self {
        Self {
            destinations: DestinationAdmin::new(store.clone(), Arc::new(NoSecrets)),
            store,
            models,
            diff_states: None,
        }
    }

    /// Resolves destination secrets with `secrets`.
    pub fn with_secrets(mut self, secrets: Arc<dyn SecretResolver>) -> Self {
        self.destinations = DestinationAdmin::new(self.store.clone(), secrets);
        self
    }

    /// Resets Backflow-side diff state in `states` (besides bumping the state epoch).
    pub fn with_diff_states(mut self, states: DiffStateStore) -> Self {
        self.diff_states = Some(states);
        self
    }

    pub fn store(&self) -> &SyncStore {
        &self.store
    }

    /// The catalog's Reverse ETL models (also what the dbt run consumer looks up).
    pub fn models(&self) -> Arc<dyn RetlModelLookup> {
        self.models.clone()
    }

    pub fn destinations(&self) -> &DestinationAdmin {
        &self.destinations
    }

    pub async fn create_sync(&self, new: NewSync) -> Result<SyncRecord, RetlError> {
        let mut record = sync::validate_new(
            new,
            backflow_platform::new_id(),
            backflow_platform::now_unix_ms(),
        )?;
        let shape = self
            .models
            .resolve(&record.workspace_id, &record.retl_model_id)
            .await?;
        model::check_against(&record.retl_model_id, &shape, &record.mappings)?;
        if record.diff_strategy == backflow_proto::retl::v1::DiffStrategy::Warehouse {
            if let Some(Err(why)) = &shape.warehouse_diff {
                return Err(RetlError::FailedPrecondition(format!(
                    "diff_strategy warehouse: {why}; set a backflow schema on the source or use diff strategy auto or backflow"
                )));
            }
        }
        record.primary_key = shape.primary_key;
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

    /// Applies a partial update; a changed mapping is checked against the model again
    /// (and the model's primary key refreshed). Returns the sync as it now is.
    pub async fn update_sync(
        &self,
        workspace_id: &str,
        sync_id: &str,
        update: SyncUpdate,
    ) -> Result<SyncRecord, RetlError> {
        let current = self.get_sync(workspace_id, sync_id).await?;
        let touches_mappings = update.touches_mappings();
        let Some(mut next) =
            sync::apply_update(&current, update, backflow_platform::now_unix_ms())?
        else {
            return Ok(current);
        };
        if touches_mappings {
            let shape = self
                .models
                .resolve(workspace_id, &current.retl_model_id)
                .await?;
            model::check_against(&current.retl_model_id, &shape, &next.mappings)?;
            next.primary_key = shape.primary_key;
        }
        if next.diff_strategy != current.diff_strategy
            && next.diff_strategy == backflow_proto::retl::v1::DiffStrategy::Warehouse
        {
            let shape = self
                .models
                .resolve(workspace_id, &current.retl_model_id)
                .await?;
            if let Some(Err(why)) = &shape.warehouse_diff {
                return Err(RetlError::FailedPrecondition(format!(
                    "diff_strategy warehouse: {why}; set a backflow schema on the source or use diff strategy auto or backflow"
                )));
            }
        }
        let schedule_changed = next.schedule != current.schedule;
        self.store
            .update_sync(&next, current.version, schedule_changed)
            .await?;
        if next.diff_strategy != current.diff_strategy {
            // runs commit a state stamped with the sync's epoch and void the other
            // strategy's on their first commit (`store::diff_state::load_at`)
            tracing::info!(%workspace_id, %sync_id, from = ?current.diff_strategy, to = ?next.diff_strategy,
                "diff strategy changed: if the state now lives elsewhere, the next run starts from an empty state and sends every row");
        }
        tracing::info!(%workspace_id, %sync_id, version = next.version, "sync updated");
        Ok(next)
    }

    /// Deletes a sync, keeping its run history; refused while a run is running.
    pub async fn delete_sync(&self, workspace_id: &str, sync_id: &str) -> Result<(), RetlError> {
        require("workspace_id", workspace_id)?;
        require("sync_id", sync_id)?;
        self.store.delete_sync(workspace_id, sync_id).await?;
        if let Some(states) = &self.diff_states {
            if let Err(error) = states.reset(sync_id).await {
                tracing::warn!(%sync_id, %error, "could not remove the deleted sync's diff state");
            }
        }
        tracing::info!(%workspace_id, %sync_id, "sync deleted");
        Ok(())
    }

    /// Forgets the committed diff state (the next run sends every row as added): the
    /// Backflow-side state is removed and the state epoch bumped, which voids a
    /// warehouse-side state table. Refused while a run is running or awaiting approval.
    pub async fn reset_state(
        &self,
        workspace_id: &str,
        sync_id: &str,
    ) -> Result<SyncRecord, RetlError> {
        require("workspace_id", workspace_id)?;
        require("sync_id", sync_id)?;
        self.store.check_idle(workspace_id, sync_id).await?;
        if let Some(states) = &self.diff_states {
            states.reset(sync_id).await.map_err(|error| {
                RetlError::Unavailable(format!("cannot reset the diff state: {error}"))
            })?;
        }
        let record = self.store.bump_state_epoch(workspace_id, sync_id).await?;
        self.store.forget_sync_state(sync_id).await?;
        tracing::info!(%workspace_id, %sync_id, state_epoch = record.state_epoch, "sync state reset");
        Ok(record)
    }

    /// Queues a dry run (extracts and diffs, sends and commits nothing); allowed while paused.
    pub async fn dry_run(&self, workspace_id: &str, sync_id: &str) -> Result<RunRecord, RetlError> {
        require("workspace_id", workspace_id)?;
        require("sync_id", sync_id)?;
        let mut run = RunRecord::queued(
            workspace_id,
            sync_id,
            RunTrigger::Manual,
            run::manual_cause(&backflow_platform::new_id()),
            backflow_platform::now_unix_ms(),
        );
        run.exec.dry_run = true;
        self.store.queue_manual_run(&run).await?;
        tracing::info!(%workspace_id, %sync_id, run_id = %run.id, "dry run queued");
        Ok(run)
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
        let runs = self
            .store
            .list_runs(workspace_id, sync_id, run::page_size(limit))
            .await?;
        // a deleted sync's runs stay listed; an unknown sync is not found
        if !sync_id.is_empty() && runs.is_empty() {
            self.get_sync(workspace_id, sync_id).await?;
        }
        Ok(runs)
    }
}
