//! The gRPC edge of the catalog: decodes requests, calls the store, and maps
//! [`CatalogError`] to status codes in one place.

pub mod preview;
pub mod retl_models;
mod sources;

use crate::error::CatalogError;
use crate::store::{CatalogStore, ProjectRecord, ProjectStatus};
use crate::warehouse_access::WarehouseAccess;
use backflow_proto::catalog::v1 as pb;
use pb::model_catalog_service_server::ModelCatalogService;
use tonic::{Request, Response, Status};

pub const SERVICE_NAME: &str = "backflow.catalog.v1.ModelCatalogService";
const DEFAULT_PAGE_SIZE: i64 = 200;
const MAX_PAGE_SIZE: i64 = 1000;

#[derive(Debug, Clone)]
pub struct CatalogGrpc {
    store: CatalogStore,
    /// Warehouse reads of preview, describe and key checks (grpc/preview.rs).
    preview: std::sync::Arc<preview::PreviewContext>,
    /// Connectors for connection tests of sources (grpc/sources.rs); `None` = not configured.
    warehouse: Option<WarehouseAccess>,
}

impl CatalogGrpc {
    pub fn new(store: CatalogStore) -> Self {
        Self {
            store,
            preview: std::sync::Arc::new(preview::PreviewContext::unconfigured()),
            warehouse: None,
        }
    }

    /// Tests warehouse sources through `warehouse` (grpc/sources.rs).
    pub fn with_warehouse(mut self, warehouse: WarehouseAccess) -> Self {
        self.warehouse = Some(warehouse);
        self
    }

    /// Reads warehouses through `preview` (connectors, timeouts, the preview cache).
    pub fn with_preview(mut self, preview: preview::PreviewContext) -> Self {
        self.preview = std::sync::Arc::new(preview);
        self
    }

    pub fn into_server(self) -> pb::model_catalog_service_server::ModelCatalogServiceServer<Self> {
        pb::model_catalog_service_server::ModelCatalogServiceServer::new(self)
    }
}

/// Request errors reach callers through platform's one mapping
/// ([`backflow_platform::request_error::to_status`]).
impl backflow_platform::request_error::RequestError for CatalogError {
    const SERVICE: &'static str = "model-catalog";

    fn kind(&self) -> backflow_platform::request_error::RequestErrorKind {
        use backflow_platform::request_error::RequestErrorKind as Kind;
        match self {
            CatalogError::InvalidArgument(_) => Kind::InvalidArgument,
            CatalogError::NotFound { .. } | CatalogError::CommitNotFound { .. } => Kind::NotFound,
            CatalogError::AlreadyExists { .. } => Kind::AlreadyExists,
            CatalogError::Conflict { .. } => Kind::Conflict,
            CatalogError::FailedPrecondition(_) => Kind::FailedPrecondition,
            CatalogError::Unavailable(_) => Kind::Unavailable,
            CatalogError::Warehouse(error) => preview::warehouse_error_kind(error),
            _ => Kind::Internal,
        }
    }
}

impl From<CatalogError> for Status {
    fn from(error: CatalogError) -> Self {
        backflow_platform::request_error::to_status(&error)
    }
}

fn require(field: &str, value: &str) -> Result<(), CatalogError> {
    if value.trim().is_empty() {
        Err(CatalogError::InvalidArgument(format!(
            "{field} is required"
        )))
    } else {
        Ok(())
    }
}

fn project_of(record: ProjectRecord) -> pb::Project {
    pb::Project {
        connection_id: record.connection_id,
        workspace_id: record.workspace_id,
        name: record.name,
        repository_url: record.repository_url,
        branch: record.branch,
        default_schema: record.default_schema,
        latest_commit_sha: record.latest_commit_sha,
        model_count: record.model_count,
        deleted: record.deleted,
        updated_at_unix_ms: record.updated_at_ms,
        status: match record.status {
            ProjectStatus::NeverSynced => pb::ProjectStatus::NeverSynced,
            ProjectStatus::Ok => pb::ProjectStatus::Ok,
            ProjectStatus::Failing => pb::ProjectStatus::Failing,
        } as i32,
        last_run_id: record.last_run_id,
        last_error: record.last_error,
        last_attempted_commit: record.last_attempted_commit,
        error_count: record.error_count,
    }
}

#[tonic::async_trait]
impl ModelCatalogService for CatalogGrpc {
    async fn create_warehouse_source(
        &self,
        request: Request<pb::CreateWarehouseSourceRequest>,
    ) -> Result<Response<pb::CreateWarehouseSourceResponse>, Status> {
        self.create_source(request).await
    }

    async fn list_warehouse_sources(
        &self,
        request: Request<pb::ListWarehouseSourcesRequest>,
    ) -> Result<Response<pb::ListWarehouseSourcesResponse>, Status> {
        self.list_sources(request).await
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let request = request.into_inner();
        require("workspace_id", &request.workspace_id)?;
        let projects = self.store.list_projects(&request.workspace_id).await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: projects.into_iter().map(project_of).collect(),
        }))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::GetProjectResponse>, Status> {
        let request = request.into_inner();
        let project = self
            .store
            .get_project(&request.workspace_id, &request.connection_id)
            .await?;
        Ok(Response::new(pb::GetProjectResponse {
            project: Some(project_of(project)),
        }))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let request = request.into_inner();
        let page_size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                return Err(
                    CatalogError::InvalidArgument("page_size must not be negative".into()).into(),
                )
            }
            n => i64::from(n).min(MAX_PAGE_SIZE),
        };
        let (commit_sha, mut models) = self
            .store
            .list_models(
                &request.workspace_id,
                &request.connection_id,
                &request.commit_sha,
                &request.page_token,
                page_size,
            )
            .await?;
        let next_page_token = if i64::try_from(models.len()).unwrap_or(i64::MAX) == page_size {
            models
                .last()
                .map(|model| model.unique_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        if !request.include_compiled_sql {
            for model in &mut models {
                model.compiled_sql.clear();
            }
        }
        Ok(Response::new(pb::ListModelsResponse {
            models,
            commit_sha,
            next_page_token,
        }))
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::GetModelResponse>, Status> {
        let request = request.into_inner();
        let model = self
            .store
            .get_model(
                &request.workspace_id,
                &request.connection_id,
                &request.unique_id,
                &request.commit_sha,
            )
            .await?;
        Ok(Response::new(pb::GetModelResponse { model: Some(model) }))
    }

    async fn create_retl_model(
        &self,
        request: Request<pb::CreateRetlModelRequest>,
    ) -> Result<Response<pb::CreateRetlModelResponse>, Status> {
        Ok(Response::new(
            retl_models::create(self, request.into_inner()).await?,
        ))
    }

    async fn get_retl_model(
        &self,
        request: Request<pb::GetRetlModelRequest>,
    ) -> Result<Response<pb::GetRetlModelResponse>, Status> {
        Ok(Response::new(
            retl_models::get(self, request.into_inner()).await?,
        ))
    }

    async fn list_retl_models(
        &self,
        request: Request<pb::ListRetlModelsRequest>,
    ) -> Result<Response<pb::ListRetlModelsResponse>, Status> {
        Ok(Response::new(
            retl_models::list(self, request.into_inner()).await?,
        ))
    }

    async fn update_retl_model(
        &self,
        request: Request<pb::UpdateRetlModelRequest>,
    ) -> Result<Response<pb::UpdateRetlModelResponse>, Status> {
        Ok(Response::new(
            retl_models::update(self, request.into_inner()).await?,
        ))
    }

    async fn delete_retl_model(
        &self,
        request: Request<pb::DeleteRetlModelRequest>,
    ) -> Result<Response<pb::DeleteRetlModelResponse>, Status> {
        Ok(Response::new(
            retl_models::delete(self, request.into_inner()).await?,
        ))
    }

    async fn resolve_retl_model_run(
        &self,
        request: Request<pb::ResolveRetlModelRunRequest>,
    ) -> Result<Response<pb::ResolveRetlModelRunResponse>, Status> {
        Ok(Response::new(
            retl_models::resolve_run(self, request.into_inner()).await?,
        ))
    }

    async fn describe_model_columns(
        &self,
        request: Request<pb::DescribeModelColumnsRequest>,
    ) -> Result<Response<pb::DescribeModelColumnsResponse>, Status> {
        Ok(Response::new(
            preview::describe(self, request.into_inner()).await?,
        ))
    }

    async fn preview_model(
        &self,
        request: Request<pb::PreviewModelRequest>,
    ) -> Result<Response<pb::PreviewModelResponse>, Status> {
        Ok(Response::new(
            preview::preview(self, request.into_inner()).await?,
        ))
    }

    async fn check_primary_key(
        &self,
        request: Request<pb::CheckPrimaryKeyRequest>,
    ) -> Result<Response<pb::CheckPrimaryKeyResponse>, Status> {
        Ok(Response::new(
            preview::check_primary_key(self, request.into_inner()).await?,
        ))
    }

    async fn get_warehouse_source(
        &self,
        request: Request<pb::GetWarehouseSourceRequest>,
    ) -> Result<Response<pb::GetWarehouseSourceResponse>, Status> {
        self.get_source(request).await
    }

    async fn update_warehouse_source(
        &self,
        request: Request<pb::UpdateWarehouseSourceRequest>,
    ) -> Result<Response<pb::UpdateWarehouseSourceResponse>, Status> {
        self.update_source(request).await
    }

    async fn test_warehouse_source(
        &self,
        request: Request<pb::TestWarehouseSourceRequest>,
    ) -> Result<Response<pb::TestWarehouseSourceResponse>, Status> {
        self.test_source(request).await
    }

    async fn delete_warehouse_source(
        &self,
        request: Request<pb::DeleteWarehouseSourceRequest>,
    ) -> Result<Response<pb::DeleteWarehouseSourceResponse>, Status> {
        self.delete_source(request).await
    }
}
