//! Webhook subscriptions Backflow created in dbt Cloud, one per (connection, job). The
//! webhook endpoint finds a delivery's subscription by the id in its URL and learns from
//! it which workspace, account and job the delivery is for, and which secret signs it.

use super::ConnectionStore;
use crate::error::DbtCloudError;

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

type SubscriptionRow = (String, String, String, i64, String, String, i64);
type TargetRow = (String, String, String, i64, i64, String, String);

const SUBSCRIPTION_COLUMNS: &str =
    "id, workspace_id, connection_id, job_id, dbt_webhook_id, hmac_secret_credential_id, created_at_ms";

fn subscription_of(row: SubscriptionRow) -> SubscriptionRecord {
    let (
        id,
        workspace_id,
        connection_id,
        job_id,
        dbt_webhook_id,
        hmac_secret_credential_id,
        created_at_ms,
    ) = row;
    SubscriptionRecord {
        id,
        workspace_id,
        connection_id,
        job_id,
        dbt_webhook_id,
        hmac_secret_credential_id,
        created_at_ms,
    }
}

impl ConnectionStore {
    /// Stores a subscription; `AlreadyExists` when the connection already has one for the job.
    pub async fn create_subscription(
        &self,
        record: &SubscriptionRecord,
    ) -> Result<(), DbtCloudError> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO dbt_subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.connection_id)
        .bind(record.job_id)
        .bind(&record.dbt_webhook_id)
        .bind(&record.hmac_secret_credential_id)
        .bind(record.created_at_ms)
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

    /// The subscription a webhook URL names, with its connection's account.
    pub async fn webhook_target(
        &self,
        subscription_id: &str,
    ) -> Result<Option<WebhookTarget>, DbtCloudError> {
        let row: Option<TargetRow> = sqlx::query_as(
            "SELECT s.id, s.workspace_id, s.connection_id, c.account_id, s.job_id, s.dbt_webhook_id, \
             s.hmac_secret_credential_id FROM dbt_subscriptions s \
             JOIN dbt_connections c ON c.id = s.connection_id AND c.workspace_id = s.workspace_id \
             WHERE s.id = $1",
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
