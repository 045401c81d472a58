//! The life of a sync run after it was queued: claimed by one worker, then finished
//! with its snapshot and `evt.gitsync.snapshot.ready`, or failed with
//! `evt.gitsync.sync.failed` — each in one transaction with its event.

use super::{
    fetch_connection, ConnectionRecord, GitSyncStore, RunRecord, CONNECTION_COLUMNS, RUN_COLUMNS,
};
use crate::error::GitSyncError;
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
    /// `file:line: message` per node that failed to load or compile.
    pub node_errors: Vec<String>,
    pub duration_ms: i64,
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
        if claimed.rows_affected() == 0 {
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

    /// Records the snapshot, finishes the run and announces the snapshot.
    pub async fn finish_run(
        &self,
        run: &RunRecord,
        result: &SyncResult,
    ) -> Result<String, GitSyncError> {
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
        let event = pb::SnapshotReadyEvent {
            workspace_id: run.workspace_id.clone(),
            connection_id: run.connection_id.clone(),
            run_id: run.id.clone(),
            commit_sha: result.commit_sha.clone(),
            snapshot_ref: snapshot_id.clone(),
            model_count,
        };
        self.outbox
            .enqueue(
                &mut tx,
                &format!("evt.gitsync.snapshot.ready.{}", run.connection_id),
                &event,
            )
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(snapshot_id)
    }

    /// Fails the run with a message for the user and announces it.
    pub async fn fail_run(
        &self,
        run: &RunRecord,
        error: &str,
        duration_ms: i64,
    ) -> Result<(), GitSyncError> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "UPDATE sync_runs SET status = $1, error = $2, finished_at_ms = $3, duration_ms = $4 WHERE id = $5",
        )
        .bind(pb::SyncStatus::Failed as i32)
        .bind(error)
        .bind(backflow_platform::now_unix_ms())
        .bind(duration_ms)
        .bind(&run.id)
        .execute(&mut *tx)
        .await?;
        let event = pb::SyncFailedEvent {
            workspace_id: run.workspace_id.clone(),
            connection_id: run.connection_id.clone(),
            run_id: run.id.clone(),
            error: error.to_string(),
        };
        self.outbox
            .enqueue(
                &mut tx,
                &format!("evt.gitsync.sync.failed.{}", run.connection_id),
                &event,
            )
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    /// Every connection with the commit it last synced (for the poller).
    pub async fn poll_targets(&self) -> Result<Vec<(ConnectionRecord, String)>, GitSyncError> {
        let rows: Vec<super::rows::ConnectionRow> = sqlx::query_as(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections ORDER BY id"
        ))
        .fetch_all(self.db.pool())
        .await?;
        let synced: std::collections::HashMap<String, String> =
            sqlx::query_as("SELECT id, last_synced_commit FROM connections")
                .fetch_all(self.db.pool())
                .await?
                .into_iter()
                .collect();
        Ok(rows
            .into_iter()
            .map(ConnectionRecord::from_row)
            .map(|connection| {
                let last = synced.get(&connection.id).cloned().unwrap_or_default();
                (connection, last)
            })
            .collect())
    }
}
