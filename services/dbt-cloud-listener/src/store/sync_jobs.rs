//! Which dbt Cloud job each sync waits on: a projection of the scheduler's
//! `evt.retl.sync.changed.<sync>` events (never of its database). Each event is applied
//! once (inbox, in the same transaction) and only if newer than what is stored for the
//! sync (`version`); a deleted sync stays as a tombstone so an older event arriving
//! late cannot bring it back. The jobs enabled syncs wait on are the jobs that need a
//! webhook subscription and reconciliation.

use super::ConnectionStore;
use crate::error::DbtCloudError;
use backflow_proto::retl::v1::SyncChangedEvent;
use std::collections::BTreeMap;

/// A dbt Cloud job as a workspace's syncs name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobKey {
    pub workspace_id: String,
    pub account_id: i64,
    pub job_id: i64,
}

/// A job enabled syncs wait on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedJob {
    pub key: JobKey,
    /// The earliest time one of those syncs started waiting on it.
    pub waiting_since_ms: i64,
    /// The syncs, by id.
    pub sync_ids: Vec<String>,
}

/// What applying one sync event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncJobApplied {
    /// Stored. `jobs` are the jobs whose waiting syncs may have changed (the sync's job
    /// before and after), for the subscriptions to follow.
    Applied { jobs: Vec<JobKey> },
    /// Handled before (redelivery or republish).
    Duplicate,
    /// Older than what is stored for the sync; dropped.
    Stale,
}

type SyncJobRow = (String, i64, i64, i64, i64, i64);

impl ConnectionStore {
    /// Applies a `SyncChangedEvent` once per `message_id`, newest version per sync.
    pub async fn apply_sync_changed(
        &self,
        consumer: &str,
        message_id: &str,
        event: &SyncChangedEvent,
        now_ms: i64,
    ) -> Result<SyncJobApplied, DbtCloudError> {
        if event.sync_id.trim().is_empty() || event.workspace_id.trim().is_empty() {
            return Err(DbtCloudError::InvalidArgument(
                "sync event without sync_id or workspace_id".into(),
            ));
        }
        let (account_id, job_id) = event
            .after_dbt_cloud_job
            .as_ref()
            .filter(|job| job.account_id > 0 && job.job_id > 0)
            .map_or((0, 0), |job| (job.account_id, job.job_id));
        let enabled = event.enabled && !event.deleted && job_id > 0;
        let mut tx = self.db.begin().await?;
        if !backflow_platform::inbox::claim(&mut tx, consumer, message_id).await? {
            tx.rollback().await?;
            return Ok(SyncJobApplied::Duplicate);
        }
        let before: Option<SyncJobRow> = sqlx::query_as(
            "SELECT workspace_id, account_id, job_id, enabled, version, waiting_since_ms FROM dbt_sync_jobs WHERE sync_id = $1",
        )
        .bind(&event.sync_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((_, _, _, _, version, _)) = &before {
            if *version >= event.version {
                tx.commit().await?;
                return Ok(SyncJobApplied::Stale);
            }
        }
        let key = JobKey {
            workspace_id: event.workspace_id.clone(),
            account_id,
            job_id,
        };
        let previous = before.as_ref().map(|(ws, account, job, on, _, since)| {
            (
                JobKey {
                    workspace_id: ws.clone(),
                    account_id: *account,
                    job_id: *job,
                },
                *on != 0,
                *since,
            )
        });
        // Waiting since: kept while the sync stays enabled on the same job, else now.
        let waiting_since_ms = match &previous {
            Some((old, true, since)) if *old == key && enabled => *since,
            _ => now_ms,
        };
        sqlx::query(
            "INSERT INTO dbt_sync_jobs (sync_id, workspace_id, sync_name, account_id, job_id, enabled, version, waiting_since_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (sync_id) DO UPDATE SET workspace_id = $2, sync_name = $3, account_id = $4, job_id = $5, enabled = $6, \
             version = $7, waiting_since_ms = $8, updated_at_ms = $9 WHERE dbt_sync_jobs.version < $7",
        )
        .bind(&event.sync_id)
        .bind(&event.workspace_id)
        .bind(&event.sync_name)
        .bind(account_id)
        .bind(job_id)
        .bind(i64::from(enabled))
        .bind(event.version)
        .bind(waiting_since_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut jobs = Vec::new();
        if let Some((old, _, _)) = previous {
            if old.job_id > 0 && old != key {
                jobs.push(old);
            }
        }
        if key.job_id > 0 {
            jobs.push(key);
        }
        Ok(SyncJobApplied::Applied { jobs })
    }

    /// The jobs enabled syncs wait on, in every workspace.
    pub async fn watched_jobs(&self) -> Result<Vec<WatchedJob>, DbtCloudError> {
        let rows: Vec<(String, i64, i64, String, i64)> = sqlx::query_as(
            "SELECT workspace_id, account_id, job_id, sync_id, waiting_since_ms FROM dbt_sync_jobs \
             WHERE enabled = 1 AND job_id > 0 ORDER BY workspace_id, account_id, job_id, sync_id",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(group(rows))
    }

    /// One job's enabled waiting syncs, or `None` when no enabled sync waits on it.
    pub async fn watched_job(&self, key: &JobKey) -> Result<Option<WatchedJob>, DbtCloudError> {
        let rows: Vec<(String, i64, i64, String, i64)> = sqlx::query_as(
            "SELECT workspace_id, account_id, job_id, sync_id, waiting_since_ms FROM dbt_sync_jobs \
             WHERE workspace_id = $1 AND account_id = $2 AND job_id = $3 AND enabled = 1 ORDER BY sync_id",
        )
        .bind(&key.workspace_id)
        .bind(key.account_id)
        .bind(key.job_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(group(rows).into_iter().next())
    }

    /// The jobs a workspace's enabled syncs wait on.
    pub async fn workspace_watched_jobs(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<WatchedJob>, DbtCloudError> {
        let rows: Vec<(String, i64, i64, String, i64)> = sqlx::query_as(
            "SELECT workspace_id, account_id, job_id, sync_id, waiting_since_ms FROM dbt_sync_jobs \
             WHERE workspace_id = $1 AND enabled = 1 AND job_id > 0 ORDER BY account_id, job_id, sync_id",
        )
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(group(rows))
    }
}

fn group(rows: Vec<(String, i64, i64, String, i64)>) -> Vec<WatchedJob> {
    let mut jobs: BTreeMap<JobKey, WatchedJob> = BTreeMap::new();
    for (workspace_id, account_id, job_id, sync_id, since) in rows {
        let key = JobKey {
            workspace_id,
            account_id,
            job_id,
        };
        let entry = jobs.entry(key.clone()).or_insert_with(|| WatchedJob {
            key,
            waiting_since_ms: since,
            sync_ids: Vec::new(),
        });
        entry.waiting_since_ms = entry.waiting_since_ms.min(since);
        entry.sync_ids.push(sync_id);
    }
    jobs.into_values().collect()
}
