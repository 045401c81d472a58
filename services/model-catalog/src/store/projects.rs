//! The project projection: the catalog's copy of each git-sync connection, applied
//! from events exactly once (inbox) and never moved backwards by a stale event. Its
//! status comes from run outcomes (`snapshot.ready`, `sync.failed`): the newest run
//! wins (run ids are time-ordered), whatever order the events arrive in.

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
    pub status: ProjectStatus,
    pub last_run_id: String,
    pub last_error: String,
    pub last_attempted_commit: String,
    pub error_count: i64,
}

/// Whether the project loads (stored as `backflow.catalog.v1.ProjectStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectStatus {
    NeverSynced = 1,
    Ok = 2,
    Failing = 3,
}

impl ProjectStatus {
    fn from_stored(value: i64) -> Self {
        match value {
            2 => Self::Ok,
            3 => Self::Failing,
            _ => Self::NeverSynced,
        }
    }
}

/// The outcome of one git-sync run, as the project records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    pub run_id: String,
    pub status: ProjectStatus,
    pub error: String,
    pub commit_sha: String,
    pub error_count: i64,
}

impl RunOutcome {
    /// A successful run: its file/node errors are summarised in `last_error`.
    pub fn succeeded(run_id: &str, commit_sha: &str, node_errors: &[String]) -> Self {
        let error = match node_errors {
            [] => String::new(),
            [only] => only.clone(),
            [first, rest @ ..] => format!("{} errors; first: {first}", rest.len() + 1),
        };
        Self {
            run_id: run_id.to_string(),
            status: ProjectStatus::Ok,
            error,
            commit_sha: commit_sha.to_string(),
            error_count: i64::try_from(node_errors.len()).unwrap_or(i64::MAX),
        }
    }
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
    i64,
    String,
    String,
    String,
    i64,
);

const PROJECT_COLUMNS: &str = "connection_id, workspace_id, name, repository_url, branch, default_schema, settings_version, latest_commit_sha, model_count, deleted, updated_at_ms, status, last_run_id, last_error, last_attempted_commit, error_count";
/// Columns written when a project is first seen (the rest keep their defaults).
const NEW_PROJECT_COLUMNS: &str = "connection_id, workspace_id, name, repository_url, branch, default_schema, settings_version, latest_commit_sha, model_count, deleted, updated_at_ms";

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
        status,
        last_run_id,
        last_error,
        last_attempted_commit,
        error_count,
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
        status: ProjectStatus::from_stored(status),
        last_run_id,
        last_error,
        last_attempted_commit,
        error_count,
    }
}

/// Records a run's outcome on its project unless a newer run's is there already.
/// `NotFound` if the project is unknown (its connection event has not arrived yet).
pub(crate) async fn write_run_outcome(
    tx: &mut backflow_platform::db::Transaction<'_>,
    workspace_id: &str,
    connection_id: &str,
    outcome: &RunOutcome,
) -> Result<bool, CatalogError> {
    let done = sqlx::query(
        "UPDATE projects SET status = $1, last_run_id = $2, last_error = $3, last_attempted_commit = $4, \
         error_count = CASE WHEN $1 = 2 THEN $5 ELSE error_count END, updated_at_ms = $6 \
         WHERE workspace_id = $7 AND connection_id = $8 AND last_run_id <= $2",
    )
    .bind(outcome.status as i64)
    .bind(&outcome.run_id)
    .bind(&outcome.error)
    .bind(&outcome.commit_sha)
    .bind(outcome.error_count)
    .bind(backflow_platform::now_unix_ms())
    .bind(workspace_id)
    .bind(connection_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(true);
    }
    let known: Option<(i64,)> = sqlx::query_as(
        "SELECT deleted FROM projects WHERE workspace_id = $1 AND connection_id = $2",
    )
    .bind(workspace_id)
    .bind(connection_id)
    .fetch_optional(&mut **tx)
    .await?;
    match known {
        Some(_) => Ok(false),
        None => Err(not_found("connection", connection_id)),
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
                    "INSERT INTO projects ({NEW_PROJECT_COLUMNS}, warehouse_source_id) VALUES ($1, $2, $3, $4, $5, $6, $7, '', 0, $8, $9, $10) \
                     ON CONFLICT (connection_id) DO UPDATE SET name = $3, repository_url = $4, branch = $5, default_schema = $6, settings_version = $7, deleted = $8, updated_at_ms = $9, warehouse_source_id = $10"
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
                .bind(&settings.warehouse_source_id)
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

    /// Applies a `sync.failed` event once: the project is failing at the commit tried.
    pub async fn apply_sync_failed(
        &self,
        consumer: &str,
        event_id: &str,
        event: &gitsync::SyncFailedEvent,
    ) -> Result<Applied, CatalogError> {
        let mut tx = self.db.begin().await?;
        if !backflow_platform::inbox::claim(&mut tx, consumer, event_id).await? {
            tx.rollback().await?;
            return Ok(Applied::Duplicate);
        }
        let outcome = RunOutcome {
            run_id: event.run_id.clone(),
            status: ProjectStatus::Failing,
            error: event.error.clone(),
            commit_sha: event.commit_sha.clone(),
            error_count: 0,
        };
        let applied =
            write_run_outcome(&mut tx, &event.workspace_id, &event.connection_id, &outcome).await?;
        tx.commit().await?;
        Ok(if applied {
            Applied::Applied
        } else {
            Applied::Stale
        })
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
            .ok_or_else(|| not_found("connection", connection_id))
    }

    /// The warehouse source a connection names (from its newest connection event);
    /// `NotFound` for an unknown or deleted connection, `FailedPrecondition` if it names none.
    pub async fn project_source_id(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<String, CatalogError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT warehouse_source_id FROM projects WHERE workspace_id = $1 AND connection_id = $2 AND deleted = 0",
        )
        .bind(workspace_id)
        .bind(connection_id)
        .fetch_optional(self.db.pool())
        .await?;
        match row {
            None => Err(not_found("connection", connection_id)),
            Some((source_id,)) if source_id.is_empty() => Err(CatalogError::FailedPrecondition(
                format!("git connection {connection_id} names no warehouse source"),
            )),
            Some((source_id,)) => Ok(source_id),
        }
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
