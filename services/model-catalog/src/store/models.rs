//! dbt model versions: every model of a connection at every synced commit, so a model
//! can be read as it is now or as it was at any commit.

use super::CatalogStore;
use crate::error::{not_found, CatalogError};
use backflow_proto::catalog::v1 as pb;
use prost::Message;

impl CatalogStore {
    /// Records the models of `connection_id` at `commit_sha` and makes it the latest
    /// commit of the project. Re-recording the same commit replaces its models.
    pub async fn record_snapshot(
        &self,
        workspace_id: &str,
        connection_id: &str,
        commit_sha: &str,
        models: &[pb::Model],
    ) -> Result<(), CatalogError> {
        self.record_snapshot_once(None, workspace_id, connection_id, commit_sha, models)
            .await
            .map(|_| ())
    }

    /// Like [`Self::record_snapshot`], claiming `(consumer, event_id)` in the inbox in
    /// the same transaction; returns `false` (and changes nothing) if already handled.
    pub async fn record_snapshot_once(
        &self,
        claim: Option<(&str, &str)>,
        workspace_id: &str,
        connection_id: &str,
        commit_sha: &str,
        models: &[pb::Model],
    ) -> Result<bool, CatalogError> {
        self.record_run_snapshot(claim, workspace_id, connection_id, commit_sha, models, None)
            .await
    }

    /// [`Self::record_snapshot_once`] for a successful run: the project's status
    /// follows the run's outcome in the same transaction.
    #[tracing::instrument(name = "catalog.record_snapshot", skip_all, fields(connection_id = %connection_id, commit = %commit_sha))]
    pub async fn record_run_snapshot(
        &self,
        claim: Option<(&str, &str)>,
        workspace_id: &str,
        connection_id: &str,
        commit_sha: &str,
        models: &[pb::Model],
        outcome: Option<&super::RunOutcome>,
    ) -> Result<bool, CatalogError> {
        let mut tx = self.db.begin().await?;
        if let Some((consumer, event_id)) = claim {
            if !backflow_platform::inbox::claim(&mut tx, consumer, event_id).await? {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        let project: Option<(i64,)> = sqlx::query_as(
            "SELECT deleted FROM projects WHERE workspace_id = $1 AND connection_id = $2",
        )
        .bind(workspace_id)
        .bind(connection_id)
        .fetch_optional(&mut *tx)
        .await?;
        if project.is_none() {
            return Err(not_found("connection", connection_id));
        }
        sqlx::query("DELETE FROM model_versions WHERE connection_id = $1 AND commit_sha = $2")
            .bind(connection_id)
            .bind(commit_sha)
            .execute(&mut *tx)
            .await?;
        for model in models {
            sqlx::query(
                "INSERT INTO model_versions (connection_id, commit_sha, unique_id, workspace_id, name, checksum, document) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(connection_id)
            .bind(commit_sha)
            .bind(&model.unique_id)
            .bind(workspace_id)
            .bind(&model.name)
            .bind(&model.checksum)
            .bind(model.encode_to_vec())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE projects SET latest_commit_sha = $1, model_count = $2, updated_at_ms = $3 WHERE connection_id = $4",
        )
        .bind(commit_sha)
        .bind(i64::try_from(models.len()).unwrap_or(i64::MAX))
        .bind(backflow_platform::now_unix_ms())
        .bind(connection_id)
        .execute(&mut *tx)
        .await?;
        if let Some(outcome) = outcome {
            super::projects::write_run_outcome(&mut tx, workspace_id, connection_id, outcome)
                .await?;
        }
        let changed = self
            .follow_snapshot(&mut tx, workspace_id, connection_id, commit_sha, models)
            .await?;
        tx.commit().await?;
        if changed > 0 {
            self.outbox.committed();
        }
        Ok(true)
    }

    /// Whether a consumer already handled a message (to skip expensive work early).
    pub async fn already_handled(
        &self,
        consumer: &str,
        message_id: &str,
    ) -> Result<bool, CatalogError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT handled_at_ms FROM platform_inbox WHERE consumer = $1 AND message_id = $2",
        )
        .bind(consumer)
        .bind(message_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.is_some())
    }

    /// One page of models at `commit_sha` (latest synced commit when empty), ordered
    /// by unique id, starting after `after_unique_id`.
    pub async fn list_models(
        &self,
        workspace_id: &str,
        connection_id: &str,
        commit_sha: &str,
        after_unique_id: &str,
        limit: i64,
    ) -> Result<(String, Vec<pb::Model>), CatalogError> {
        let commit = self
            .resolve_commit(workspace_id, connection_id, commit_sha)
            .await?;
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT document FROM model_versions WHERE workspace_id = $1 AND connection_id = $2 AND commit_sha = $3 AND unique_id > $4 ORDER BY unique_id LIMIT $5",
        )
        .bind(workspace_id)
        .bind(connection_id)
        .bind(&commit)
        .bind(after_unique_id)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        let models = rows
            .into_iter()
            .map(|(document,)| decode(&document))
            .collect::<Result<_, _>>()?;
        Ok((commit, models))
    }

    pub async fn get_model(
        &self,
        workspace_id: &str,
        connection_id: &str,
        unique_id: &str,
        commit_sha: &str,
    ) -> Result<pb::Model, CatalogError> {
        let commit = self
            .resolve_commit(workspace_id, connection_id, commit_sha)
            .await?;
        let row: Option<(Vec<u8>,)> = sqlx::query_as(
            "SELECT document FROM model_versions WHERE workspace_id = $1 AND connection_id = $2 AND commit_sha = $3 AND unique_id = $4",
        )
        .bind(workspace_id)
        .bind(connection_id)
        .bind(&commit)
        .bind(unique_id)
        .fetch_optional(self.db.pool())
        .await?;
        match row {
            Some((document,)) => decode(&document),
            None => Err(not_found("model", unique_id)),
        }
    }

    /// The commit to read: the latest synced one when `commit_sha` is empty, else the
    /// commit it names in full or by a prefix of at least 4 hex digits (the 12 the CLI's
    /// tables show). A commit the catalog holds no models of for the connection is
    /// [`CatalogError::CommitNotFound`] (an unknown connection `NotFound`); a prefix that
    /// fits two commits is refused.
    async fn resolve_commit(
        &self,
        workspace_id: &str,
        connection_id: &str,
        commit_sha: &str,
    ) -> Result<String, CatalogError> {
        let project = self.get_project(workspace_id, connection_id).await?;
        let wanted = commit_sha.trim();
        if wanted.is_empty() {
            return Ok(project.latest_commit_sha);
        }
        if project.latest_commit_sha == wanted {
            return Ok(project.latest_commit_sha);
        }
        let exact: Option<(String,)> = sqlx::query_as(
            "SELECT commit_sha FROM model_versions WHERE workspace_id = $1 AND connection_id = $2 AND commit_sha = $3 LIMIT 1",
        )
        .bind(workspace_id)
        .bind(connection_id)
        .bind(wanted)
        .fetch_optional(self.db.pool())
        .await?;
        if let Some((commit,)) = exact {
            return Ok(commit);
        }
        let not_found = || CatalogError::CommitNotFound {
            commit: wanted.to_string(),
            connection_id: connection_id.to_string(),
        };
        if wanted.len() < 4 || !wanted.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let prefix = wanted.to_ascii_lowercase();
        if project.latest_commit_sha.starts_with(&prefix) {
            return Ok(project.latest_commit_sha);
        }
        // hex digits only, so the pattern holds no LIKE wildcard but its own
        let found: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT commit_sha FROM model_versions WHERE workspace_id = $1 AND connection_id = $2 AND commit_sha LIKE $3 ORDER BY commit_sha LIMIT 2",
        )
        .bind(workspace_id)
        .bind(connection_id)
        .bind(format!("{prefix}%"))
        .fetch_all(self.db.pool())
        .await?;
        match found.as_slice() {
            [(only,)] => Ok(only.clone()),
            [] => Err(not_found()),
            _ => Err(CatalogError::InvalidArgument(format!(
                "commit_sha {wanted} is the start of more than one commit of connection {connection_id}; give more digits"
            ))),
        }
    }
}

fn decode(document: &[u8]) -> Result<pb::Model, CatalogError> {
    pb::Model::decode(document)
        .map_err(|err| CatalogError::Corrupt(format!("model document: {err}")))
}
