//! The in-use guard's projection: which syncs use which Reverse ETL model, learned
//! from the scheduler's `evt.retl.sync.changed.<sync>` events (never from its
//! database). Each event is applied once (inbox) and only if newer than what is stored
//! (`version`). Applying an event locks the model's row first, like the guard does, so
//! an enabling event and a delete of the same model are serialised: either the delete
//! sees the enabled sync and is refused, or the event finds the model gone and records
//! the sync as not using it. Never a deleted model with an enabled sync.

use super::retl_models::RetlModelRecord;
use super::CatalogStore;
use crate::error::CatalogError;
use backflow_platform::db::Transaction;
use backflow_proto::retl::v1 as retl;

/// What applying one sync event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageApplied {
    Applied,
    /// Handled before (redelivery or republish).
    Duplicate,
    /// Older than the stored version of that sync; dropped.
    Stale,
    /// The model does not exist (deleted, or another workspace's): recorded as unused.
    ModelMissing,
}

/// Enabled syncs using a model: (sync id, sync name), by name.
pub(super) async fn enabled_syncs(
    tx: &mut Transaction<'_>,
    workspace_id: &str,
    retl_model_id: &str,
) -> Result<Vec<(String, String)>, CatalogError> {
    Ok(sqlx::query_as(
        "SELECT sync_id, sync_name FROM retl_model_usage WHERE workspace_id = $1 AND retl_model_id = $2 AND enabled = 1 ORDER BY sync_name, sync_id",
    )
    .bind(workspace_id)
    .bind(retl_model_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// FAILED_PRECONDITION naming the enabled syncs, if any use the model.
pub(super) async fn refuse_if_used(
    tx: &mut Transaction<'_>,
    record: &RetlModelRecord,
    verb: &str,
) -> Result<(), CatalogError> {
    let syncs = enabled_syncs(tx, &record.workspace_id, &record.id).await?;
    if syncs.is_empty() {
        return Ok(());
    }
    let names = syncs
        .iter()
        .map(|(id, name)| format!("{name} ({id})"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(CatalogError::FailedPrecondition(format!(
        "retl model {} is used by enabled sync{} {names}; pause or delete {} before it can be {verb}",
        record.name,
        if syncs.len() == 1 { "" } else { "s" },
        if syncs.len() == 1 { "it" } else { "them" },
    )))
}

impl CatalogStore {
    /// Applies a `SyncChangedEvent` once per `message_id`, newest version per sync.
    pub async fn apply_sync_changed(
        &self,
        consumer: &str,
        message_id: &str,
        event: &retl::SyncChangedEvent,
    ) -> Result<UsageApplied, CatalogError> {
        if event.sync_id.trim().is_empty() || event.workspace_id.trim().is_empty() {
            return Err(CatalogError::InvalidArgument(
                "sync event without sync_id or workspace_id".into(),
            ));
        }
        let mut tx = self.db.begin().await?;
        if !backflow_platform::inbox::claim(&mut tx, consumer, message_id).await? {
            tx.rollback().await?;
            return Ok(UsageApplied::Duplicate);
        }
        // The same row lock the guard takes (see `lock_retl_model`).
        let model_exists = sqlx::query(
            "UPDATE retl_models SET updated_at_ms = updated_at_ms WHERE workspace_id = $1 AND id = $2",
        )
        .bind(&event.workspace_id)
        .bind(&event.retl_model_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let enabled = event.enabled && !event.deleted && model_exists;
        let used_columns = serde_json::to_string(&event.used_columns)
            .map_err(|err| CatalogError::InvalidArgument(err.to_string()))?;
        let written = sqlx::query(
            "INSERT INTO retl_model_usage (sync_id, workspace_id, retl_model_id, sync_name, enabled, deleted, used_columns, version, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (sync_id) DO UPDATE SET workspace_id = $2, retl_model_id = $3, sync_name = $4, enabled = $5, deleted = $6, used_columns = $7, version = $8, updated_at_ms = $9 \
             WHERE retl_model_usage.version < $8",
        )
        .bind(&event.sync_id)
        .bind(&event.workspace_id)
        .bind(&event.retl_model_id)
        .bind(&event.sync_name)
        .bind(i64::from(enabled))
        .bind(i64::from(event.deleted))
        .bind(used_columns)
        .bind(event.version)
        .bind(backflow_platform::now_unix_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if written.rows_affected() == 0 {
            return Ok(UsageApplied::Stale);
        }
        Ok(if model_exists || !event.enabled || event.deleted {
            UsageApplied::Applied
        } else {
            UsageApplied::ModelMissing
        })
    }

    /// Enabled syncs using a model: (sync id, sync name).
    pub async fn syncs_using(
        &self,
        workspace_id: &str,
        retl_model_id: &str,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        Ok(sqlx::query_as(
            "SELECT sync_id, sync_name FROM retl_model_usage WHERE workspace_id = $1 AND retl_model_id = $2 AND enabled = 1 ORDER BY sync_name, sync_id",
        )
        .bind(workspace_id)
        .bind(retl_model_id)
        .fetch_all(self.db.pool())
        .await?)
    }

    /// Enabled usages whose model no longer exists (the guard's invariant: always 0).
    pub async fn orphaned_enabled_usages(&self) -> Result<i64, CatalogError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM retl_model_usage u WHERE u.enabled = 1 AND NOT EXISTS \
             (SELECT 1 FROM retl_models m WHERE m.workspace_id = u.workspace_id AND m.id = u.retl_model_id)",
        )
        .fetch_one(self.db.pool())
        .await?;
        Ok(count)
    }
}
