//! Row types of the git-sync tables and their conversions to the wire types.

use crate::settings::Settings;
use backflow_proto::gitsync::v1 as pb;

pub(crate) type ConnectionRow = (
    String,
    String,
    String,
    i32,
    i32,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
);

pub(crate) type RunRow = (
    String,
    String,
    String,
    i32,
    i32,
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    i64,
    String,
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub settings: Settings,
    pub settings_version: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl ConnectionRecord {
    pub(crate) fn from_row(row: ConnectionRow) -> Self {
        let (
            id,
            workspace_id,
            name,
            provider,
            protocol,
            repository_url,
            branch,
            dbt_version,
            default_schema,
            project_path,
            credential_id,
            warehouse_source_id,
            webhook_secret_credential_id,
            settings_version,
            created_at_ms,
            updated_at_ms,
        ) = row;
        Self {
            id,
            workspace_id,
            name,
            settings: Settings {
                provider,
                protocol,
                repository_url,
                branch,
                dbt_version,
                default_schema,
                project_path,
                credential_id,
                warehouse_source_id,
                webhook_secret_credential_id,
            },
            settings_version,
            created_at_ms,
            updated_at_ms,
        }
    }

    pub fn to_proto(&self) -> pb::Connection {
        pb::Connection {
            id: self.id.clone(),
            workspace_id: self.workspace_id.clone(),
            name: self.name.clone(),
            settings: Some(self.settings.to_proto()),
            settings_version: self.settings_version,
            created_at_unix_ms: self.created_at_ms,
            updated_at_unix_ms: self.updated_at_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: String,
    pub workspace_id: String,
    pub connection_id: String,
    pub trigger: i32,
    pub status: i32,
    pub commit_sha: String,
    pub model_count: i64,
    pub error: String,
    pub queued_at_ms: i64,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub duration_ms: i64,
    pub node_errors: Vec<String>,
}

impl RunRecord {
    pub(super) fn queued(connection: &ConnectionRecord, trigger: pb::SyncTrigger) -> Self {
        Self {
            id: backflow_platform::new_id(),
            workspace_id: connection.workspace_id.clone(),
            connection_id: connection.id.clone(),
            trigger: trigger as i32,
            status: pb::SyncStatus::Queued as i32,
            commit_sha: String::new(),
            model_count: 0,
            error: String::new(),
            queued_at_ms: backflow_platform::now_unix_ms(),
            started_at_ms: 0,
            finished_at_ms: 0,
            duration_ms: 0,
            node_errors: Vec::new(),
        }
    }

    pub(crate) fn from_row(row: RunRow) -> Self {
        let (
            id,
            workspace_id,
            connection_id,
            trigger,
            status,
            commit_sha,
            model_count,
            error,
            queued_at_ms,
            started_at_ms,
            finished_at_ms,
            duration_ms,
            node_errors,
        ) = row;
        Self {
            id,
            workspace_id,
            connection_id,
            trigger,
            status,
            commit_sha,
            model_count,
            error,
            queued_at_ms,
            started_at_ms,
            finished_at_ms,
            duration_ms,
            // Written by this service as a JSON list; unreadable means none recorded.
            node_errors: serde_json::from_str(&node_errors).unwrap_or_default(),
        }
    }

    pub fn to_proto(&self) -> pb::SyncRun {
        pb::SyncRun {
            id: self.id.clone(),
            connection_id: self.connection_id.clone(),
            trigger: self.trigger,
            status: self.status,
            commit_sha: self.commit_sha.clone(),
            model_count: self.model_count,
            error: self.error.clone(),
            queued_at_unix_ms: self.queued_at_ms,
            started_at_unix_ms: self.started_at_ms,
            finished_at_unix_ms: self.finished_at_ms,
            duration_ms: self.duration_ms,
            node_errors: self.node_errors.clone(),
        }
    }
}
