//! Destination rows, workspace-scoped. Settings are stored as JSON (never secrets); a
//! destination a sync delivers to cannot be deleted. The executor reads destinations
//! through [`SyncStore::get_destination`].

use super::SyncStore;
use crate::destination_config::{kind_from_wire, kind_to_wire, DestinationRecord, TestOutcome};
use crate::error::RetlError;

const COLUMNS: &str =
    "id, workspace_id, name, kind, settings, credential_id, rate_limit_per_second, \
     created_at_ms, updated_at_ms, version, last_test_ok, last_test_message, last_tested_at_ms";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    workspace_id: String,
    name: String,
    kind: i32,
    settings: String,
    credential_id: String,
    rate_limit_per_second: f64,
    created_at_ms: i64,
    updated_at_ms: i64,
    version: i64,
    last_test_ok: i32,
    last_test_message: String,
    last_tested_at_ms: i64,
}

fn record_of(row: Row) -> Result<DestinationRecord, RetlError> {
    let corrupt = |what: String| RetlError::Corrupt(format!("destination {}: {what}", row.id));
    let kind = kind_from_wire(row.kind).map_err(|_| corrupt(format!("kind {}", row.kind)))?;
    let settings =
        serde_json::from_str(&row.settings).map_err(|err| corrupt(format!("settings: {err}")))?;
    Ok(DestinationRecord {
        id: row.id,
        workspace_id: row.workspace_id,
        name: row.name,
        kind,
        settings,
        credential_id: row.credential_id,
        rate_limit_per_second: row.rate_limit_per_second,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
        version: row.version,
        last_test: (row.last_tested_at_ms > 0).then_some(TestOutcome {
            ok: row.last_test_ok != 0,
            message: row.last_test_message,
            tested_at_ms: row.last_tested_at_ms,
        }),
    })
}

fn test_columns(test: &Option<TestOutcome>) -> (i32, &str, i64) {
    match test {
        Some(test) => (i32::from(test.ok), test.message.as_str(), test.tested_at_ms),
        None => (0, "", 0),
    }
}

fn settings_json(record: &DestinationRecord) -> Result<String, RetlError> {
    serde_json::to_string(&record.settings)
        .map_err(|err| RetlError::InvalidArgument(format!("settings: {err}")))
}

impl SyncStore {
    pub async fn create_destination(&self, record: &DestinationRecord) -> Result<(), RetlError> {
        let (ok, message, tested_at) = test_columns(&record.last_test);
        let inserted = sqlx::query(&format!(
            "INSERT INTO retl_destinations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.name)
        .bind(kind_to_wire(record.kind))
        .bind(settings_json(record)?)
        .bind(&record.credential_id)
        .bind(record.rate_limit_per_second)
        .bind(record.created_at_ms)
        .bind(record.updated_at_ms)
        .bind(record.version)
        .bind(ok)
        .bind(message)
        .bind(tested_at)
        .execute(self.db.pool())
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if backflow_platform::db::is_unique_violation(&error) => {
                Err(RetlError::DestinationExists(record.name.clone()))
            }
            Err(error) => Err(error.into()),
        }
    }

    pub async fn get_destination(
        &self,
        workspace_id: &str,
        destination_id: &str,
    ) -> Result<Option<DestinationRecord>, RetlError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM retl_destinations WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(destination_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(record_of).transpose()
    }

    pub async fn list_destinations(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<DestinationRecord>, RetlError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM retl_destinations WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(record_of).collect()
    }

    /// Writes an update whose version is `current_version + 1`; refused if it changed meanwhile.
    pub async fn update_destination(
        &self,
        record: &DestinationRecord,
        current_version: i64,
    ) -> Result<(), RetlError> {
        let (ok, message, tested_at) = test_columns(&record.last_test);
        let updated = sqlx::query(
            "UPDATE retl_destinations SET name = $1, settings = $2, credential_id = $3, \
             rate_limit_per_second = $4, updated_at_ms = $5, version = $6, last_test_ok = $7, \
             last_test_message = $8, last_tested_at_ms = $9 \
             WHERE workspace_id = $10 AND id = $11 AND version = $12",
        )
        .bind(&record.name)
        .bind(settings_json(record)?)
        .bind(&record.credential_id)
        .bind(record.rate_limit_per_second)
        .bind(record.updated_at_ms)
        .bind(record.version)
        .bind(ok)
        .bind(message)
        .bind(tested_at)
        .bind(&record.workspace_id)
        .bind(&record.id)
        .bind(current_version)
        .execute(self.db.pool())
        .await;
        let updated = match updated {
            Ok(updated) => updated,
            Err(error) if backflow_platform::db::is_unique_violation(&error) => {
                return Err(RetlError::DestinationExists(record.name.clone()))
            }
            Err(error) => return Err(error.into()),
        };
        if updated.rows_affected() != 1 {
            return Err(RetlError::FailedPrecondition(format!(
                "destination {} changed while it was being updated; read it again and retry",
                record.id
            )));
        }
        Ok(())
    }

    /// Stores the outcome of a connection test (keeps the version: settings did not change).
    pub async fn record_destination_test(
        &self,
        workspace_id: &str,
        destination_id: &str,
        test: &TestOutcome,
    ) -> Result<(), RetlError> {
        sqlx::query(
            "UPDATE retl_destinations SET last_test_ok = $1, last_test_message = $2, last_tested_at_ms = $3 \
             WHERE workspace_id = $4 AND id = $5",
        )
        .bind(i32::from(test.ok))
        .bind(&test.message)
        .bind(test.tested_at_ms)
        .bind(workspace_id)
        .bind(destination_id)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Deletes a destination no sync delivers to; FAILED_PRECONDITION naming the syncs otherwise.
    pub async fn delete_destination(
        &self,
        workspace_id: &str,
        destination_id: &str,
    ) -> Result<(), RetlError> {
        let mut tx = self.db.begin().await?;
        let users: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM retl_syncs WHERE workspace_id = $1 AND destination_id = $2 ORDER BY name",
        )
        .bind(workspace_id)
        .bind(destination_id)
        .fetch_all(&mut *tx)
        .await?;
        if !users.is_empty() {
            let names: Vec<String> = users
                .into_iter()
                .map(|(name,)| format!("{name:?}"))
                .collect();
            return Err(RetlError::FailedPrecondition(format!(
                "destination {destination_id} is used by sync(s) {}; delete them or move them first",
                names.join(", ")
            )));
        }
        let deleted =
            sqlx::query("DELETE FROM retl_destinations WHERE workspace_id = $1 AND id = $2")
                .bind(workspace_id)
                .bind(destination_id)
                .execute(&mut *tx)
                .await?;
        if deleted.rows_affected() != 1 {
            return Err(RetlError::DestinationNotFound(destination_id.to_string()));
        }
        tx.commit().await?;
        Ok(())
    }
}
