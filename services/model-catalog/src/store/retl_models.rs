//! Reverse ETL models: a named choice of dbt model, source, query mode and primary key,
//! following the dbt model across commits (status ok / broken). Every change is
//! announced (`evt.catalog.model.changed.<id>`) through the outbox in the same
//! transaction. Updates and deletes go through the in-use guard (see [`super::usage`]):
//! the model's row is locked first, then the enabled syncs are checked, then the
//! write happens, all in one transaction.

use super::CatalogStore;
use crate::error::{not_found, CatalogError};
use crate::retl::query::QueryMode;
use backflow_platform::db::Transaction;
use backflow_proto::catalog::v1 as pb;

/// Whether the Reverse ETL model can run at the commit it follows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RetlHealth {
    #[default]
    Ok,
    Broken {
        reason: String,
        at_commit: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetlModelRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub connection_id: String,
    pub model_unique_id: String,
    pub primary_key: Vec<String>,
    pub created_at_ms: i64,
    pub source_id: String,
    pub query_mode: QueryMode,
    pub health: RetlHealth,
    /// The commit whose dbt model it follows now.
    pub commit_sha: String,
    /// The relation as the adapter renders it at `commit_sha`.
    pub relation_name: String,
    pub updated_at_ms: i64,
}

impl RetlModelRecord {
    /// The wire form; `used_by` are the enabled syncs using it.
    pub fn to_proto_used_by(&self, used_by: Vec<String>) -> pb::RetlModel {
        let (status, broken_reason, broken_at_commit) = match &self.health {
            RetlHealth::Ok => (pb::RetlModelStatus::Ok, String::new(), String::new()),
            RetlHealth::Broken { reason, at_commit } => (
                pb::RetlModelStatus::Broken,
                reason.clone(),
                at_commit.clone(),
            ),
        };
        pb::RetlModel {
            id: self.id.clone(),
            workspace_id: self.workspace_id.clone(),
            name: self.name.clone(),
            connection_id: self.connection_id.clone(),
            model_unique_id: self.model_unique_id.clone(),
            primary_key: self.primary_key.clone(),
            created_at_unix_ms: self.created_at_ms,
            source_id: self.source_id.clone(),
            query_mode: self.query_mode.to_wire() as i32,
            status: status as i32,
            broken_reason,
            broken_at_commit,
            commit_sha: self.commit_sha.clone(),
            used_by_sync_ids: used_by,
            updated_at_unix_ms: self.updated_at_ms,
            relation_name: self.relation_name.clone(),
        }
    }

    pub fn to_proto(&self) -> pb::RetlModel {
        self.to_proto_used_by(Vec::new())
    }
}

/// What an update changes; `None` keeps the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetlModelChange {
    pub name: Option<String>,
    pub primary_key: Option<Vec<String>>,
    pub query_mode: Option<QueryMode>,
}

pub(super) const RETL_COLUMNS: &str = "id, workspace_id, name, connection_id, model_unique_id, primary_key, created_at_ms, \
     source_id, query_mode, status, broken_reason, broken_at_commit, commit_sha, relation_name, updated_at_ms";

#[derive(sqlx::FromRow)]
pub(super) struct RetlRow {
    id: String,
    workspace_id: String,
    name: String,
    connection_id: String,
    model_unique_id: String,
    primary_key: String,
    created_at_ms: i64,
    source_id: String,
    query_mode: i32,
    status: i32,
    broken_reason: String,
    broken_at_commit: String,
    commit_sha: String,
    relation_name: String,
    updated_at_ms: i64,
}

pub(super) fn record_of(row: RetlRow) -> Result<RetlModelRecord, CatalogError> {
    let corrupt = |what: String| CatalogError::Corrupt(format!("retl model {}: {what}", row.id));
    let primary_key = serde_json::from_str(&row.primary_key)
        .map_err(|err| corrupt(format!("primary key: {err}")))?;
    let query_mode = QueryMode::from_wire(row.query_mode).map_err(corrupt)?;
    let health = match pb::RetlModelStatus::try_from(row.status) {
        Ok(pb::RetlModelStatus::Broken) => RetlHealth::Broken {
            reason: row.broken_reason,
            at_commit: row.broken_at_commit,
        },
        Ok(_) => RetlHealth::Ok,
        Err(_) => return Err(corrupt(format!("status {}", row.status))),
    };
    Ok(RetlModelRecord {
        id: row.id,
        workspace_id: row.workspace_id,
        name: row.name,
        connection_id: row.connection_id,
        model_unique_id: row.model_unique_id,
        primary_key,
        created_at_ms: row.created_at_ms,
        source_id: row.source_id,
        query_mode,
        health,
        commit_sha: row.commit_sha,
        relation_name: row.relation_name,
        updated_at_ms: row.updated_at_ms,
    })
}

fn health_columns(health: &RetlHealth) -> (i32, &str, &str) {
    match health {
        RetlHealth::Ok => (pb::RetlModelStatus::Ok as i32, "", ""),
        RetlHealth::Broken { reason, at_commit } => {
            (pb::RetlModelStatus::Broken as i32, reason, at_commit)
        }
    }
}

fn encode_key(primary_key: &[String]) -> Result<String, CatalogError> {
    serde_json::to_string(primary_key).map_err(|err| CatalogError::InvalidArgument(err.to_string()))
}

fn name_taken(error: sqlx::Error, name: &str) -> CatalogError {
    if backflow_platform::db::is_unique_violation(&error) {
        CatalogError::AlreadyExists {
            kind: "reverse etl model",
            name: name.to_string(),
        }
    } else {
        error.into()
    }
}

impl CatalogStore {
    pub async fn create_retl_model(&self, record: &RetlModelRecord) -> Result<(), CatalogError> {
        let primary_key = encode_key(&record.primary_key)?;
        let (status, reason, at_commit) = health_columns(&record.health);
        let mut tx = self.db.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO retl_models ({RETL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.name)
        .bind(&record.connection_id)
        .bind(&record.model_unique_id)
        .bind(primary_key)
        .bind(record.created_at_ms)
        .bind(&record.source_id)
        .bind(record.query_mode.to_wire() as i32)
        .bind(status)
        .bind(reason)
        .bind(at_commit)
        .bind(&record.commit_sha)
        .bind(&record.relation_name)
        .bind(record.updated_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|error| name_taken(error, &record.name))?;
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
            .ok_or_else(|| not_found("reverse etl model", id))
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

    /// Applies `change` unless an enabled sync uses the model (FAILED_PRECONDITION
    /// naming them). Guard and write share one transaction, after locking the row.
    pub async fn update_retl_model(
        &self,
        workspace_id: &str,
        id: &str,
        change: &RetlModelChange,
    ) -> Result<RetlModelRecord, CatalogError> {
        let mut tx = self.db.begin().await?;
        let mut record = lock_retl_model(&mut tx, workspace_id, id).await?;
        super::usage::refuse_if_used(&mut tx, &record, "changed").await?;
        if let Some(name) = &change.name {
            record.name = name.clone();
        }
        if let Some(primary_key) = &change.primary_key {
            record.primary_key = primary_key.clone();
        }
        if let Some(mode) = change.query_mode {
            record.query_mode = mode;
        }
        record.updated_at_ms = backflow_platform::now_unix_ms().max(record.updated_at_ms + 1);
        sqlx::query(
            "UPDATE retl_models SET name = $1, primary_key = $2, query_mode = $3, updated_at_ms = $4 WHERE workspace_id = $5 AND id = $6",
        )
        .bind(&record.name)
        .bind(encode_key(&record.primary_key)?)
        .bind(record.query_mode.to_wire() as i32)
        .bind(record.updated_at_ms)
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|error| name_taken(error, &record.name))?;
        self.announce_retl_model(&mut tx, &record, false).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(record)
    }

    /// Deletes the model unless an enabled sync uses it (FAILED_PRECONDITION naming
    /// them); guard and delete share one transaction, after locking the row.
    pub async fn delete_retl_model(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<(), CatalogError> {
        let mut tx = self.db.begin().await?;
        let record = lock_retl_model(&mut tx, workspace_id, id).await?;
        super::usage::refuse_if_used(&mut tx, &record, "deleted").await?;
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

    /// Writes a new status / commit / relation (from following); announces it if asked.
    pub(super) async fn write_followed(
        &self,
        tx: &mut Transaction<'_>,
        record: &RetlModelRecord,
        announce: bool,
    ) -> Result<(), CatalogError> {
        let (status, reason, at_commit) = health_columns(&record.health);
        sqlx::query(
            "UPDATE retl_models SET status = $1, broken_reason = $2, broken_at_commit = $3, commit_sha = $4, relation_name = $5, updated_at_ms = $6 WHERE id = $7",
        )
        .bind(status)
        .bind(reason)
        .bind(at_commit)
        .bind(&record.commit_sha)
        .bind(&record.relation_name)
        .bind(record.updated_at_ms)
        .bind(&record.id)
        .execute(&mut **tx)
        .await?;
        if announce {
            self.announce_retl_model(tx, record, false).await?;
        }
        Ok(())
    }

    pub(super) async fn announce_retl_model(
        &self,
        tx: &mut Transaction<'_>,
        record: &RetlModelRecord,
        deleted: bool,
    ) -> Result<(), CatalogError> {
        let used_by = if deleted {
            Vec::new()
        } else {
            super::usage::enabled_syncs(tx, &record.workspace_id, &record.id)
                .await?
                .into_iter()
                .map(|(sync_id, _)| sync_id)
                .collect()
        };
        let event = pb::RetlModelChangedEvent {
            workspace_id: record.workspace_id.clone(),
            model: Some(record.to_proto_used_by(used_by)),
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

/// Takes the row lock of a Reverse ETL model (a no-op update: portable, and on
/// PostgreSQL a concurrent guard or usage write waits for this transaction) and reads it.
pub(super) async fn lock_retl_model(
    tx: &mut Transaction<'_>,
    workspace_id: &str,
    id: &str,
) -> Result<RetlModelRecord, CatalogError> {
    let locked = sqlx::query(
        "UPDATE retl_models SET updated_at_ms = updated_at_ms WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace_id)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if locked.rows_affected() == 0 {
        return Err(not_found("reverse etl model", id));
    }
    let row: RetlRow = sqlx::query_as(&format!(
        "SELECT {RETL_COLUMNS} FROM retl_models WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    record_of(row)
}
