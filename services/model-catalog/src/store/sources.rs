//! Warehouse sources: where models are read from (settings here, secrets elsewhere).

use super::CatalogStore;
use crate::error::CatalogError;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub kind: i32,
    pub settings: BTreeMap<String, String>,
    pub credential_id: String,
    pub created_at_ms: i64,
}

type SourceRow = (String, String, String, i32, String, String, i64);

fn record_of(row: SourceRow) -> Result<SourceRecord, CatalogError> {
    let (id, workspace_id, name, kind, settings, credential_id, created_at_ms) = row;
    let settings = serde_json::from_str(&settings)
        .map_err(|err| CatalogError::Corrupt(format!("settings of source {id}: {err}")))?;
    Ok(SourceRecord {
        id,
        workspace_id,
        name,
        kind,
        settings,
        credential_id,
        created_at_ms,
    })
}

impl CatalogStore {
    /// Records a source; secret-like settings are refused (they belong in credentials).
    pub async fn create_source(&self, record: &SourceRecord) -> Result<(), CatalogError> {
        crate::source_settings::check(&record.settings)
            .map_err(|err| CatalogError::InvalidArgument(err.to_string()))?;
        let settings = serde_json::to_string(&record.settings)
            .map_err(|err| CatalogError::InvalidArgument(err.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO warehouse_sources (id, workspace_id, name, kind, settings, credential_id, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.name)
        .bind(record.kind)
        .bind(settings)
        .bind(&record.credential_id)
        .bind(record.created_at_ms)
        .execute(self.db.pool())
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if backflow_platform::db::is_unique_violation(&error) => {
                Err(CatalogError::AlreadyExists {
                    kind: "warehouse source",
                    name: record.name.clone(),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    pub async fn list_sources(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<SourceRecord>, CatalogError> {
        let rows: Vec<SourceRow> = sqlx::query_as(
            "SELECT id, workspace_id, name, kind, settings, credential_id, created_at_ms FROM warehouse_sources WHERE workspace_id = $1 ORDER BY name",
        )
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(record_of).collect()
    }
}
