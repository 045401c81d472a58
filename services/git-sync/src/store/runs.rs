//! The life of a sync run after it was queued: claimed by one worker (which takes its
//! lease), then finished with its snapshot and `evt.gitsync.snapshot.ready`, or failed
//! with `evt.gitsync.sync.failed` — each in one transaction with its event and the
//! release of the lease. A run whose lease lapsed is failed as interrupted and queued
//! again by whichever replica reaps it first.

use super::{
    fetch_connection, ConnectionRecord, GitSyncStore, RunRecord, CONNECTION_COLUMNS, RUN_COLUMNS,
};
use crate::error::GitSyncError;
use crate::retry::PollState;
use backflow_platform::db::Transaction;
use backflow_proto::catalog::v1 as catalog;
use backflow_proto::gitsync::v1 as pb;
use prost::Message;

/// How long superseded snapshots are kept for model-catalog to fetch.
const SNAPSHOT_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// What a successful sync produced.
#[derive(Debug)]
pub struct SyncResult {
    pub commit_sha: String,
    pub models: Vec<catalog::Model>,
    /// `file:line: message` per file or node that failed to load or compile, the
    /// complete list at this commit, repository-relative.
    pub node_errors: Vec<String>,
    pub duration_ms: i64,
}

/// Why a run failed, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailure {
    /// For the user; repository-relative paths only.
    pub message: String,
    /// The commit the run tried; empty keeps the run's target commit (if any).
    pub commit_sha: String,
    /// Network trouble or a timeout: the poller retries after a back-off.
    pub transient: bool,
    /// Version of the credential used ('' if it could not be read).
    pub credential_version: String,
}

/// A connection the poller looks at.
#[derive(Debug, Clone)]
pub struct PollTarget {
    pub connection: ConnectionRecord,
    pub last_synced_commit: String,
    pub state: PollState,
}

type PollStateRow = (String, String, i64, i64, i64);

fn poll_state_of(
    (failed_commit, failed_credential_version, transient, failures, retry_after_ms): PollStateRow,
) -> PollState {
    PollState {
        failed_commit,
        failed_credential_version,
        failure_transient: transient != 0,
        backoff_failures: failures,
        retry_after_ms,
    }
}

const POLL_STATE_COLUMNS: &str =
    "failed_commit, failed_credential_version, failure_transient, backoff_failures, retry_after_ms";

pub(crate) async fn write_poll_state(
    tx: &mut Transaction<'_>,
    connection_id: &str,
    state: &PollState,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE connections SET failed_commit = $1, failed_credential_version = $2, failure_transient = $3, backoff_failures = $4, retry_after_ms = $5 WHERE id = $6",
    )
    .bind(&state.failed_commit)
    .bind(&state.failed_credential_version)
    .bind(i64::from(state.failure_transient))
    .bind(state.backoff_failures)
    .bind(state.retry_after_ms)
    .bind(connection_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn read_poll_state(
    tx: &mut Transaction<'_>,
    connection_id: &str,
) -> Result<PollState, sqlx::Error> {
    let row: Option<PollStateRow> = sqlx::query_as(&format!(
        "SELECT {POLL_STATE_COLUMNS} FROM connections WHERE id = $1"
    ))
    .bind(connection_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(poll_state_of).unwrap_or_default())
}

impl GitSyncStore {
    /// Moves a queued run to running; `None` if another worker has it or it is done.
    pub async fn claim_run(
        &self,
        workspace_id: &str,
        run_id: &str,
    ) -> Result<Option<(RunRecord, ConnectionRecord)>, GitSyncError> {
        let mut tx = self.db.begin().await?;
        let claimed = sqlx::query(
            "UPDATE sync_runs SET status = $1, started_at_ms = $2 WHERE workspace_id = $3 AND id = $4 AND status = $5",
        )
        .bind(pb::SyncStatus::Running as i32)
        .bind(backflow_platform::now_unix_ms())
        .bind(workspace_id)
        .bind(run_id)
        .bind(pb::SyncStatus::Queued as i32)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 || !self.leases.acquire(&mut tx, run_id).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        let run: super::rows::RunRow = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1"
        ))
        .bind(run_id)
        .fetch_one(&mut *tx)
        .await?;
        let run = RunRecord::from_row(run);
        let connection = fetch_connection(&mut tx, workspace_id, &run.connection_id).await?;
        tx.commit().await?;
        Ok(Some((run, connection)))
    }

    /// Records the snapshot, finishes the run and announces the snapshot; returns the
    /// snapshot id, or `None` (nothing written) if the run's lease was lost meanwhile.
    pub async fn finish_run(
        &self,
        run: &RunRecord,
        result: &SyncResult,
    ) -> Result<Option<String>, GitSyncError> {
        let snapshot_id = backflow_platform::new_id();
        let model_count = i64::try_from(result.models.len()).unwrap_or(i64::MAX);
        let payload = pb::SnapshotChunk {
            connection_id: run.connection_id.clone(),
            commit_sha: result.commit_sha.clone(),
            models: result.models.clone(),
            last: true,
            total_models: model_count,
        }
        .encode_to_vec();
        let now = backflow_platform::now_unix_ms();
        let mut tx = self.db.begin().await?;
        if !self.leases.release(&mut tx, &run.id).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO snapshots (id, workspace_id, connection_id, run_id, commit_sha, model_count, payload, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&snapshot_id)
        .bind(&run.workspace_id)
        .bind(&run.connection_id)
        .bind(&run.id)
        .bind(&result.commit_sha)
        .bind(model_count)
        .bind(payload)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let node_errors =
            serde_json::to_string(&result.node_errors).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "UPDATE sync_runs SET status = $1, commit_sha = $2, model_count = $3, finished_at_ms = $4, duration_ms = $5, node_errors = $6, error = '' WHERE id = $7",
        )
        .bind(pb::SyncStatus::Succeeded as i32)
        .bind(&result.commit_sha)
        .bind(model_count)
        .bind(now)
        .bind(result.duration_ms)
        .bind(node_errors)
        .bind(&run.id)
        .execute(&mut *tx)
        .await?;
        // Snapshots are fetched right after their event; a day is ample for a lagging
        // catalog, and the newest one of each connection is always kept.
        sqlx::query(
            "DELETE FROM snapshots WHERE connection_id = $1 AND id <> $2 AND created_at_ms < $3",
        )
        .bind(&run.connection_id)
        .bind(&snapshot_id)
        .bind(now - SNAPSHOT_RETENTION_MS)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE connections SET last_synced_commit = $1 WHERE id = $2")
            .bind(&result.commit_sha)
            .bind(&run.connection_id)
            .execute(&mut *tx)
            .await?;
        write_poll_state(&mut tx, &run.connection_id, &PollState::default()).await?;
        let event = pb::SnapshotReadyEvent {
            workspace_id: run.workspace_id.clone(),
            connection_id: run.connection_id.clone(),
            run_id: run.id.clone(),
            commit_sha: result.commit_sha.clone(),
            snapshot_ref: snapshot_id.clone(),
            model_count,
            node_errors: result.node_errors.clone(),
        };
        self.outbox
            .enqueue(
                &mut tx,
                &backflow_proto::subjects::SNAPSHOT_READY.for_id(&run.connection_id),
                &event,
            )
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(Some(snapshot_id))
    }

    /// Fails the run with a message for the user, remembers the failure for the
    /// poller and announces it; `false` (nothing written) if the lease was lost.
    pub async fn fail_run(
        &self,
        run: &RunRecord,
        failure: &RunFailure,
        duration_ms: i64,
    ) -> Result<bool, GitSyncError> {
        let mut tx = self.db.begin().await?;
        if !self.leases.release(&mut tx, &run.id).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let commit = if failure.commit_sha.is_empty() {
            run.commit_sha.clone()
        } else {
            failure.commit_sha.clone()
        };
        let now = backflow_platform::now_unix_ms();
        let state = read_poll_state(&mut tx, &run.connection_id).await?;
        let state =
            state.after_run_failure(&commit, &failure.credential_version, failure.transient, now);
        write_poll_state(&mut tx, &run.connection_id, &state).await?;
        self.record_failure(&mut tx, run, &failure.message, &commit, duration_ms, false)
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(true)
    }

    async fn record_failure(
        &self,
        tx: &mut Transaction<'_>,
        run: &RunRecord,
        error: &str,
        commit: &str,
        duration_ms: i64,
        interrupted: bool,
    ) -> Result<(), GitSyncError> {
        sqlx::query(
            "UPDATE sync_runs SET status = $1, error = $2, commit_sha = $3, finished_at_ms = $4, duration_ms = $5 WHERE id = $6",
        )
        .bind(pb::SyncStatus::Failed as i32)
        .bind(error)
        .bind(commit)
        .bind(backflow_platform::now_unix_ms())
        .bind(duration_ms)
        .bind(&run.id)
        .execute(&mut **tx)
        .await?;
        let event = pb::SyncFailedEvent {
            workspace_id: run.workspace_id.clone(),
            connection_id: run.connection_id.clone(),
            run_id: run.id.clone(),
            error: error.to_string(),
            commit_sha: commit.to_string(),
            interrupted,
        };
        self.outbox
            .enqueue(
                tx,
                &backflow_proto::subjects::SYNC_FAILED.for_id(&run.connection_id),
                &event,
            )
            .await?;
        Ok(())
    }

    /// Reaps a run whose lease lapsed: fails it as interrupted and queues a new run of
    /// its connection (unless one is queued), in one transaction with taking the
    /// lease. `false` if another replica got there first or the lease was renewed.
    pub async fn reap_run(&self, run_id: &str) -> Result<bool, GitSyncError> {
        let mut tx = self.db.begin().await?;
        if !self.leases.take_lapsed(&mut tx, run_id).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        let row: Option<super::rows::RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1"
        ))
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(run) = row.map(RunRecord::from_row) else {
            // the connection was deleted meanwhile: only the lease was left
            tx.commit().await?;
            return Ok(false);
        };
        if run.status != pb::SyncStatus::Running as i32 {
            tx.commit().await?;
            return Ok(false);
        }
        let duration_ms = (backflow_platform::now_unix_ms() - run.started_at_ms).max(0);
        let commit = run.commit_sha.clone();
        self.record_failure(
            &mut tx,
            &run,
            backflow_platform::lease::INTERRUPTED,
            &commit,
            duration_ms,
            true,
        )
        .await?;
        let connection = fetch_connection(&mut tx, &run.workspace_id, &run.connection_id).await?;
        let queued: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM sync_runs WHERE connection_id = $1 AND status = $2 LIMIT 1",
        )
        .bind(&run.connection_id)
        .bind(pb::SyncStatus::Queued as i32)
        .fetch_optional(&mut *tx)
        .await?;
        let retry = match queued {
            Some((id,)) => id,
            None => {
                self.queue_run(&mut tx, &connection, pb::SyncTrigger::Retry, &commit)
                    .await?
                    .id
            }
        };
        tx.commit().await?;
        self.outbox.committed();
        tracing::warn!(run_id = %run.id, connection_id = %run.connection_id, retry_run_id = %retry, "sync run interrupted; queued again");
        Ok(true)
    }

    /// Remembers a failed head check (for the back-off).
    pub async fn record_head_check(
        &self,
        connection_id: &str,
        succeeded: bool,
        now_ms: i64,
    ) -> Result<PollState, GitSyncError> {
        let mut tx = self.db.begin().await?;
        let state = read_poll_state(&mut tx, connection_id).await?;
        let next = if succeeded {
            state.after_head_check_success()
        } else {
            state.after_head_check_failure(now_ms)
        };
        if next != state {
            write_poll_state(&mut tx, connection_id, &next).await?;
        }
        tx.commit().await?;
        Ok(next)
    }

    /// Every connection with the commit it last synced and its failure memory.
    pub async fn poll_targets(&self) -> Result<Vec<PollTarget>, GitSyncError> {
        let rows: Vec<super::rows::ConnectionRow> = sqlx::query_as(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections ORDER BY id"
        ))
        .fetch_all(self.db.pool())
        .await?;
        let states: std::collections::HashMap<String, (String, PollStateRow)> =
            sqlx::query_as::<_, (String, String, String, String, i64, i64, i64)>(&format!(
                "SELECT id, last_synced_commit, {POLL_STATE_COLUMNS} FROM connections"
            ))
            .fetch_all(self.db.pool())
            .await?
            .into_iter()
            .map(|(id, last, a, b, c, d, e)| (id, (last, (a, b, c, d, e))))
            .collect();
        Ok(rows
            .into_iter()
            .map(ConnectionRecord::from_row)
            .map(|connection| {
                let (last_synced_commit, state) = states
                    .get(&connection.id)
                    .cloned()
                    .map(|(last, row)| (last, poll_state_of(row)))
                    .unwrap_or_default();
                PollTarget {
                    connection,
                    last_synced_commit,
                    state,
                }
            })
            .collect())
    }
}
