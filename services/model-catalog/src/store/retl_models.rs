//! Reverse ETL models: a named choice of dbt model and primary key. Creating or
//! deleting one is announced (`evt.catalog.model.changed.<id>`) through the outbox.

use super::CatalogStore;
use crate::error::{not_found, CatalogError};
use backflow_proto::catalog::v1 as pb;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetlModelRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub connection_id: String,
    pub model_unique_id: String,
    pub primary_key: Vec<String>,
    pub created_at_ms: i64,
}

impl RetlModelRecord {
    pub fn to_proto(&self) -> pb::RetlModel {
        pb::RetlModel {
            id: self.id.clone(),
            workspace_id: self.workspace_id.clone(),
            name: self.name.clone(),
            connection_id: self.connection_id.clone(),
            model_unique_id: self.model_unique_id.clone(),
            primary_key: self.primary_key.clone(),
            created_at_unix_ms: self.created_at_ms,
            ..Default::default()
        }
    }
}

type RetlRow = (String, String, String, String, String, String, i64);
const RETL_COLUMNS: &str =
    "id, workspace_id, name, connection_id, model_unique_id, primary_key, created_at_ms";

fn record_of(row: RetlRow) -> Result<RetlModelRecord, CatalogError> {
    let (id, workspace_id, name, connection_id, model_unique_id, primary_key, created_at_ms) = row;
    let primary_key = serde_json::from_str(&primary_key)
        .map_err(|err| CatalogError::Corrupt(format!("primary key of retl model {id}: {err}")))?;
    Ok(RetlModelRecord {
        id,
        workspace_id,
        name,
        connection_id,
        model_unique_id,
        primary_key,
        created_at_ms,
    })
}

impl CatalogStore {
    pub async fn create_retl_model(&self, record: &RetlModelRecord) -> Result<(), CatalogError> {
        let primary_key = serde_json::to_string(&record.primary_key)
            .map_err(|err| CatalogError::InvalidArgument(err.to_string()))?;
        let mut tx = self.db.begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO retl_models ({RETL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.name)
        .bind(&record.connection_id)
        .bind(&record.model_unique_id)
        .bind(primary_key)
        .bind(record.created_at_ms)
        .execute(&mut *tx)
        .await;
        if let Err(error) = inserted {
            if backflow_platform::db::is_unique_violation(&error) {
                return Err(CatalogError::AlreadyExists {
                    kind: "retl model",
                    name: record.name.clone(),
                });
            }
            return Err(error.into());
        }
        self.announce_retl_model(&mut tx, record, false).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    pub async fn get_retl_model(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<RetlModelRecord, CatalogError> {
        let row: Option<RetlRow> = sqlx::query_as(&format!(
            "SELECT {RETL_COLUMNS} FROM retl_models WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(record_of)
            .transpose()?
            .ok_or_else(|| not_found("retl model", id))
    }

    pub async fn list_retl_models(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<RetlModelRecord>, CatalogError> {
        let rows: Vec<RetlRow> = sqlx::query_as(&format!(
            "SELECT {RETL_COLUMNS} FROM retl_models WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(record_of).collect()
    }

    pub async fn delete_retl_model(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<(), CatalogError> {
        let record = self.get_retl_model(workspace_id, id).await?;
        let mut tx = self.db.begin().await?;
        sqlx::query("DELETE FROM retl_models WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.announce_retl_model(&mut tx, &record, true).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    async fn announce_retl_model(
        &self,
        tx: &mut backflow_platform::db::Transaction<'_>,
        record: &RetlModelRecord,
        deleted: bool,
    ) -> Result<(), CatalogError> {
        let event = pb::RetlModelChangedEvent {
            workspace_id: record.workspace_id.clone(),
            model: Some(record.to_proto()),
            deleted,
        };
        self.outbox
            .enqueue(
                tx,
                &backflow_proto::subjects::RETL_MODEL_CHANGED.for_id(&record.id),
                &event,
            )
            .await?;
        Ok(())
    }
}
