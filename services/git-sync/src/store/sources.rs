//! The projection of warehouse sources (`warehouse_sources`), fed by the catalog's
//! `WarehouseSourceChangedEvent`s through the inbox. An event older than what is stored
//! is dropped; a change of kind or database re-syncs every connection naming the source
//! (in the same transaction), so relation names follow the source.

use super::{GitSyncStore, CONNECTION_COLUMNS};
use crate::error::GitSyncError;
use crate::sources::{replaces, KnownSource};
use crate::store::rows::ConnectionRecord;
use backflow_platform::db::Transaction;
use backflow_proto::gitsync::v1 as pb;

/// What one source event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceApplied {
    /// The inbox had it already.
    AlreadyHandled,
    /// Older than the stored version: dropped.
    Stale,
    /// Stored; these connections were queued to re-sync.
    Recorded { resynced: Vec<String> },
}

type SourceRow = (String, String, i32, String, i64, i64);
const SOURCE_COLUMNS: &str = "workspace_id, source_id, kind, target_database, version, deleted";

fn source_of(row: SourceRow) -> KnownSource {
    let (workspace_id, source_id, kind, database, version, deleted) = row;
    KnownSource {
        workspace_id,
        source_id,
        kind,
        database,
        version,
        deleted: deleted != 0,
    }
}

impl GitSyncStore {
    /// Applies one source event once (`consumer`, `message_id` in the inbox).
    pub async fn apply_source_event(
        &self,
        consumer: &str,
        message_id: &str,
        source: &KnownSource,
    ) -> Result<SourceApplied, GitSyncError> {
        let mut tx = self.db.begin().await?;
        if !backflow_platform::inbox::claim(&mut tx, consumer, message_id).await? {
            tx.rollback().await?;
            return Ok(SourceApplied::AlreadyHandled);
        }
        let stored = read_source(&mut tx, &source.workspace_id, &source.source_id).await?;
        if !replaces(
            stored.as_ref().map(|s| (s.version, s.deleted)),
            (source.version, source.deleted),
        ) {
            tx.commit().await?;
            return Ok(SourceApplied::Stale);
        }
        write_source(&mut tx, source).await?;
        // Connections parsed without this source (it was unknown or deleted) or with
        // another adapter/database render other relation names: sync them again.
        let parsed_otherwise = match &stored {
            Some(stored) if !stored.deleted => !stored.parses_like(source),
            _ => true,
        };
        let mut resynced = Vec::new();
        if !source.deleted && parsed_otherwise {
            for connection in connections_using(&mut tx, source).await? {
                super::runs::write_poll_state(&mut tx, &connection.id, &Default::default()).await?;
                if !has_queued_run(&mut tx, &connection.id).await? {
                    self.queue_run(&mut tx, &connection, pb::SyncTrigger::SettingsChanged, "")
                        .await?;
                }
                resynced.push(connection.id);
            }
        }
        tx.commit().await?;
        self.outbox.committed();
        Ok(SourceApplied::Recorded { resynced })
    }

    /// The source if the catalog announced it and has not deleted it.
    pub async fn known_source(
        &self,
        workspace_id: &str,
        source_id: &str,
    ) -> Result<Option<KnownSource>, GitSyncError> {
        let row: Option<SourceRow> = sqlx::query_as(&format!(
            "SELECT {SOURCE_COLUMNS} FROM warehouse_sources WHERE workspace_id = $1 AND source_id = $2 AND deleted = 0"
        ))
        .bind(workspace_id)
        .bind(source_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(source_of))
    }
}

async fn read_source(
    tx: &mut Transaction<'_>,
    workspace_id: &str,
    source_id: &str,
) -> Result<Option<KnownSource>, sqlx::Error> {
    let row: Option<SourceRow> = sqlx::query_as(&format!(
        "SELECT {SOURCE_COLUMNS} FROM warehouse_sources WHERE workspace_id = $1 AND source_id = $2"
    ))
    .bind(workspace_id)
    .bind(source_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(source_of))
}

async fn write_source(tx: &mut Transaction<'_>, source: &KnownSource) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO warehouse_sources ({SOURCE_COLUMNS}, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (workspace_id, source_id) DO UPDATE SET kind = excluded.kind, \
         target_database = excluded.target_database, version = excluded.version, \
         deleted = excluded.deleted, updated_at_ms = excluded.updated_at_ms"
    ))
    .bind(&source.workspace_id)
    .bind(&source.source_id)
    .bind(source.kind)
    .bind(&source.database)
    .bind(source.version)
    .bind(i64::from(source.deleted))
    .bind(backflow_platform::now_unix_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn connections_using(
    tx: &mut Transaction<'_>,
    source: &KnownSource,
) -> Result<Vec<ConnectionRecord>, sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT {CONNECTION_COLUMNS} FROM connections WHERE workspace_id = $1 AND warehouse_source_id = $2 ORDER BY id"
    ))
    .bind(&source.workspace_id)
    .bind(&source.source_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(ConnectionRecord::from_row).collect())
}

async fn has_queued_run(
    tx: &mut Transaction<'_>,
    connection_id: &str,
) -> Result<bool, sqlx::Error> {
    let queued: Option<(String,)> =
        sqlx::query_as("SELECT id FROM sync_runs WHERE connection_id = $1 AND status = $2 LIMIT 1")
            .bind(connection_id)
            .bind(pb::SyncStatus::Queued as i32)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(queued.is_some())
}
