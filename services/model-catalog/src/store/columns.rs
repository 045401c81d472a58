//! Columns the warehouse described for a model (those without YAML columns), cached per
//! (connection, commit, model, source): a commit's model does not change, so its
//! description only goes stale if the warehouse relation changes, which `refresh` covers.

use super::CatalogStore;
use crate::error::CatalogError;
use serde::{Deserialize, Serialize};

/// One described column, as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedColumn {
    pub name: String,
    /// The warehouse's own type name.
    pub warehouse_type: String,
    /// The canonical Arrow type's name.
    pub arrow_type: String,
    pub nullable: bool,
}

/// Which model a description belongs to.
#[derive(Debug, Clone, Copy)]
pub struct DescriptionKey<'a> {
    pub workspace_id: &'a str,
    pub connection_id: &'a str,
    pub commit_sha: &'a str,
    pub unique_id: &'a str,
    pub source_id: &'a str,
}

impl CatalogStore {
    pub async fn cached_columns(
        &self,
        key: DescriptionKey<'_>,
    ) -> Result<Option<Vec<DescribedColumn>>, CatalogError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT columns FROM model_column_descriptions WHERE workspace_id = $1 AND connection_id = $2 AND commit_sha = $3 AND unique_id = $4 AND source_id = $5",
        )
        .bind(key.workspace_id)
        .bind(key.connection_id)
        .bind(key.commit_sha)
        .bind(key.unique_id)
        .bind(key.source_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|(columns,)| {
            serde_json::from_str(&columns).map_err(|err| {
                CatalogError::Corrupt(format!("described columns of {}: {err}", key.unique_id))
            })
        })
        .transpose()
    }

    pub async fn cache_columns(
        &self,
        key: DescriptionKey<'_>,
        columns: &[DescribedColumn],
    ) -> Result<(), CatalogError> {
        let encoded = serde_json::to_string(columns)
            .map_err(|err| CatalogError::InvalidArgument(err.to_string()))?;
        sqlx::query(
            "INSERT INTO model_column_descriptions (connection_id, commit_sha, unique_id, source_id, workspace_id, columns, described_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (connection_id, commit_sha, unique_id, source_id) DO UPDATE SET columns = $6, described_at_ms = $7",
        )
        .bind(key.connection_id)
        .bind(key.commit_sha)
        .bind(key.unique_id)
        .bind(key.source_id)
        .bind(key.workspace_id)
        .bind(encoded)
        .bind(backflow_platform::now_unix_ms())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}
