//! Storage of syncs and runs. Everything here is portable SQL that runs on PostgreSQL
//! and SQLite; the contract tests run it on both. A run and the command that asks a
//! worker to execute it are always written in one transaction, and so are a sync's changes
//! and the `SyncChangedEvent` announcing them.

pub mod destinations;
pub mod diff_state;
mod events;
pub mod ledger;
mod rows;
pub mod runs;
mod syncs;
mod ticks;
pub mod warehouse_state;

pub use events::sync_changed;
pub use ticks::{tick_message_id, DueSync, Fired};

use crate::error::RetlError;
use crate::run::RunRecord;
use crate::schedule::Schedule;
use crate::sync::SyncRecord;
use backflow_platform::db::{Database, Transaction};
use backflow_platform::outbox::Outbox;
use backflow_proto::retl::v1::RunSyncCommand;
use backflow_proto::retl::v1::{RunPhase, RunStatus, RunTrigger};
use rows::{run_of, sync_of, RunRow, SyncRow, RUN_COLUMNS, RUN_INSERT_COLUMNS, SYNC_COLUMNS};

/// What handling a delivered dbt run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbtRunHandled {
    /// This message id was handled before; nothing was written.
    Duplicate,
    /// Runs written now, queued or skipped (empty if no unpaused sync is concerned, or
    /// all had this cause already).
    Recorded(Vec<RunRecord>),
}

/// `Nats-Msg-Id` (and outbox id) of the command of a run a dbt run caused.
pub fn dbt_run_message_id(cause_id: &str, sync_id: &str) -> String {
    format!("run_sync:{cause_id}:{sync_id}")
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
        let paused: Option<(i32, String)> = sqlx::query_as(
            "SELECT paused, paused_reason FROM retl_syncs WHERE workspace_id = $1 AND id = $2",
        )
        .bind(&run.workspace_id)
        .bind(&run.sync_id)
        .fetch_optional(&mut *tx)
        .await?;
        match paused {
            None => return Err(RetlError::NotFound(run.sync_id.clone())),
            Some((0, _)) => {}
            Some(_) if run.exec.dry_run => {}
            Some((_, reason)) => {
                let why = if reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({reason})")
                };
                return Err(RetlError::FailedPrecondition(format!(
                    "sync {} is paused{why}; resume it before triggering a run",
                    run.sync_id
                )));
            }
        }
        self.queue_run(&mut tx, run, None).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    /// Whether `consumer` already handled `message_id` (to skip catalog look-ups early;
    /// the claim in [`Self::record_dbt_run`] is what makes handling once certain).
    pub async fn already_handled(
        &self,
        consumer: &str,
        message_id: &str,
    ) -> Result<bool, RetlError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT handled_at_ms FROM platform_inbox WHERE consumer = $1 AND message_id = $2",
        )
        .bind(consumer)
        .bind(message_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Unpaused syncs of the workspace with a schedule of `kind` (for a dbt Cloud job:
    /// bound to that account and job), by id.
    pub async fn dbt_bound_syncs(
        &self,
        workspace_id: &str,
        schedule: &Schedule,
    ) -> Result<Vec<SyncRecord>, RetlError> {
        let (account_id, job_id) = match schedule {
            Schedule::AfterDbtCloudJob { account_id, job_id } => (*account_id, *job_id),
            _ => (0, 0),
        };
        let rows: Vec<SyncRow> = sqlx::query_as(&format!(
            "SELECT {SYNC_COLUMNS} FROM retl_syncs WHERE workspace_id = $1 AND schedule_kind = $2 \
             AND dbt_account_id = $3 AND dbt_job_id = $4 AND paused = 0 ORDER BY id"
        ))
        .bind(workspace_id)
        .bind(schedule.kind())
        .bind(account_id)
        .bind(job_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(sync_of).collect()
    }

    /// Records what one delivered dbt run decided, in one transaction: claims
    /// `message_id` in the inbox of `consumer`, then per sync (still there and unpaused)
    /// a queued run and its command, or a skipped run with its reason. Runs are unique
    /// per (sync, cause), and a command's `Nats-Msg-Id` is derived from both, so a
    /// redelivery or a second replica makes nothing twice.
    pub async fn record_dbt_run(
        &self,
        consumer: &str,
        message_id: &str,
        workspace_id: &str,
        trigger: RunTrigger,
        cause_id: &str,
        decisions: &[(String, Option<String>)],
    ) -> Result<DbtRunHandled, RetlError> {
        let mut tx = self.db.begin().await?;
        if !backflow_platform::inbox::claim(&mut tx, consumer, message_id).await? {
            return Ok(DbtRunHandled::Duplicate);
        }
        let now = backflow_platform::now_unix_ms();
        let mut recorded = Vec::new();
        for (sync_id, skip_reason) in decisions {
            let paused: Option<(i32,)> =
                sqlx::query_as("SELECT paused FROM retl_syncs WHERE workspace_id = $1 AND id = $2")
                    .bind(workspace_id)
                    .bind(sync_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if paused != Some((0,)) {
                continue;
            }
            let mut run = RunRecord::queued(workspace_id, sync_id, trigger, cause_id.into(), now);
            if let Some(reason) = skip_reason {
                run.status = RunStatus::Skipped;
                run.finished_at_ms = now;
                run.error = reason.clone();
                run.exec.phase = RunPhase::Done;
            }
            let message = dbt_run_message_id(cause_id, sync_id);
            if self.queue_run(&mut tx, &run, Some(&message)).await? {
                recorded.push(run);
            }
        }
        tx.commit().await?;
        if recorded.iter().any(|run| run.status == RunStatus::Queued) {
            self.outbox.committed();
        }
        Ok(DbtRunHandled::Recorded(recorded))
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
        if run.status != RunStatus::Queued {
            // Recorded as already finished (skipped): nothing for a worker to do.
            sqlx::query("UPDATE retl_runs SET phase = $1 WHERE id = $2")
                .bind(run.exec.phase as i32)
                .bind(&run.id)
                .execute(&mut **tx)
                .await?;
            return Ok(true);
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
