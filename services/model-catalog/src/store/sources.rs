//! Warehouse sources: where models are read from (settings here, secrets elsewhere).
//! Every change (create, update, a new test result, delete) is announced as a
//! `WarehouseSourceChangedEvent` on `evt.catalog.source.changed.<id>` through the
//! outbox, in the transaction that makes it, so git-sync's projection never misses one.

use super::CatalogStore;
use crate::error::{not_found, CatalogError};
use backflow_platform::db::Transaction;
use backflow_proto::catalog::v1 as pb;
use prost::Message;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// `backflow.catalog.v1.WarehouseKind`.
    pub kind: i32,
    pub settings: BTreeMap<String, String>,
    pub credential_id: String,
    pub created_at_ms: i64,
    /// Schema Backflow may write to; empty = read-only to Backflow.
    pub backflow_schema: String,
    /// 1 at create, +1 on every update.
    pub version: i64,
    pub updated_at_ms: i64,
    /// The newest connection test; `None` = never tested.
    pub last_test: Option<pb::SourceTestResult>,
    /// Write a run ledger into `backflow_schema` (needs one).
    pub run_ledger: bool,
}

impl SourceRecord {
    /// A new source (version 1, never tested).
    pub fn new(
        workspace_id: &str,
        name: &str,
        kind: i32,
        settings: BTreeMap<String, String>,
        credential_id: &str,
    ) -> Self {
        let now = backflow_platform::now_unix_ms();
        Self {
            id: backflow_platform::new_id(),
            workspace_id: workspace_id.to_string(),
            name: name.to_string(),
            kind,
            settings,
            credential_id: credential_id.to_string(),
            created_at_ms: now,
            backflow_schema: String::new(),
            version: 1,
            updated_at_ms: now,
            last_test: None,
            run_ledger: false,
        }
    }

    pub fn to_proto(&self) -> pb::WarehouseSource {
        pb::WarehouseSource {
            id: self.id.clone(),
            workspace_id: self.workspace_id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            settings: self
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            credential_id: self.credential_id.clone(),
            created_at_unix_ms: self.created_at_ms,
            updated_at_unix_ms: self.updated_at_ms,
            version: self.version,
            backflow_schema: self.backflow_schema.clone(),
            last_test: self.last_test.clone(),
            run_ledger: self.run_ledger,
        }
    }
}

type SourceRow = (
    String,
    String,
    String,
    i32,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    Option<Vec<u8>>,
    i64,
);
const SOURCE_COLUMNS: &str = "id, workspace_id, name, kind, settings, credential_id, created_at_ms, backflow_schema, version, updated_at_ms, last_test, run_ledger";

fn record_of(row: SourceRow) -> Result<SourceRecord, CatalogError> {
    let (
        id,
        workspace_id,
        name,
        kind,
        settings,
        credential_id,
        created_at_ms,
        backflow_schema,
        version,
        updated_at_ms,
        last_test,
        run_ledger,
    ) = row;
    let settings = serde_json::from_str(&settings)
        .map_err(|err| CatalogError::Corrupt(format!("settings of source {id}: {err}")))?;
    let last_test = last_test
        .map(|bytes| pb::SourceTestResult::decode(bytes.as_slice()))
        .transpose()
        .map_err(|err| CatalogError::Corrupt(format!("last test of source {id}: {err}")))?;
    Ok(SourceRecord {
        id,
        workspace_id,
        name,
        kind,
        settings,
        credential_id,
        created_at_ms,
        backflow_schema,
        version,
        updated_at_ms,
        last_test,
        run_ledger: run_ledger != 0,
    })
}

fn settings_json(record: &SourceRecord) -> Result<String, CatalogError> {
    crate::source_settings::check(&record.settings)
        .map_err(|err| CatalogError::InvalidArgument(err.to_string()))?;
    serde_json::to_string(&record.settings)
        .map_err(|err| CatalogError::InvalidArgument(err.to_string()))
}

fn name_taken(error: sqlx::Error, name: &str) -> CatalogError {
    if backflow_platform::db::is_unique_violation(&error) {
        CatalogError::AlreadyExists {
            kind: "warehouse source",
            name: name.to_string(),
        }
    } else {
        error.into()
    }
}

/// Who still uses a source: live Git connections naming it, and Reverse ETL models
/// naming it (or, naming none, built on a connection that names it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceUsers {
    /// `name (id)` of each connection.
    pub connections: Vec<String>,
    pub retl_models: Vec<String>,
}

impl SourceUsers {
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty() && self.retl_models.is_empty()
    }

    /// `git connections a (c1); reverse etl models m (r1)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.connections.is_empty() {
            parts.push(format!("git connections {}", self.connections.join(", ")));
        }
        if !self.retl_models.is_empty() {
            parts.push(format!(
                "reverse etl models {}",
                self.retl_models.join(", ")
            ));
        }
        parts.join("; ")
    }
}

impl CatalogStore {
    /// Records a source; secret-like settings are refused (they belong in credentials).
    pub async fn create_source(&self, record: &SourceRecord) -> Result<(), CatalogError> {
        let settings = settings_json(record)?;
        let mut tx = self.db.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO warehouse_sources ({SOURCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.name)
        .bind(record.kind)
        .bind(settings)
        .bind(&record.credential_id)
        .bind(record.created_at_ms)
        .bind(&record.backflow_schema)
        .bind(record.version)
        .bind(record.updated_at_ms)
        .bind(record.last_test.as_ref().map(Message::encode_to_vec))
        .bind(i64::from(record.run_ledger))
        .execute(&mut *tx)
        .await
        .map_err(|error| name_taken(error, &record.name))?;
        self.announce_source(&mut tx, record, false).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    pub async fn get_source(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<SourceRecord, CatalogError> {
        let row: Option<SourceRow> = sqlx::query_as(&format!(
            "SELECT {SOURCE_COLUMNS} FROM warehouse_sources WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(record_of)
            .transpose()?
            .ok_or_else(|| not_found("warehouse source", id))
    }

    pub async fn list_sources(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<SourceRecord>, CatalogError> {
        let rows: Vec<SourceRow> = sqlx::query_as(&format!(
            "SELECT {SOURCE_COLUMNS} FROM warehouse_sources WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(record_of).collect()
    }

    /// Writes `record` (its editable fields and `last_test`) if the stored version is
    /// still `record.version - 1`; returns [`CatalogError::Conflict`] otherwise.
    pub async fn update_source(&self, record: &SourceRecord) -> Result<(), CatalogError> {
        let settings = settings_json(record)?;
        let expected = record.version - 1;
        let mut tx = self.db.begin().await?;
        let updated = sqlx::query(
            "UPDATE warehouse_sources SET name = $1, settings = $2, credential_id = $3, backflow_schema = $4, \
             version = $5, updated_at_ms = $6, last_test = $7, run_ledger = $11 WHERE workspace_id = $8 AND id = $9 AND version = $10",
        )
        .bind(&record.name)
        .bind(settings)
        .bind(&record.credential_id)
        .bind(&record.backflow_schema)
        .bind(record.version)
        .bind(record.updated_at_ms)
        .bind(record.last_test.as_ref().map(Message::encode_to_vec))
        .bind(&record.workspace_id)
        .bind(&record.id)
        .bind(expected)
        .bind(i64::from(record.run_ledger))
        .execute(&mut *tx)
        .await
        .map_err(|error| name_taken(error, &record.name))?;
        if updated.rows_affected() != 1 {
            tx.rollback().await?;
            let found = self.get_source(&record.workspace_id, &record.id).await?;
            return Err(CatalogError::Conflict {
                kind: "warehouse source",
                id: record.id.clone(),
                expected,
                found: found.version,
            });
        }
        self.announce_source(&mut tx, record, false).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    /// Stores the newest test result of a source (its version stays) and returns the
    /// source as it is now.
    pub async fn record_source_test(
        &self,
        workspace_id: &str,
        id: &str,
        result: &pb::SourceTestResult,
    ) -> Result<SourceRecord, CatalogError> {
        let mut tx = self.db.begin().await?;
        let updated = sqlx::query(
            "UPDATE warehouse_sources SET last_test = $1 WHERE workspace_id = $2 AND id = $3",
        )
        .bind(result.encode_to_vec())
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(not_found("warehouse source", id));
        }
        let row: SourceRow = sqlx::query_as(&format!(
            "SELECT {SOURCE_COLUMNS} FROM warehouse_sources WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let record = record_of(row)?;
        self.announce_source(&mut tx, &record, false).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(record)
    }

    /// Who uses a source now (live Git connections naming it, Reverse ETL models on them).
    pub async fn source_users(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<SourceUsers, CatalogError> {
        let mut tx = self.db.begin().await?;
        let users = users_in(&mut tx, workspace_id, id).await?;
        tx.rollback().await?;
        Ok(users)
    }

    /// Deletes a source nobody uses; FAILED_PRECONDITION naming its users otherwise.
    pub async fn delete_source(&self, workspace_id: &str, id: &str) -> Result<(), CatalogError> {
        let record = self.get_source(workspace_id, id).await?;
        let mut tx = self.db.begin().await?;
        let users = users_in(&mut tx, workspace_id, id).await?;
        if !users.is_empty() {
            tx.rollback().await?;
            return Err(CatalogError::FailedPrecondition(format!(
                "warehouse source {:?} is in use by {}; point them at another source or delete them first",
                record.name,
                users.describe()
            )));
        }
        let deleted =
            sqlx::query("DELETE FROM warehouse_sources WHERE workspace_id = $1 AND id = $2")
                .bind(workspace_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if deleted.rows_affected() != 1 {
            tx.rollback().await?;
            return Err(not_found("warehouse source", id));
        }
        self.announce_source(&mut tx, &record, true).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    async fn announce_source(
        &self,
        tx: &mut Transaction<'_>,
        record: &SourceRecord,
        deleted: bool,
    ) -> Result<(), CatalogError> {
        let event = pb::WarehouseSourceChangedEvent {
            workspace_id: record.workspace_id.clone(),
            source: Some(record.to_proto()),
            deleted,
        };
        self.outbox
            .enqueue(
                tx,
                &backflow_proto::subjects::SOURCE_CHANGED.for_id(&record.id),
                &event,
            )
            .await?;
        Ok(())
    }
}

async fn users_in(
    tx: &mut Transaction<'_>,
    workspace_id: &str,
    id: &str,
) -> Result<SourceUsers, CatalogError> {
    let connections: Vec<(String, String)> = sqlx::query_as(
        "SELECT connection_id, name FROM projects WHERE workspace_id = $1 AND warehouse_source_id = $2 AND deleted = 0 ORDER BY name",
    )
    .bind(workspace_id)
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    let retl_models: Vec<(String, String)> = sqlx::query_as(
        "SELECT r.id, r.name FROM retl_models r LEFT JOIN projects p ON p.connection_id = r.connection_id \
         WHERE r.workspace_id = $1 AND (r.source_id = $2 OR (r.source_id = '' AND p.warehouse_source_id = $2 AND p.deleted = 0)) \
         ORDER BY r.name",
    )
    .bind(workspace_id)
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    let named = |rows: Vec<(String, String)>| {
        rows.into_iter()
            .map(|(id, name)| format!("{name} ({id})"))
            .collect()
    };
    Ok(SourceUsers {
        connections: named(connections),
        retl_models: named(retl_models),
    })
}
