//! The connection operations behind the gRPC API: validation of what a caller sends,
//! then the store. Every operation is scoped to the workspace it names.

use crate::access_url::normalize_access_url;
use crate::error::DbtCloudError;
use crate::store::{ConnectionRecord, ConnectionStore, ReceivedEventRecord};

/// A request to create a connection, already decoded from the wire.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub workspace_id: String,
    pub name: String,
    pub access_url: String,
    pub account_id: i64,
    pub api_token_credential_id: String,
}

#[derive(Clone, Debug)]
pub struct Connections {
    store: ConnectionStore,
}

impl Connections {
    pub fn new(store: ConnectionStore) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &ConnectionStore {
        &self.store
    }

    pub async fn create(&self, new: NewConnection) -> Result<ConnectionRecord, DbtCloudError> {
        let record = validate_new(
            new,
            backflow_platform::new_id(),
            backflow_platform::now_unix_ms(),
        )?;
        self.store.create(&record).await?;
        tracing::info!(
            workspace_id = %record.workspace_id,
            connection_id = %record.id,
            account_id = record.account_id,
            access_url = %record.access_url,
            "dbt cloud connection created"
        );
        Ok(record)
    }

    pub async fn get(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<ConnectionRecord, DbtCloudError> {
        require("workspace_id", workspace_id)?;
        require("connection_id", connection_id)?;
        self.store
            .get(workspace_id, connection_id)
            .await?
            .ok_or_else(|| DbtCloudError::NotFound(connection_id.to_string()))
    }

    pub async fn list(&self, workspace_id: &str) -> Result<Vec<ConnectionRecord>, DbtCloudError> {
        require("workspace_id", workspace_id)?;
        self.store.list(workspace_id).await
    }

    pub async fn delete(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<(), DbtCloudError> {
        require("workspace_id", workspace_id)?;
        require("connection_id", connection_id)?;
        if self.store.delete(workspace_id, connection_id).await? {
            tracing::info!(%workspace_id, %connection_id, "dbt cloud connection deleted");
            Ok(())
        } else {
            Err(DbtCloudError::NotFound(connection_id.to_string()))
        }
    }

    /// Received events of a connection of this workspace, newest first.
    pub async fn received_events(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<Vec<ReceivedEventRecord>, DbtCloudError> {
        self.get(workspace_id, connection_id).await?;
        self.store.list_received(workspace_id, connection_id).await
    }
}

/// Checks a new connection and builds its record (access URL normalized).
pub fn validate_new(
    new: NewConnection,
    id: String,
    now_ms: i64,
) -> Result<ConnectionRecord, DbtCloudError> {
    require("workspace_id", &new.workspace_id)?;
    require("name", &new.name)?;
    require("api_token_credential_id", &new.api_token_credential_id)?;
    if new.account_id <= 0 {
        return Err(DbtCloudError::InvalidArgument(format!(
            "account_id must be a positive dbt Cloud account id, got {}",
            new.account_id
        )));
    }
    let access_url =
        normalize_access_url(&new.access_url).map_err(DbtCloudError::InvalidArgument)?;
    Ok(ConnectionRecord {
        id,
        workspace_id: new.workspace_id,
        name: new.name.trim().to_string(),
        access_url,
        account_id: new.account_id,
        api_token_credential_id: new.api_token_credential_id,
        created_at_ms: now_ms,
    })
}

fn require(field: &str, value: &str) -> Result<(), DbtCloudError> {
    if value.trim().is_empty() {
        Err(DbtCloudError::InvalidArgument(format!(
            "{field} is required"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_connection() -> NewConnection {
        NewConnection {
            workspace_id: "ws".into(),
            name: " prod ".into(),
            access_url: "acme".into(),
            account_id: 7,
            api_token_credential_id: "cred-1".into(),
        }
    }

    fn invalid(new: NewConnection) -> String {
        match validate_new(new, "id".into(), 1) {
            Err(DbtCloudError::InvalidArgument(message)) => message,
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn valid_connection_is_normalized() {
        let record =
            validate_new(new_connection(), "id".into(), 5).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(record.name, "prod");
        assert_eq!(record.access_url, "https://acme.getdbt.com");
        assert_eq!(record.created_at_ms, 5);
    }

    #[test]
    fn required_fields_are_named() {
        let mut new = new_connection();
        new.workspace_id.clear();
        assert_eq!(invalid(new), "workspace_id is required");
        let mut new = new_connection();
        new.name = "  ".into();
        assert_eq!(invalid(new), "name is required");
        let mut new = new_connection();
        new.api_token_credential_id.clear();
        assert_eq!(invalid(new), "api_token_credential_id is required");
    }

    #[test]
    fn account_id_must_be_positive() {
        let mut new = new_connection();
        new.account_id = 0;
        assert!(invalid(new).contains("account_id"));
    }

    #[test]
    fn foreign_access_url_is_refused() {
        let mut new = new_connection();
        new.access_url = "https://example.com".into();
        assert!(invalid(new).contains("not a dbt Cloud host"));
    }
}
