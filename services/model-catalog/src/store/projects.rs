//! The project projection: the catalog's copy of each git-sync connection, applied
//! from events exactly once (inbox) and never moved backwards by a stale event.

use super::CatalogStore;
use crate::error::{not_found, CatalogError};
use backflow_proto::gitsync::v1 as gitsync;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub connection_id: String,
    pub workspace_id: String,
    pub name: String,
    pub repository_url: String,
    pub branch: String,
    pub default_schema: String,
    pub settings_version: i64,
    pub latest_commit_sha: String,
    pub model_count: i64,
    pub deleted: bool,
    pub updated_at_ms: i64,
}

type ProjectRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    i64,
);

const PROJECT_COLUMNS: &str = "connection_id, workspace_id, name, repository_url, branch, default_schema, settings_version, latest_commit_sha, model_count, deleted, updated_at_ms";

fn record_of(row: ProjectRow) -> ProjectRecord {
    let (
        connection_id,
        workspace_id,
        name,
        repository_url,
        branch,
        default_schema,
        settings_version,
        latest_commit_sha,
        model_count,
        deleted,
        updated_at_ms,
    ) = row;
    ProjectRecord {
        connection_id,
        workspace_id,
        name,
        repository_url,
        branch,
        default_schema,
        settings_version,
        latest_commit_sha,
        model_count,
        deleted: deleted != 0,
        updated_at_ms,
    }
}

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// The same event was handled before (redelivery or republish).
    Duplicate,
    /// An older settings version than the one stored; ignored.
    Stale,
}

impl CatalogStore {
    /// Applies a git-sync connection event, exactly once per `event_id`.
    pub async fn apply_connection_event(
        &self,
        consumer: &str,
        event_id: &str,
        event: &gitsync::ConnectionChangedEvent,
    ) -> Result<Applied, CatalogError> {
        let connection = event
            .connection
            .as_ref()
            .ok_or_else(|| CatalogError::InvalidArgument("event without connection".into()))?;
        let settings = connection.settings.clone().unwrap_or_default();
        let mut tx = self.db.begin().await?;
        if !backflow_platform::inbox::claim(&mut tx, consumer, event_id).await? {
            tx.rollback().await?;
            return Ok(Applied::Duplicate);
        }
        let stored: Option<(i64,)> =
            sqlx::query_as("SELECT settings_version FROM projects WHERE connection_id = $1")
                .bind(&connection.id)
                .fetch_optional(&mut *tx)
                .await?;
        let deleted = event.change == gitsync::ConnectionChange::Deleted as i32;
        let outcome = match stored {
            Some((version,)) if version > connection.settings_version => Applied::Stale,
            _ => {
                sqlx::query(&format!(
                    "INSERT INTO projects ({PROJECT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, '', 0, $8, $9) \
                     ON CONFLICT (connection_id) DO UPDATE SET name = $3, repository_url = $4, branch = $5, default_schema = $6, settings_version = $7, deleted = $8, updated_at_ms = $9"
                ))
                .bind(&connection.id)
                .bind(&event.workspace_id)
                .bind(&connection.name)
                .bind(&settings.repository_url)
                .bind(&settings.branch)
                .bind(&settings.default_schema)
                .bind(connection.settings_version)
                .bind(i64::from(deleted))
                .bind(backflow_platform::now_unix_ms())
                .execute(&mut *tx)
                .await?;
                Applied::Applied
            }
        };
        sqlx::query(
            "INSERT INTO project_changes (event_id, connection_id, change, settings_version, applied_at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(event_id)
        .bind(&connection.id)
        .bind(event.change)
        .bind(connection.settings_version)
        .bind(backflow_platform::now_unix_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// How many connection events were applied for a connection (audit and tests).
    pub async fn project_change_count(&self, connection_id: &str) -> Result<i64, CatalogError> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM project_changes WHERE connection_id = $1")
                .bind(connection_id)
                .fetch_one(self.db.pool())
                .await?;
        Ok(count)
    }

    pub async fn get_project(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<ProjectRecord, CatalogError> {
        let row: Option<ProjectRow> = sqlx::query_as(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE workspace_id = $1 AND connection_id = $2"
        ))
        .bind(workspace_id)
        .bind(connection_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(record_of)
            .ok_or_else(|| not_found("project", connection_id))
    }

    /// Live (not deleted) projects of a workspace.
    pub async fn list_projects(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<ProjectRecord>, CatalogError> {
        let rows: Vec<ProjectRow> = sqlx::query_as(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE workspace_id = $1 AND deleted = 0 ORDER BY name"
        ))
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(record_of).collect())
    }
}
