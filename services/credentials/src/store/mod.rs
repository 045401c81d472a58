//! Storage of secrets and their sealed versions. Everything here is portable SQL that
//! runs on PostgreSQL and SQLite; the contract tests run it on both.

use crate::envelope::Sealed;
use crate::error::CredentialsError;
use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;
use std::collections::BTreeMap;

/// A secret's metadata (never its material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub kind: i32,
    pub attributes: BTreeMap<String, String>,
    pub current_version: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

type SecretRow = (String, String, String, i32, String, i64, i64, i64);

const SECRET_COLUMNS: &str =
    "id, workspace_id, name, kind, attributes, current_version, created_at_ms, updated_at_ms";

fn record_of(row: SecretRow) -> Result<SecretRecord, CredentialsError> {
    let (id, workspace_id, name, kind, attributes, current_version, created_at_ms, updated_at_ms) =
        row;
    let attributes = serde_json::from_str(&attributes)
        .map_err(|err| CredentialsError::Corrupt(format!("attributes of secret {id}: {err}")))?;
    Ok(SecretRecord {
        id,
        workspace_id,
        name,
        kind,
        attributes,
        current_version,
        created_at_ms,
        updated_at_ms,
    })
}

#[derive(Clone, Debug)]
pub struct SecretStore {
    db: Database,
    outbox: Outbox,
}

impl SecretStore {
    pub fn new(db: Database, outbox: Outbox) -> Self {
        Self { db, outbox }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Inserts a secret and its first sealed version.
    pub async fn create(
        &self,
        record: &SecretRecord,
        sealed: &Sealed,
    ) -> Result<(), CredentialsError> {
        let attributes = serde_json::to_string(&record.attributes)
            .map_err(|err| CredentialsError::InvalidArgument(err.to_string()))?;
        let mut tx = self.db.begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO secrets ({SECRET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.name)
        .bind(record.kind)
        .bind(attributes)
        .bind(record.current_version)
        .bind(record.created_at_ms)
        .bind(record.updated_at_ms)
        .execute(&mut *tx)
        .await;
        if let Err(error) = inserted {
            if backflow_platform::db::is_unique_violation(&error) {
                return Err(CredentialsError::AlreadyExists(record.name.clone()));
            }
            return Err(error.into());
        }
        insert_version(&mut tx, &record.id, record.current_version, sealed).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get(
        &self,
        workspace_id: &str,
        secret_id: &str,
    ) -> Result<Option<SecretRecord>, CredentialsError> {
        let row: Option<SecretRow> = sqlx::query_as(&format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(secret_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(record_of).transpose()
    }

    pub async fn list(&self, workspace_id: &str) -> Result<Vec<SecretRecord>, CredentialsError> {
        let rows: Vec<SecretRow> = sqlx::query_as(&format!(
            "SELECT {SECRET_COLUMNS} FROM secrets WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(record_of).collect()
    }

    /// Adds a new version; `seal` receives the version number to bind the ciphertext
    /// to. Publishes `evt.credentials.secret.rotated.<id>` in the same transaction.
    pub async fn rotate(
        &self,
        workspace_id: &str,
        secret_id: &str,
        seal: impl FnOnce(i64) -> Result<Sealed, CredentialsError>,
    ) -> Result<SecretRecord, CredentialsError> {
        let mut tx = self.db.begin().await?;
        let now = backflow_platform::now_unix_ms();
        let version: Option<(i64,)> = sqlx::query_as(
            "UPDATE secrets SET current_version = current_version + 1, updated_at_ms = $1 WHERE workspace_id = $2 AND id = $3 RETURNING current_version",
        )
        .bind(now)
        .bind(workspace_id)
        .bind(secret_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((version,)) = version else {
            return Err(CredentialsError::NotFound(secret_id.to_string()));
        };
        let sealed = seal(version)?;
        insert_version(&mut tx, secret_id, version, &sealed).await?;
        let event = backflow_proto::credentials::v1::SecretRotatedEvent {
            workspace_id: workspace_id.to_string(),
            secret_id: secret_id.to_string(),
            new_version: version,
        };
        self.outbox
            .enqueue(
                &mut tx,
                &backflow_proto::subjects::SECRET_ROTATED.for_id(secret_id),
                &event,
            )
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        self.get(workspace_id, secret_id)
            .await?
            .ok_or_else(|| CredentialsError::NotFound(secret_id.to_string()))
    }

    /// Replaces the stored attributes (material and versions untouched).
    pub async fn update_attributes(
        &self,
        workspace_id: &str,
        secret_id: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<SecretRecord, CredentialsError> {
        let encoded = serde_json::to_string(attributes)
            .map_err(|err| CredentialsError::Corrupt(format!("attributes: {err}")))?;
        let done = sqlx::query(
            "UPDATE secrets SET attributes = $1, updated_at_ms = $2 WHERE workspace_id = $3 AND id = $4",
        )
        .bind(encoded)
        .bind(backflow_platform::now_unix_ms())
        .bind(workspace_id)
        .bind(secret_id)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(CredentialsError::NotFound(secret_id.to_string()));
        }
        self.get(workspace_id, secret_id)
            .await?
            .ok_or_else(|| CredentialsError::NotFound(secret_id.to_string()))
    }

    /// Deletes a secret and all its versions. Returns false if it did not exist.
    pub async fn delete(
        &self,
        workspace_id: &str,
        secret_id: &str,
    ) -> Result<bool, CredentialsError> {
        let mut tx = self.db.begin().await?;
        sqlx::query("DELETE FROM secret_versions WHERE secret_id IN (SELECT id FROM secrets WHERE workspace_id = $1 AND id = $2)")
            .bind(workspace_id)
            .bind(secret_id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM secrets WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(secret_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// The sealed material of one version (0 = current).
    pub async fn sealed_version(
        &self,
        workspace_id: &str,
        secret_id: &str,
        version: i64,
    ) -> Result<Option<(SecretRecord, i64, Sealed)>, CredentialsError> {
        let Some(record) = self.get(workspace_id, secret_id).await? else {
            return Ok(None);
        };
        let version = if version == 0 {
            record.current_version
        } else {
            version
        };
        let row: Option<(String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT key_id, wrapped_data_key, ciphertext FROM secret_versions WHERE secret_id = $1 AND version = $2",
        )
        .bind(secret_id)
        .bind(version)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|(key_id, wrapped_data_key, ciphertext)| {
            (
                record,
                version,
                Sealed {
                    key_id,
                    wrapped_data_key,
                    ciphertext,
                },
            )
        }))
    }

    /// Appends to the access audit.
    pub async fn record_access(
        &self,
        workspace_id: &str,
        secret_id: &str,
        version: i64,
        action: &str,
        purpose: &str,
    ) -> Result<(), CredentialsError> {
        sqlx::query(
            "INSERT INTO secret_access_audit (id, workspace_id, secret_id, version, action, purpose, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(backflow_platform::new_id())
        .bind(workspace_id)
        .bind(secret_id)
        .bind(version)
        .bind(action)
        .bind(purpose)
        .bind(backflow_platform::now_unix_ms())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Audit entries of a secret, oldest first: (version, action, purpose).
    pub async fn access_log(
        &self,
        workspace_id: &str,
        secret_id: &str,
    ) -> Result<Vec<(i64, String, String)>, CredentialsError> {
        Ok(sqlx::query_as(
            "SELECT version, action, purpose FROM secret_access_audit WHERE workspace_id = $1 AND secret_id = $2 ORDER BY at_ms, id",
        )
        .bind(workspace_id)
        .bind(secret_id)
        .fetch_all(self.db.pool())
        .await?)
    }
}

async fn insert_version(
    tx: &mut backflow_platform::db::Transaction<'_>,
    secret_id: &str,
    version: i64,
    sealed: &Sealed,
) -> Result<(), CredentialsError> {
    sqlx::query(
        "INSERT INTO secret_versions (secret_id, version, key_id, wrapped_data_key, ciphertext, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(secret_id)
    .bind(version)
    .bind(&sealed.key_id)
    .bind(&sealed.wrapped_data_key)
    .bind(&sealed.ciphertext)
    .bind(backflow_platform::now_unix_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
