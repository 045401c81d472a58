//! Why a job that enabled syncs wait on has no working webhook subscription (no public
//! URL configured, no connection for the account, dbt Cloud refused or could not be
//! reached). Written by every failed attempt, cleared by the next good one, and shown
//! by `ListSubscriptions`, so a missing subscription is visible rather than silent.

use super::{ConnectionStore, JobKey};
use crate::error::DbtCloudError;
use std::collections::BTreeMap;

impl ConnectionStore {
    pub async fn set_subscription_problem(
        &self,
        key: &JobKey,
        problem: &str,
        now_ms: i64,
    ) -> Result<(), DbtCloudError> {
        sqlx::query(
            "INSERT INTO dbt_subscription_problems (workspace_id, account_id, job_id, problem, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workspace_id, account_id, job_id) DO UPDATE SET problem = $4, updated_at_ms = $5",
        )
        .bind(&key.workspace_id)
        .bind(key.account_id)
        .bind(key.job_id)
        .bind(problem)
        .bind(now_ms)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn clear_subscription_problem(&self, key: &JobKey) -> Result<(), DbtCloudError> {
        sqlx::query(
            "DELETE FROM dbt_subscription_problems WHERE workspace_id = $1 AND account_id = $2 AND job_id = $3",
        )
        .bind(&key.workspace_id)
        .bind(key.account_id)
        .bind(key.job_id)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// A workspace's current problems, by (account, job).
    pub async fn subscription_problems(
        &self,
        workspace_id: &str,
    ) -> Result<BTreeMap<(i64, i64), String>, DbtCloudError> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT account_id, job_id, problem FROM dbt_subscription_problems WHERE workspace_id = $1",
        )
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(account, job, problem)| ((account, job), problem))
            .collect())
    }
}
