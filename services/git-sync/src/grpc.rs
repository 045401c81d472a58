//! The gRPC edge of git-sync: decodes requests, validates settings (the warehouse source
//! must be one the catalog announced), calls the store, and maps [`GitSyncError`] to
//! status codes in one place.

use crate::error::GitSyncError;
use crate::settings::Settings;
use crate::store::GitSyncStore;
use crate::sync::SyncRunner;
use backflow_proto::gitsync::v1 as pb;
use pb::git_sync_service_server::GitSyncService;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub const SERVICE_NAME: &str = "backflow.gitsync.v1.GitSyncService";
const DEFAULT_RUN_LIMIT: i64 = 50;
const MAX_RUN_LIMIT: i64 = 500;
/// How long a connect waits for a just-created source's event to reach the projection.
pub const DEFAULT_SOURCE_WAIT: Duration = Duration::from_secs(5);
const SOURCE_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct GitSyncGrpc {
    store: GitSyncStore,
    runner: SyncRunner,
    /// Check access when settings are saved.
    validate_access: bool,
    /// Bound on waiting for an unknown warehouse source to be announced.
    source_wait: Duration,
}

impl GitSyncGrpc {
    pub fn new(store: GitSyncStore, runner: SyncRunner, validate_access: bool) -> Self {
        Self {
            store,
            runner,
            validate_access,
            source_wait: DEFAULT_SOURCE_WAIT,
        }
    }

    /// The same service with another bound on waiting for a source's announcement.
    pub fn with_source_wait(self, source_wait: Duration) -> Self {
        Self {
            source_wait,
            ..self
        }
    }

    /// Refuses a warehouse source the catalog has not announced (or deleted). The
    /// catalog's event may trail its response to the user by a moment: an unknown
    /// source is looked up again until `source_wait` has passed.
    async fn require_source(
        &self,
        workspace_id: &str,
        source_id: &str,
    ) -> Result<(), GitSyncError> {
        let deadline = tokio::time::Instant::now() + self.source_wait;
        loop {
            if self
                .store
                .known_source(workspace_id, source_id)
                .await?
                .is_some()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(GitSyncError::UnknownSource {
                    workspace_id: workspace_id.to_string(),
                    source_id: source_id.to_string(),
                });
            }
            tokio::time::sleep(SOURCE_POLL).await;
        }
    }

    async fn check_access(
        &self,
        workspace_id: &str,
        settings: &Settings,
    ) -> Result<(), GitSyncError> {
        if !self.validate_access {
            return Ok(());
        }
        self.runner
            .check_access(workspace_id, settings)
            .await
            .map(|_| ())
            .map_err(GitSyncError::Access)
    }

    pub fn into_server(self) -> pb::git_sync_service_server::GitSyncServiceServer<Self> {
        pb::git_sync_service_server::GitSyncServiceServer::new(self)
    }
}

/// Request errors reach callers through platform's one mapping
/// ([`backflow_platform::request_error::to_status`]).
impl backflow_platform::request_error::RequestError for GitSyncError {
    const SERVICE: &'static str = "git-sync";

    fn kind(&self) -> backflow_platform::request_error::RequestErrorKind {
        use backflow_platform::request_error::RequestErrorKind as Kind;
        match self {
            GitSyncError::InvalidSettings(_) | GitSyncError::InvalidArgument(_) => {
                Kind::InvalidArgument
            }
            GitSyncError::NotFound { .. } => Kind::NotFound,
            GitSyncError::AlreadyExists(_) => Kind::AlreadyExists,
            GitSyncError::Conflict { .. } => Kind::Conflict,
            GitSyncError::Access(_) | GitSyncError::UnknownSource { .. } => {
                Kind::FailedPrecondition
            }
            _ => Kind::Internal,
        }
    }
}

impl From<GitSyncError> for Status {
    fn from(error: GitSyncError) -> Self {
        backflow_platform::request_error::to_status(&error)
    }
}

fn require(field: &str, value: &str) -> Result<(), GitSyncError> {
    if value.trim().is_empty() {
        Err(GitSyncError::InvalidArgument(format!(
            "{field} is required"
        )))
    } else {
        Ok(())
    }
}

/// Models per streamed chunk: well under gRPC's 4 MiB default message limit.
const MODELS_PER_CHUNK: usize = 200;

type SnapshotStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::SnapshotChunk, Status>> + Send>>;

#[tonic::async_trait]
impl GitSyncService for GitSyncGrpc {
    type FetchSnapshotStream = SnapshotStream;

    async fn fetch_snapshot(
        &self,
        request: Request<pb::FetchSnapshotRequest>,
    ) -> Result<Response<Self::FetchSnapshotStream>, Status> {
        let request = request.into_inner();
        let snapshot = self
            .store
            .load_snapshot(&request.workspace_id, &request.snapshot_ref)
            .await?;
        let parts = crate::store::snapshots::chunks(snapshot, MODELS_PER_CHUNK);
        Ok(Response::new(Box::pin(futures::stream::iter(
            parts.into_iter().map(Ok),
        ))))
    }

    async fn create_connection(
        &self,
        request: Request<pb::CreateConnectionRequest>,
    ) -> Result<Response<pb::CreateConnectionResponse>, Status> {
        let request = request.into_inner();
        require("workspace_id", &request.workspace_id)?;
        require("name", &request.name)?;
        let settings = Settings::from_proto(request.settings).map_err(GitSyncError::from)?;
        self.require_source(&request.workspace_id, &settings.warehouse_source_id)
            .await?;
        self.check_access(&request.workspace_id, &settings).await?;
        let (connection, run) = self
            .store
            .create_connection(&request.workspace_id, request.name.trim(), &settings)
            .await?;
        tracing::info!(workspace_id = %connection.workspace_id, connection_id = %connection.id, run_id = %run.id, "connection created, initial sync queued");
        Ok(Response::new(pb::CreateConnectionResponse {
            connection: Some(connection.to_proto()),
            initial_run: Some(run.to_proto()),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::UpdateSettingsResponse>, Status> {
        let request = request.into_inner();
        require("workspace_id", &request.workspace_id)?;
        let settings = Settings::from_proto(request.settings).map_err(GitSyncError::from)?;
        let current = self
            .store
            .get_connection(&request.workspace_id, &request.connection_id)
            .await?;
        self.require_source(&request.workspace_id, &settings.warehouse_source_id)
            .await?;
        // A new webhook secret alone reaches nothing new: no access check, no re-sync.
        if !current.settings.same_sync_source(&settings) {
            self.check_access(&request.workspace_id, &settings).await?;
        }
        let (connection, run) = self
            .store
            .update_settings(
                &request.workspace_id,
                &request.connection_id,
                &settings,
                request.expected_settings_version,
            )
            .await?;
        Ok(Response::new(pb::UpdateSettingsResponse {
            connection: Some(connection.to_proto()),
            run: run.map(|run| run.to_proto()),
        }))
    }

    async fn get_connection(
        &self,
        request: Request<pb::GetConnectionRequest>,
    ) -> Result<Response<pb::GetConnectionResponse>, Status> {
        let request = request.into_inner();
        let connection = self
            .store
            .get_connection(&request.workspace_id, &request.connection_id)
            .await?;
        Ok(Response::new(pb::GetConnectionResponse {
            connection: Some(connection.to_proto()),
        }))
    }

    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> Result<Response<pb::ListConnectionsResponse>, Status> {
        let request = request.into_inner();
        require("workspace_id", &request.workspace_id)?;
        let connections = self.store.list_connections(&request.workspace_id).await?;
        Ok(Response::new(pb::ListConnectionsResponse {
            connections: connections.iter().map(|c| c.to_proto()).collect(),
        }))
    }

    async fn delete_connection(
        &self,
        request: Request<pb::DeleteConnectionRequest>,
    ) -> Result<Response<pb::DeleteConnectionResponse>, Status> {
        let request = request.into_inner();
        self.store
            .delete_connection(&request.workspace_id, &request.connection_id)
            .await?;
        self.runner.forget(&request.connection_id).await;
        Ok(Response::new(pb::DeleteConnectionResponse {}))
    }

    async fn trigger_sync(
        &self,
        request: Request<pb::TriggerSyncRequest>,
    ) -> Result<Response<pb::TriggerSyncResponse>, Status> {
        let request = request.into_inner();
        let run = self
            .store
            .trigger_sync(
                &request.workspace_id,
                &request.connection_id,
                pb::SyncTrigger::Manual,
            )
            .await?;
        Ok(Response::new(pb::TriggerSyncResponse {
            run: Some(run.to_proto()),
        }))
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::GetRunResponse>, Status> {
        let request = request.into_inner();
        let run = self
            .store
            .get_run(&request.workspace_id, &request.run_id)
            .await?;
        Ok(Response::new(pb::GetRunResponse {
            run: Some(run.to_proto()),
        }))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        let request = request.into_inner();
        let limit = match i64::from(request.limit) {
            0 => DEFAULT_RUN_LIMIT,
            n if n < 0 => {
                return Err(
                    GitSyncError::InvalidArgument("limit must not be negative".into()).into(),
                )
            }
            n => n.min(MAX_RUN_LIMIT),
        };
        let runs = self
            .store
            .list_runs(&request.workspace_id, &request.connection_id, limit)
            .await?;
        Ok(Response::new(pb::ListRunsResponse {
            runs: runs.iter().map(|r| r.to_proto()).collect(),
        }))
    }
}
