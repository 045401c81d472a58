//! Storage of syncs and runs. Everything here is portable SQL that runs on PostgreSQL
//! and SQLite; the contract tests run it on both. A run and the command that asks a
//! worker to execute it are always written in one transaction, and so are a sync's changes
//! and the `SyncChangedEvent` announcing them.

pub mod destinations;
pub mod diff_state;
mod events;
mod rows;
pub mod runs;
mod syncs;
mod ticks;
pub mod warehouse_state;

pub use events::sync_changed;
pub use ticks::{tick_message_id, DueSync};

use crate::error::RetlError;
use crate::run::RunRecord;
use crate::schedule::Schedule;
use backflow_platform::db::{Database, Transaction};
use backflow_platform::outbox::Outbox;
use backflow_proto::retl::v1::RunSyncCommand;
use rows::{run_of, RunRow, RUN_COLUMNS, RUN_INSERT_COLUMNS};

/// What handling a delivered dbt Cloud run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbtRunHandled {
    /// This message id was handled before; nothing was written.
    Duplicate,
    /// Runs queued now (empty if no unpaused sync is bound, or all had this cause).
    Queued(Vec<RunRecord>),
}

#[derive(Clone, Debug)]
pub struct SyncStore {
    db: Database,
    outbox: Outbox,
}

impl SyncStore {
    pub fn new(db: Database, outbox: Outbox) -> Self {
        Self { db, outbox }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Queues a manual run and its command, in one transaction: refused while the sync
    /// is paused, except for a dry run (which sends nothing).
    pub async fn queue_manual_run(&self, run: &RunRecord) -> Result<(), RetlError> {
        let mut tx = self.db.begin().await?;
        let paused: Option<(i32,)> =
            sqlx::query_as("SELECT paused FROM retl_syncs WHERE workspace_id = $1 AND id = $2")
                .bind(&run.workspace_id)
                .bind(&run.sync_id)
                .fetch_optional(&mut *tx)
                .await?;
        match paused {
            None => return Err(RetlError::NotFound(run.sync_id.clone())),
            Some((0,)) => {}
            Some(_) if run.exec.dry_run => {}
            Some(_) => {
                return Err(RetlError::FailedPrecondition(format!(
                    "sync {} is paused; resume it before triggering a run",
                    run.sync_id
                )))
            }
        }
        self.queue_run(&mut tx, run, None).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    /// Handles one delivery of a successful dbt Cloud run: claims `message_id` in the
    /// inbox of `consumer`, then queues a run (and its command) for every unpaused sync
    /// of the workspace bound to that account and job, all in one transaction.
    pub async fn queue_dbt_runs(
        &self,
        consumer: &str,
        message_id: &str,
        workspace_id: &str,
        account_id: i64,
        job_id: i64,
        cause_id: &str,
    ) -> Result<DbtRunHandled, RetlError> {
        let mut tx = self.db.begin().await?;
        if !backflow_platform::inbox::claim(&mut tx, consumer, message_id).await? {
            return Ok(DbtRunHandled::Duplicate);
        }
        let sync_ids: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM retl_syncs WHERE workspace_id = $1 AND dbt_account_id = $2 AND dbt_job_id = $3 \
             AND schedule_kind = $4 AND paused = 0 ORDER BY id",
        )
        .bind(workspace_id)
        .bind(account_id)
        .bind(job_id)
        .bind(Schedule::AfterDbtCloudJob { account_id, job_id }.kind())
        .fetch_all(&mut *tx)
        .await?;
        let now = backflow_platform::now_unix_ms();
        let mut queued = Vec::new();
        for (sync_id,) in sync_ids {
            let run = RunRecord::queued(
                workspace_id,
                &sync_id,
                backflow_proto::retl::v1::RunTrigger::DbtCloudJob,
                cause_id.to_string(),
                now,
            );
            if self.queue_run(&mut tx, &run, None).await? {
                queued.push(run);
            }
        }
        tx.commit().await?;
        if !queued.is_empty() {
            self.outbox.committed();
        }
        Ok(DbtRunHandled::Queued(queued))
    }

    /// Inserts the run unless one with the same (sync, cause) exists, and enqueues
    /// `cmd.retl.run_sync.<sync>` for it (with `message_id` as its `Nats-Msg-Id` when
    /// given, else a fresh one). Returns whether it was inserted.
    pub(crate) async fn queue_run(
        &self,
        tx: &mut Transaction<'_>,
        run: &RunRecord,
        message_id: Option<&str>,
    ) -> Result<bool, RetlError> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO retl_runs ({RUN_INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (sync_id, cause_id) DO NOTHING"
        ))
        .bind(&run.id)
        .bind(&run.workspace_id)
        .bind(&run.sync_id)
        .bind(run.trigger as i32)
        .bind(run.status as i32)
        .bind(&run.cause_id)
        .bind(run.queued_at_ms)
        .bind(run.finished_at_ms)
        .bind(&run.error)
        .bind(i32::from(run.exec.dry_run))
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(false);
        }
        let command = RunSyncCommand {
            workspace_id: run.workspace_id.clone(),
            sync_id: run.sync_id.clone(),
            run_id: run.id.clone(),
        };
        let subject = backflow_proto::subjects::RUN_SYNC.for_id(&run.sync_id);
        match message_id {
            Some(id) => {
                self.outbox
                    .enqueue_with_id(tx, id, &subject, &command)
                    .await?
            }
            None => {
                self.outbox.enqueue(tx, &subject, &command).await?;
            }
        }
        Ok(true)
    }

    /// Runs of one sync (or of the whole workspace if `sync_id` is empty), newest first.
    pub async fn list_runs(
        &self,
        workspace_id: &str,
        sync_id: &str,
        limit: i64,
    ) -> Result<Vec<RunRecord>, RetlError> {
        let rows: Vec<RunRow> = if sync_id.is_empty() {
            sqlx::query_as(&format!(
                "SELECT {RUN_COLUMNS} FROM retl_runs WHERE workspace_id = $1 \
                 ORDER BY queued_at_ms DESC, id DESC LIMIT $2"
            ))
            .bind(workspace_id)
            .bind(limit)
            .fetch_all(self.db.pool())
            .await?
        } else {
            sqlx::query_as(&format!(
                "SELECT {RUN_COLUMNS} FROM retl_runs WHERE workspace_id = $1 AND sync_id = $2 \
                 ORDER BY queued_at_ms DESC, id DESC LIMIT $3"
            ))
            .bind(workspace_id)
            .bind(sync_id)
            .bind(limit)
            .fetch_all(self.db.pool())
            .await?
        };
        rows.into_iter().map(run_of).collect()
    }
}
