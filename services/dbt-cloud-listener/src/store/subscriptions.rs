//! Webhook subscriptions Backflow created in dbt Cloud, one per (connection, job). The
//! webhook endpoint finds a delivery's subscription by the id in its URL and learns from
//! it which workspace, account and job the delivery is for, and which secret signs it.
//!
//! A row is written `pending`, with the URL it gives dbt Cloud, before dbt Cloud is asked
//! to create the subscription, and becomes `active` when dbt's id and the secret are
//! kept; only active rows receive deliveries.

use super::ConnectionStore;
use crate::error::DbtCloudError;

/// Where a subscription is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// Written before dbt Cloud was asked; `dbt_webhook_id` may still be empty.
    Pending,
    /// dbt Cloud's id and the secret are kept; deliveries are accepted.
    Active,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "pending" {
            Self::Pending
        } else {
            Self::Active
        }
    }
}

/// One subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// Backflow's id; the webhook URL is `/webhooks/dbt-cloud/<id>`.
    pub id: String,
    pub workspace_id: String,
    pub connection_id: String,
    pub job_id: i64,
    /// dbt Cloud's id of the webhook subscription (`wsu_...`).
    pub dbt_webhook_id: String,
    /// The `hmac_secret` dbt Cloud returned, kept in the credentials service.
    pub hmac_secret_credential_id: String,
    pub created_at_ms: i64,
    pub status: SubscriptionStatus,
    /// The URL given to dbt Cloud (`<public_url>/webhooks/dbt-cloud/<id>`).
    pub client_url: String,
}

/// What the webhook endpoint needs to check and announce one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub subscription_id: String,
    pub workspace_id: String,
    pub connection_id: String,
    pub account_id: i64,
    pub job_id: i64,
    pub dbt_webhook_id: String,
    pub hmac_secret_credential_id: String,
}

type SubscriptionRow = (
    String,
    String,
    String,
    i64,
    String,
    String,
    i64,
    String,
    String,
);
type AccountSubscriptionRow = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    String,
    i64,
    String,
    String,
);
type TargetRow = (String, String, String, i64, i64, String, String);

const SUBSCRIPTION_COLUMNS: &str =
    "id, workspace_id, connection_id, job_id, dbt_webhook_id, hmac_secret_credential_id, created_at_ms, status, client_url";

fn subscription_of(row: SubscriptionRow) -> SubscriptionRecord {
    let (
        id,
        workspace_id,
        connection_id,
        job_id,
        dbt_webhook_id,
        hmac_secret_credential_id,
        created_at_ms,
        status,
        client_url,
    ) = row;
    SubscriptionRecord {
        id,
        workspace_id,
        connection_id,
        job_id,
        dbt_webhook_id,
        hmac_secret_credential_id,
        created_at_ms,
        status: SubscriptionStatus::parse(&status),
        client_url,
    }
}

impl ConnectionStore {
    /// Stores a subscription; `AlreadyExists` when the connection already has one for the job.
    pub async fn create_subscription(
        &self,
        record: &SubscriptionRecord,
    ) -> Result<(), DbtCloudError> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO dbt_subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.connection_id)
        .bind(record.job_id)
        .bind(&record.dbt_webhook_id)
        .bind(&record.hmac_secret_credential_id)
        .bind(record.created_at_ms)
        .bind(record.status.as_str())
        .bind(&record.client_url)
        .execute(self.db.pool())
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if backflow_platform::db::is_unique_violation(&error) => Err(
                DbtCloudError::AlreadyExists(format!("subscription for job {}", record.job_id)),
            ),
            Err(error) => Err(error.into()),
        }
    }

    /// The connection's subscription for `job_id`, if any.
    pub async fn subscription_for_job(
        &self,
        connection_id: &str,
        job_id: i64,
    ) -> Result<Option<SubscriptionRecord>, DbtCloudError> {
        let row: Option<SubscriptionRow> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM dbt_subscriptions WHERE connection_id = $1 AND job_id = $2"
        ))
        .bind(connection_id)
        .bind(job_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(subscription_of))
    }

    /// The connection's subscription for the job, written `pending` with `record`'s id
    /// and URL if there was none (a concurrent writer's row wins and is returned).
    pub async fn subscription_or_pending(
        &self,
        record: &SubscriptionRecord,
    ) -> Result<SubscriptionRecord, DbtCloudError> {
        if let Some(existing) = self
            .subscription_for_job(&record.connection_id, record.job_id)
            .await?
        {
            return Ok(existing);
        }
        match self.create_subscription(record).await {
            Ok(()) => Ok(record.clone()),
            Err(DbtCloudError::AlreadyExists(_)) => self
                .subscription_for_job(&record.connection_id, record.job_id)
                .await?
                .ok_or_else(|| {
                    DbtCloudError::InvalidArgument(format!(
                        "subscription for job {} vanished while being created",
                        record.job_id
                    ))
                }),
            Err(error) => Err(error),
        }
    }

    /// Marks a subscription active with dbt Cloud's id and the kept secret.
    pub async fn activate_subscription(
        &self,
        subscription_id: &str,
        dbt_webhook_id: &str,
        hmac_secret_credential_id: &str,
    ) -> Result<bool, DbtCloudError> {
        let updated = sqlx::query(
            "UPDATE dbt_subscriptions SET status = 'active', dbt_webhook_id = $2, hmac_secret_credential_id = $3 WHERE id = $1",
        )
        .bind(subscription_id)
        .bind(dbt_webhook_id)
        .bind(hmac_secret_credential_id)
        .execute(self.db.pool())
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Back to pending (dbt Cloud lost it, or the URL changed), with the URL to give next.
    pub async fn reset_subscription(
        &self,
        subscription_id: &str,
        client_url: &str,
    ) -> Result<(), DbtCloudError> {
        sqlx::query(
            "UPDATE dbt_subscriptions SET status = 'pending', client_url = $2, dbt_webhook_id = '', hmac_secret_credential_id = '' WHERE id = $1",
        )
        .bind(subscription_id)
        .bind(client_url)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Subscriptions of one connection, by job.
    pub async fn list_subscriptions(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<Vec<SubscriptionRecord>, DbtCloudError> {
        let rows: Vec<SubscriptionRow> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM dbt_subscriptions \
             WHERE workspace_id = $1 AND connection_id = $2 ORDER BY job_id"
        ))
        .bind(workspace_id)
        .bind(connection_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(subscription_of).collect())
    }

    /// Subscriptions of a workspace with their connection's account, by account and job.
    pub async fn workspace_subscriptions(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<(i64, SubscriptionRecord)>, DbtCloudError> {
        let rows: Vec<AccountSubscriptionRow> =
            sqlx::query_as(
                "SELECT c.account_id, s.id, s.workspace_id, s.connection_id, s.job_id, s.dbt_webhook_id, \
                 s.hmac_secret_credential_id, s.created_at_ms, s.status, s.client_url \
                 FROM dbt_subscriptions s JOIN dbt_connections c ON c.id = s.connection_id AND c.workspace_id = s.workspace_id \
                 WHERE s.workspace_id = $1 ORDER BY c.account_id, s.job_id, s.id",
            )
            .bind(workspace_id)
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(account_id, id, ws, conn, job, hook, cred, at, status, url)| {
                    (
                        account_id,
                        subscription_of((id, ws, conn, job, hook, cred, at, status, url)),
                    )
                },
            )
            .collect())
    }

    /// Every (workspace, account, job) some subscription exists for.
    pub async fn subscribed_jobs(&self) -> Result<Vec<super::JobKey>, DbtCloudError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT DISTINCT s.workspace_id, c.account_id, s.job_id FROM dbt_subscriptions s \
             JOIN dbt_connections c ON c.id = s.connection_id AND c.workspace_id = s.workspace_id",
        )
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(workspace_id, account_id, job_id)| super::JobKey {
                workspace_id,
                account_id,
                job_id,
            })
            .collect())
    }

    /// Subscriptions of the workspace's connections on `account_id` for `job_id`.
    pub async fn subscriptions_for(
        &self,
        key: &super::JobKey,
    ) -> Result<Vec<SubscriptionRecord>, DbtCloudError> {
        let rows: Vec<SubscriptionRow> = sqlx::query_as(
            "SELECT s.id, s.workspace_id, s.connection_id, s.job_id, s.dbt_webhook_id, s.hmac_secret_credential_id, \
             s.created_at_ms, s.status, s.client_url FROM dbt_subscriptions s \
             JOIN dbt_connections c ON c.id = s.connection_id AND c.workspace_id = s.workspace_id \
             WHERE s.workspace_id = $1 AND c.account_id = $2 AND s.job_id = $3 ORDER BY s.id",
        )
        .bind(&key.workspace_id)
        .bind(key.account_id)
        .bind(key.job_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(subscription_of).collect())
    }

    /// Removes a subscription; false when it did not exist in the workspace.
    pub async fn delete_subscription(
        &self,
        workspace_id: &str,
        subscription_id: &str,
    ) -> Result<bool, DbtCloudError> {
        let deleted =
            sqlx::query("DELETE FROM dbt_subscriptions WHERE workspace_id = $1 AND id = $2")
                .bind(workspace_id)
                .bind(subscription_id)
                .execute(self.db.pool())
                .await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// The active subscription a webhook URL names, with its connection's account.
    pub async fn webhook_target(
        &self,
        subscription_id: &str,
    ) -> Result<Option<WebhookTarget>, DbtCloudError> {
        let row: Option<TargetRow> = sqlx::query_as(
            "SELECT s.id, s.workspace_id, s.connection_id, c.account_id, s.job_id, s.dbt_webhook_id, \
             s.hmac_secret_credential_id FROM dbt_subscriptions s \
             JOIN dbt_connections c ON c.id = s.connection_id AND c.workspace_id = s.workspace_id \
             WHERE s.id = $1 AND s.status = 'active'",
        )
        .bind(subscription_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(
            |(
                subscription_id,
                workspace_id,
                connection_id,
                account_id,
                job_id,
                dbt_webhook_id,
                hmac_secret_credential_id,
            )| WebhookTarget {
                subscription_id,
                workspace_id,
                connection_id,
                account_id,
                job_id,
                dbt_webhook_id,
                hmac_secret_credential_id,
            },
        ))
    }
}
