//! Run execution state: claiming a queued run (status RUNNING and the sync's lease in
//! one transaction, so two executors never run one sync at once), progress, the finish
//! (status, counts, record errors, `RunFinishedEvent` through the outbox and the lease's
//! release, in one transaction), approvals, cancellation, and reaping a run whose
//! executor died (back to QUEUED with its command, `resumed` + 1, so it resumes from its
//! checkpoint). Portable SQL, PostgreSQL and SQLite.
//!
//! The lease is keyed by the sync id (kind [`LEASE_KIND`]): a lease per running run that
//! is also the "one run per sync" lock.

use super::rows::{run_of, RunRow, RUN_COLUMNS};
use super::SyncStore;
use crate::error::RetlError;
use crate::run::{is_terminal, status_name, RunCounts, RunRecord, Sample};
use backflow_platform::db::Transaction;
use backflow_platform::lease::Leases;
use backflow_proto::retl::v1::{self as pb, RunPhase, RunStatus};

/// Lease kind of running Reverse ETL runs (id = sync id).
pub const LEASE_KIND: &str = "retl.run";
/// Record errors stored per run at most (all are counted).
pub const MAX_STORED_RECORD_ERRORS: usize = 10_000;

/// What claiming a queued run found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Now running, under this executor's lease.
    Claimed(Box<RunRecord>),
    /// Not queued any more (finished, cancelled, running elsewhere, gone).
    NotQueued(Option<RunStatus>),
    /// Another run of the same sync holds the sync's lease: try again later.
    SyncBusy,
}

/// A per-record error as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub change: pb::RecordChange,
    pub key_json: String,
    pub rejected: bool,
    pub message: String,
    pub destination_status: i32,
    pub attempts: i32,
    pub given_up: bool,
}

/// How a run ended (or stopped for approval).
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub status: RunStatus,
    pub error: String,
    pub approval_reason: String,
    pub counts: RunCounts,
    pub timings: Vec<(RunPhase, i64)>,
    pub samples: Vec<Sample>,
    pub record_errors: Vec<RecordError>,
    /// The run stopped on an outage (see `ExecError::is_outage`): hand it back to resume
    /// from its checkpoint ([`SyncStore::requeue_run`]) rather than fail it.
    pub outage: bool,
}

fn timings_json(timings: &[(RunPhase, i64)]) -> String {
    let pairs: Vec<(i32, i64)> = timings.iter().map(|(p, ms)| (*p as i32, *ms)).collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

fn json<T: serde::Serialize>(value: &T, empty: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| empty.to_string())
}

/// The wire form of a run.
pub fn run_to_proto(record: RunRecord) -> pb::Run {
    let exec = record.exec;
    pb::Run {
        id: record.id,
        sync_id: record.sync_id,
        trigger: record.trigger as i32,
        status: record.status as i32,
        cause_id: record.cause_id,
        queued_at_unix_ms: record.queued_at_ms,
        finished_at_unix_ms: record.finished_at_ms,
        error: record.error,
        counts: Some(exec.counts.to_proto()),
        timings: exec
            .timings
            .iter()
            .map(|(phase, millis)| pb::PhaseTiming {
                phase: *phase as i32,
                millis: *millis,
            })
            .collect(),
        phase: exec.phase as i32,
        dry_run: exec.dry_run,
        approval_reason: exec.approval_reason,
        started_at_unix_ms: exec.started_at_ms,
        samples: exec
            .samples
            .into_iter()
            .map(|s| pb::RecordSample {
                change: s.change,
                key_json: s.key_json,
                fields_json: s.fields_json,
            })
            .collect(),
        resumed: exec.resumed,
        coalesced_ticks: record.coalesced_ticks,
    }
}

impl SyncStore {
    async fn run_in(
        tx: &mut Transaction<'_>,
        run_id: &str,
    ) -> Result<Option<RunRecord>, RetlError> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM retl_runs WHERE id = $1"
        ))
        .bind(run_id)
        .fetch_optional(&mut **tx)
        .await?;
        row.map(run_of).transpose()
    }

    /// One run of the workspace.
    pub async fn get_run(&self, workspace_id: &str, run_id: &str) -> Result<RunRecord, RetlError> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM retl_runs WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(run_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(run_of)
            .transpose()?
            .ok_or_else(|| RetlError::RunNotFound(run_id.to_string()))
    }

    /// Moves a queued run to RUNNING under `leases` (keyed by its sync), in one transaction.
    pub async fn claim_run(&self, leases: &Leases, run_id: &str) -> Result<Claim, RetlError> {
        let mut tx = self.db.begin().await?;
        let Some(run) = Self::run_in(&mut tx, run_id).await? else {
            return Ok(Claim::NotQueued(None));
        };
        if run.status != RunStatus::Queued {
            return Ok(Claim::NotQueued(Some(run.status)));
        }
        if !leases.acquire(&mut tx, &run.sync_id).await? {
            tx.rollback().await?;
            return Ok(Claim::SyncBusy);
        }
        let now = backflow_platform::now_unix_ms();
        sqlx::query(
            "UPDATE retl_runs SET status = $1, phase = $2, started_at_ms = CASE WHEN started_at_ms = 0 THEN $3 ELSE started_at_ms END \
             WHERE id = $4 AND status = $5",
        )
        .bind(RunStatus::Running as i32)
        .bind(RunPhase::Extracting as i32)
        .bind(now)
        .bind(run_id)
        .bind(RunStatus::Queued as i32)
        .execute(&mut *tx)
        .await?;
        let run = Self::run_in(&mut tx, run_id)
            .await?
            .ok_or_else(|| RetlError::RunNotFound(run_id.to_string()))?;
        tx.commit().await?;
        Ok(Claim::Claimed(Box::new(run)))
    }

    /// Stores progress of a running run; returns whether a cancel was asked for (or the
    /// run is no longer running, e.g. reaped).
    pub async fn save_progress(
        &self,
        run_id: &str,
        phase: RunPhase,
        counts: &RunCounts,
        timings: &[(RunPhase, i64)],
    ) -> Result<bool, RetlError> {
        sqlx::query(
            "UPDATE retl_runs SET phase = $1, counts = $2, timings = $3 WHERE id = $4 AND status = $5",
        )
        .bind(phase as i32)
        .bind(json(counts, "{}"))
        .bind(timings_json(timings))
        .bind(run_id)
        .bind(RunStatus::Running as i32)
        .execute(self.db.pool())
        .await?;
        let row: Option<(i32, i32)> =
            sqlx::query_as("SELECT status, cancel_requested FROM retl_runs WHERE id = $1")
                .bind(run_id)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(match row {
            Some((status, cancel)) => cancel != 0 || status != RunStatus::Running as i32,
            None => true,
        })
    }

    /// Records how a running run ended, releases its lease, stores its record errors, and
    /// (for a terminal status) announces `RunFinishedEvent`. `Ok(None)` when the lease was
    /// lost (a reaper re-queued the run): nothing is written.
    pub async fn finish_run(
        &self,
        leases: &Leases,
        run: &RunRecord,
        finish: &Finish,
    ) -> Result<Option<RunRecord>, RetlError> {
        let mut tx = self.db.begin().await?;
        if !leases.release(&mut tx, &run.sync_id).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let terminal = is_terminal(finish.status);
        let now = backflow_platform::now_unix_ms();
        sqlx::query(
            "UPDATE retl_runs SET status = $1, error = $2, approval_reason = $3, counts = $4, timings = $5, samples = $6, \
             phase = $7, finished_at_ms = $8, cancel_requested = 0 WHERE id = $9",
        )
        .bind(finish.status as i32)
        .bind(&finish.error)
        .bind(&finish.approval_reason)
        .bind(json(&finish.counts, "{}"))
        .bind(timings_json(&finish.timings))
        .bind(json(&finish.samples, "[]"))
        .bind(if terminal { RunPhase::Done } else { RunPhase::Diffing } as i32)
        .bind(if terminal { now } else { 0 })
        .bind(&run.id)
        .execute(&mut *tx)
        .await?;
        let (start,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(MAX(seq), -1) + 1 FROM retl_run_record_errors WHERE run_id = $1",
        )
        .bind(&run.id)
        .fetch_one(&mut *tx)
        .await?;
        for (at, error) in finish
            .record_errors
            .iter()
            .take(MAX_STORED_RECORD_ERRORS)
            .enumerate()
        {
            sqlx::query(
                "INSERT INTO retl_run_record_errors (run_id, seq, record_change, key_json, rejected, message, destination_status, attempts, given_up) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&run.id)
            .bind(start + at as i64)
            .bind(error.change as i32)
            .bind(&error.key_json)
            .bind(i32::from(error.rejected))
            .bind(&error.message)
            .bind(error.destination_status)
            .bind(error.attempts)
            .bind(i32::from(error.given_up))
            .execute(&mut *tx)
            .await?;
        }
        if terminal {
            sqlx::query("DELETE FROM retl_run_acks WHERE run_id = $1")
                .bind(&run.id)
                .execute(&mut *tx)
                .await?;
        }
        let record = Self::run_in(&mut tx, &run.id)
            .await?
            .ok_or_else(|| RetlError::RunNotFound(run.id.clone()))?;
        if terminal {
            self.announce_finished(&mut tx, &record).await?;
        }
        tx.commit().await?;
        if terminal {
            self.outbox.committed();
        }
        Ok(Some(record))
    }

    async fn announce_finished(
        &self,
        tx: &mut Transaction<'_>,
        record: &RunRecord,
    ) -> Result<(), RetlError> {
        let event = pb::RunFinishedEvent {
            workspace_id: record.workspace_id.clone(),
            run: Some(run_to_proto(record.clone())),
        };
        self.outbox
            .enqueue(
                tx,
                &backflow_proto::subjects::RUN_FINISHED.for_id(&record.sync_id),
                &event,
            )
            .await?;
        Ok(())
    }

    /// Ends run `run_id` with `status` and `error` in the caller's transaction and
    /// announces it.
    pub(crate) async fn end_run_in(
        &self,
        tx: &mut Transaction<'_>,
        run_id: &str,
        status: RunStatus,
        error: &str,
    ) -> Result<(), RetlError> {
        sqlx::query(
            "UPDATE retl_runs SET status = $1, error = $2, phase = $3, finished_at_ms = $4 WHERE id = $5",
        )
        .bind(status as i32)
        .bind(error)
        .bind(RunPhase::Done as i32)
        .bind(backflow_platform::now_unix_ms())
        .bind(run_id)
        .execute(&mut **tx)
        .await?;
        let record = Self::run_in(tx, run_id)
            .await?
            .ok_or_else(|| RetlError::RunNotFound(run_id.to_string()))?;
        self.announce_finished(tx, &record).await
    }

    /// Ends a run that is not running (queued or awaiting approval) with `status`.
    async fn end_waiting(
        &self,
        workspace_id: &str,
        run_id: &str,
        from: &[RunStatus],
        status: RunStatus,
        error: &str,
    ) -> Result<Option<RunRecord>, RetlError> {
        let mut tx = self.db.begin().await?;
        let Some(run) = Self::run_in(&mut tx, run_id).await? else {
            return Err(RetlError::RunNotFound(run_id.to_string()));
        };
        if run.workspace_id != workspace_id {
            return Err(RetlError::RunNotFound(run_id.to_string()));
        }
        if !from.contains(&run.status) {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE retl_runs SET status = $1, error = $2, phase = $3, finished_at_ms = $4 WHERE id = $5 AND status = $6",
        )
        .bind(status as i32)
        .bind(error)
        .bind(RunPhase::Done as i32)
        .bind(backflow_platform::now_unix_ms())
        .bind(run_id)
        .bind(run.status as i32)
        .execute(&mut *tx)
        .await?;
        let record = Self::run_in(&mut tx, run_id)
            .await?
            .ok_or_else(|| RetlError::RunNotFound(run_id.to_string()))?;
        self.announce_finished(&mut tx, &record).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(Some(record))
    }

    /// Cancels a run: a queued or guarded run ends now; a running one is asked to stop
    /// (its executor notices within a progress interval). A finished run is refused.
    pub async fn cancel_run(
        &self,
        workspace_id: &str,
        run_id: &str,
    ) -> Result<RunRecord, RetlError> {
        let waiting = [RunStatus::Queued, RunStatus::AwaitingApproval];
        if let Some(record) = self
            .end_waiting(
                workspace_id,
                run_id,
                &waiting,
                RunStatus::Cancelled,
                "cancelled",
            )
            .await?
        {
            return Ok(record);
        }
        let run = self.get_run(workspace_id, run_id).await?;
        if run.status != RunStatus::Running {
            return Err(RetlError::FailedPrecondition(format!(
                "run {run_id} has already ended ({})",
                status_name(run.status)
            )));
        }
        sqlx::query("UPDATE retl_runs SET cancel_requested = 1 WHERE id = $1 AND status = $2")
            .bind(run_id)
            .bind(RunStatus::Running as i32)
            .execute(self.db.pool())
            .await?;
        self.get_run(workspace_id, run_id).await
    }

    /// A guarded run goes on: queued again (with its command) and marked approved, so
    /// the next attempt delivers past the guard.
    pub async fn approve_run(
        &self,
        workspace_id: &str,
        run_id: &str,
    ) -> Result<RunRecord, RetlError> {
        let mut tx = self.db.begin().await?;
        let run = Self::run_in(&mut tx, run_id)
            .await?
            .filter(|run| run.workspace_id == workspace_id)
            .ok_or_else(|| RetlError::RunNotFound(run_id.to_string()))?;
        if run.status != RunStatus::AwaitingApproval {
            return Err(RetlError::FailedPrecondition(format!(
                "run {run_id} is not awaiting approval ({})",
                status_name(run.status)
            )));
        }
        sqlx::query(
            "UPDATE retl_runs SET status = $1, approved = 1, phase = $2 WHERE id = $3 AND status = $4",
        )
        .bind(RunStatus::Queued as i32)
        .bind(RunPhase::Queued as i32)
        .bind(run_id)
        .bind(RunStatus::AwaitingApproval as i32)
        .execute(&mut *tx)
        .await?;
        self.enqueue_command(&mut tx, &run).await?;
        let record = Self::run_in(&mut tx, run_id)
            .await?
            .ok_or_else(|| RetlError::RunNotFound(run_id.to_string()))?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(record)
    }

    /// A guarded run ends as rejected: nothing delivered, nothing committed.
    pub async fn reject_run(
        &self,
        workspace_id: &str,
        run_id: &str,
    ) -> Result<RunRecord, RetlError> {
        match self
            .end_waiting(
                workspace_id,
                run_id,
                &[RunStatus::AwaitingApproval],
                RunStatus::Rejected,
                "rejected by a user",
            )
            .await?
        {
            Some(record) => Ok(record),
            None => {
                let run = self.get_run(workspace_id, run_id).await?;
                Err(RetlError::FailedPrecondition(format!(
                    "run {run_id} is not awaiting approval ({})",
                    status_name(run.status)
                )))
            }
        }
    }

    async fn enqueue_command(
        &self,
        tx: &mut Transaction<'_>,
        run: &RunRecord,
    ) -> Result<(), RetlError> {
        let command = pb::RunSyncCommand {
            workspace_id: run.workspace_id.clone(),
            sync_id: run.sync_id.clone(),
            run_id: run.id.clone(),
        };
        self.outbox
            .enqueue(
                tx,
                &backflow_proto::subjects::RUN_SYNC.for_id(&run.sync_id),
                &command,
            )
            .await?;
        Ok(())
    }

    /// Hands a running run back after an outage stopped it: QUEUED again (resumed + 1,
    /// `reason` as its error until it ends) with a new command, releasing the lease, in
    /// one transaction. It resumes from its checkpoint. `false` when the lease was lost
    /// (a reaper already re-queued it).
    pub async fn requeue_run(
        &self,
        leases: &Leases,
        run: &RunRecord,
        reason: &str,
    ) -> Result<bool, RetlError> {
        let mut tx = self.db.begin().await?;
        if !leases.release(&mut tx, &run.sync_id).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE retl_runs SET status = $1, phase = $2, resumed = resumed + 1, error = $3 WHERE id = $4 AND status = $5",
        )
        .bind(RunStatus::Queued as i32)
        .bind(RunPhase::Queued as i32)
        .bind(reason)
        .bind(&run.id)
        .bind(RunStatus::Running as i32)
        .execute(&mut *tx)
        .await?;
        self.enqueue_command(&mut tx, run).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(true)
    }

    /// Reaps the lapsed lease of sync `sync_id`: its running run goes back to QUEUED
    /// (resumed + 1) with a new command, in one transaction with taking the lease.
    /// `false` if another replica got there first or the lease was renewed.
    pub async fn reap_run(&self, leases: &Leases, sync_id: &str) -> Result<bool, RetlError> {
        let mut tx = self.db.begin().await?;
        if !leases.take_lapsed(&mut tx, sync_id).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let running: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM retl_runs WHERE sync_id = $1 AND status = $2 ORDER BY queued_at_ms LIMIT 1",
        )
        .bind(sync_id)
        .bind(RunStatus::Running as i32)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((run_id,)) = running else {
            tx.commit().await?;
            return Ok(false);
        };
        sqlx::query(
            "UPDATE retl_runs SET status = $1, phase = $2, resumed = resumed + 1, error = $3 WHERE id = $4",
        )
        .bind(RunStatus::Queued as i32)
        .bind(RunPhase::Queued as i32)
        .bind(backflow_platform::lease::INTERRUPTED)
        .bind(&run_id)
        .execute(&mut *tx)
        .await?;
        let run = Self::run_in(&mut tx, &run_id)
            .await?
            .ok_or_else(|| RetlError::RunNotFound(run_id.to_string()))?;
        self.enqueue_command(&mut tx, &run).await?;
        tx.commit().await?;
        self.outbox.committed();
        tracing::warn!(run_id = %run_id, sync_id, "interrupted run re-queued to resume");
        Ok(true)
    }

    /// Per-record errors of a run, in order.
    pub async fn list_record_errors(
        &self,
        workspace_id: &str,
        run_id: &str,
        limit: i64,
    ) -> Result<Vec<RecordError>, RetlError> {
        self.get_run(workspace_id, run_id).await?;
        let rows: Vec<(i32, String, i32, String, i32, i32, i32)> = sqlx::query_as(
            "SELECT record_change, key_json, rejected, message, destination_status, attempts, given_up \
             FROM retl_run_record_errors WHERE run_id = $1 ORDER BY seq LIMIT $2",
        )
        .bind(run_id)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(change, key_json, rejected, message, status, attempts, given_up)| RecordError {
                    change: pb::RecordChange::try_from(change)
                        .unwrap_or(pb::RecordChange::Unspecified),
                    key_json,
                    rejected: rejected != 0,
                    message,
                    destination_status: status,
                    attempts,
                    given_up: given_up != 0,
                },
            )
            .collect())
    }

    /// Stores one checkpoint chunk of acknowledged (key hash, row word) entries.
    pub async fn save_acks(
        &self,
        run_id: &str,
        chunk: i64,
        entries: &[u8],
    ) -> Result<(), RetlError> {
        sqlx::query("INSERT INTO retl_run_acks (run_id, chunk, entries) VALUES ($1, $2, $3)")
            .bind(run_id)
            .bind(chunk)
            .bind(entries.to_vec())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Every checkpoint chunk of a run, in order.
    pub async fn load_acks(&self, run_id: &str) -> Result<Vec<(i64, Vec<u8>)>, RetlError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT chunk, entries FROM retl_run_acks WHERE run_id = $1 ORDER BY chunk",
        )
        .bind(run_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows)
    }

    /// Failed-run counts per key hash of a sync.
    pub async fn record_attempts(&self, sync_id: &str) -> Result<Vec<(u64, i32)>, RetlError> {
        let rows: Vec<(i64, i32)> = sqlx::query_as(
            "SELECT key_hash, attempts FROM retl_record_attempts WHERE sync_id = $1",
        )
        .bind(sync_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(|(k, a)| (k as u64, a)).collect())
    }

    /// Sets the attempts of failed keys and forgets keys that got through (or were given up).
    pub async fn update_record_attempts(
        &self,
        sync_id: &str,
        failed: &[(u64, i32)],
        cleared: &[u64],
    ) -> Result<(), RetlError> {
        let mut tx = self.db.begin().await?;
        for key in cleared {
            sqlx::query("DELETE FROM retl_record_attempts WHERE sync_id = $1 AND key_hash = $2")
                .bind(sync_id)
                .bind(*key as i64)
                .execute(&mut *tx)
                .await?;
        }
        for (key, attempts) in failed {
            sqlx::query(
                "INSERT INTO retl_record_attempts (sync_id, key_hash, attempts) VALUES ($1, $2, $3) \
                 ON CONFLICT (sync_id, key_hash) DO UPDATE SET attempts = excluded.attempts",
            )
            .bind(sync_id)
            .bind(*key as i64)
            .bind(*attempts)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Remembers the key values of delivered records (mirror syncs), replacing older ones.
    pub async fn save_keys(&self, sync_id: &str, keys: &[(u64, String)]) -> Result<(), RetlError> {
        for chunk in keys.chunks(500) {
            let mut sql =
                String::from("INSERT INTO retl_sync_keys (sync_id, key_hash, key_json) VALUES ");
            for at in 0..chunk.len() {
                if at > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${})",
                    at * 3 + 1,
                    at * 3 + 2,
                    at * 3 + 3
                ));
            }
            sql.push_str(
                " ON CONFLICT (sync_id, key_hash) DO UPDATE SET key_json = excluded.key_json",
            );
            let mut query = sqlx::query(&sql);
            for (key, json) in chunk {
                query = query.bind(sync_id).bind(*key as i64).bind(json.as_str());
            }
            query.execute(self.db.pool()).await?;
        }
        Ok(())
    }

    /// The stored key values of `keys` (those Backflow delivered); missing ones are absent.
    pub async fn load_keys(
        &self,
        sync_id: &str,
        keys: &[u64],
    ) -> Result<Vec<(u64, String)>, RetlError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|at| format!("${}", at + 2)).collect();
            let sql = format!(
                "SELECT key_hash, key_json FROM retl_sync_keys WHERE sync_id = $1 AND key_hash IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql).bind(sync_id);
            for key in chunk {
                query = query.bind(*key as i64);
            }
            found.extend(
                query
                    .fetch_all(self.db.pool())
                    .await?
                    .into_iter()
                    .map(|(k, json)| (k as u64, json)),
            );
        }
        Ok(found)
    }

    /// Forgets the key values of deleted records.
    pub async fn delete_keys(&self, sync_id: &str, keys: &[u64]) -> Result<(), RetlError> {
        for chunk in keys.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|at| format!("${}", at + 2)).collect();
            let sql = format!(
                "DELETE FROM retl_sync_keys WHERE sync_id = $1 AND key_hash IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(sync_id);
            for key in chunk {
                query = query.bind(*key as i64);
            }
            query.execute(self.db.pool()).await?;
        }
        Ok(())
    }

    /// The deletes carried across a diff strategy change that are still owed at state
    /// epoch `state_epoch`: (key hash, key values).
    pub async fn carried_deletes(
        &self,
        sync_id: &str,
        state_epoch: i64,
    ) -> Result<Vec<(u64, String)>, RetlError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT key_hash, key_json FROM retl_carried_deletes WHERE sync_id = $1 AND state_epoch = $2",
        )
        .bind(sync_id)
        .bind(state_epoch)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(|(k, json)| (k as u64, json)).collect())
    }

    /// Forgets every stored key value, attempt count and owed carried delete of a sync
    /// (its state was reset).
    pub async fn forget_sync_state(&self, sync_id: &str) -> Result<(), RetlError> {
        let mut tx = self.db.begin().await?;
        for table in [
            "retl_sync_keys",
            "retl_record_attempts",
            "retl_carried_deletes",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE sync_id = $1"))
                .bind(sync_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
