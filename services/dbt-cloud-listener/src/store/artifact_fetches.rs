//! Pending reads of announced dbt Cloud runs' node results (`dbt_artifact_fetches`).
//! A row is written in the transaction that announces a run's COMPLETED part (see
//! [`ConnectionStore::record_received_via`]) and deleted in the transaction that
//! publishes its NODE_RESULTS part, so the pair is announced exactly once per run even
//! across a crash; between the two the fetch worker (`crate::artifact_fetch`) retries it.

use super::ConnectionStore;
use crate::error::DbtCloudError;
use backflow_platform::db::Transaction;
use backflow_proto::dbtcloud::v1::RunCompletedEvent;

/// One run whose node results are still to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFetch {
    pub workspace_id: String,
    pub account_id: i64,
    pub job_id: i64,
    pub run_id: i64,
    /// The connection that announced the run (its token reads the artifact).
    pub connection_id: String,
    /// Attempts made so far.
    pub attempts: i64,
    pub last_error: String,
    pub created_at_ms: i64,
}

type FetchRow = (String, i64, i64, i64, String, i64, String, i64);

const FETCH_COLUMNS: &str =
    "workspace_id, account_id, job_id, run_id, connection_id, attempts, last_error, created_at_ms";

fn fetch_of(row: FetchRow) -> PendingFetch {
    let (workspace_id, account_id, job_id, run_id, connection_id, attempts, last_error, created) =
        row;
    PendingFetch {
        workspace_id,
        account_id,
        job_id,
        run_id,
        connection_id,
        attempts,
        last_error,
        created_at_ms: created,
    }
}

/// Queues a fetch of `completed`'s node results when an enabled sync waits on its job;
/// returns whether it did. Part of the announcing transaction.
pub(super) async fn queue_if_waited_on(
    tx: &mut Transaction<'_>,
    workspace_id: &str,
    completed: &RunCompletedEvent,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let waited_on: Option<(String,)> = sqlx::query_as(
        "SELECT sync_id FROM dbt_sync_jobs WHERE workspace_id = $1 AND account_id = $2 AND job_id = $3 AND enabled = 1 LIMIT 1",
    )
    .bind(workspace_id)
    .bind(completed.account_id)
    .bind(completed.job_id)
    .fetch_optional(&mut **tx)
    .await?;
    if waited_on.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO dbt_artifact_fetches (workspace_id, account_id, job_id, run_id, connection_id, attempts, next_attempt_at_ms, last_error, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, '', $6) ON CONFLICT (workspace_id, account_id, job_id, run_id) DO NOTHING",
    )
    .bind(workspace_id)
    .bind(completed.account_id)
    .bind(completed.job_id)
    .bind(completed.run_id)
    .bind(&completed.connection_id)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

impl ConnectionStore {
    /// Notified after a commit that queued a fetch (the worker's wake-up).
    pub fn fetches_queued(&self) -> &tokio::sync::Notify {
        &self.fetches_queued
    }

    /// Fetches due at `now_ms`, oldest first, at most `limit`.
    pub async fn due_fetches(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<PendingFetch>, DbtCloudError> {
        let rows: Vec<FetchRow> = sqlx::query_as(&format!(
            "SELECT {FETCH_COLUMNS} FROM dbt_artifact_fetches WHERE next_attempt_at_ms <= $1 \
             ORDER BY next_attempt_at_ms, created_at_ms, run_id LIMIT $2"
        ))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(fetch_of).collect())
    }

    /// Every pending fetch (operators, tests).
    pub async fn pending_fetches(&self) -> Result<Vec<PendingFetch>, DbtCloudError> {
        self.due_fetches(i64::MAX, i64::MAX).await
    }

    /// When the next pending fetch is due, if any is pending.
    pub async fn next_fetch_due_ms(&self) -> Result<Option<i64>, DbtCloudError> {
        let next: Option<(i64,)> = sqlx::query_as(
            "SELECT next_attempt_at_ms FROM dbt_artifact_fetches ORDER BY next_attempt_at_ms LIMIT 1",
        )
        .fetch_optional(self.db.pool())
        .await?;
        Ok(next.map(|(at,)| at))
    }

    /// Records a failed attempt: the next one is due at `next_at_ms`. False when the
    /// fetch is gone (another replica finished it).
    pub async fn retry_fetch(
        &self,
        fetch: &PendingFetch,
        next_at_ms: i64,
        error: &str,
    ) -> Result<bool, DbtCloudError> {
        let updated = sqlx::query(
            "UPDATE dbt_artifact_fetches SET attempts = attempts + 1, next_attempt_at_ms = $5, last_error = $6 \
             WHERE workspace_id = $1 AND account_id = $2 AND job_id = $3 AND run_id = $4",
        )
        .bind(&fetch.workspace_id)
        .bind(fetch.account_id)
        .bind(fetch.job_id)
        .bind(fetch.run_id)
        .bind(next_at_ms)
        .bind(error)
        .execute(self.db.pool())
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Ends a fetch: deletes it and publishes `node_results` (the run's NODE_RESULTS
    /// part) in one transaction. False, publishing nothing, when it was already ended.
    pub async fn finish_fetch(
        &self,
        fetch: &PendingFetch,
        node_results: &RunCompletedEvent,
    ) -> Result<bool, DbtCloudError> {
        let mut tx = self.db.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM dbt_artifact_fetches WHERE workspace_id = $1 AND account_id = $2 AND job_id = $3 AND run_id = $4",
        )
        .bind(&fetch.workspace_id)
        .bind(fetch.account_id)
        .bind(fetch.job_id)
        .bind(fetch.run_id)
        .execute(&mut *tx)
        .await?;
        if deleted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.outbox
            .enqueue(
                &mut tx,
                &backflow_proto::subjects::DBT_RUN_COMPLETED.for_id(fetch.account_id),
                node_results,
            )
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(true)
    }
}
