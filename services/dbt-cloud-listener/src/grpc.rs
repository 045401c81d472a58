//! The gRPC edge of the dbt Cloud listener: decodes requests, calls [`Connections`],
//! and maps [`DbtCloudError`] to status codes in one place. Whatever dbt Cloud refused
//! (token, permission, account, host) is FAILED_PRECONDITION with the message that says
//! what to fix; a credentials service that cannot answer is UNAVAILABLE.

use crate::api::{Job, Run, RunStatus};
use crate::connections::{Connections, NewConnection};
use crate::error::DbtCloudError;
use crate::store::{ConnectionRecord, LastTest, ReceivedEventRecord};
use crate::watch::SubscriptionView;
use backflow_proto::dbtcloud::v1 as pb;
use pb::dbt_cloud_listener_service_server::{
    DbtCloudListenerService, DbtCloudListenerServiceServer,
};
use tonic::{Request, Response, Status};

pub const SERVICE_NAME: &str = "backflow.dbtcloud.v1.DbtCloudListenerService";

#[derive(Debug, Clone)]
pub struct DbtCloudListenerGrpc {
    connections: Connections,
}

impl DbtCloudListenerGrpc {
    pub fn new(connections: Connections) -> Self {
        Self { connections }
    }

    pub fn into_server(self) -> DbtCloudListenerServiceServer<Self> {
        DbtCloudListenerServiceServer::new(self)
    }
}

/// Request errors reach callers through platform's one mapping
/// ([`backflow_platform::request_error::to_status`]).
impl backflow_platform::request_error::RequestError for DbtCloudError {
    const SERVICE: &'static str = "dbt-cloud-listener";

    fn kind(&self) -> backflow_platform::request_error::RequestErrorKind {
        use backflow_platform::request_error::RequestErrorKind as Kind;
        match self {
            DbtCloudError::InvalidArgument(_) => Kind::InvalidArgument,
            DbtCloudError::NotFound(_) => Kind::NotFound,
            DbtCloudError::AlreadyExists(_) => Kind::AlreadyExists,
            DbtCloudError::DbtCloud(_) | DbtCloudError::Precondition(_) => Kind::FailedPrecondition,
            DbtCloudError::Credentials {
                transient: true, ..
            } => Kind::Unavailable,
            DbtCloudError::Credentials { .. } => Kind::FailedPrecondition,
            DbtCloudError::Storage(_) => Kind::Internal,
        }
    }
}

impl From<DbtCloudError> for Status {
    fn from(error: DbtCloudError) -> Self {
        backflow_platform::request_error::to_status(&error)
    }
}

fn connection_of(record: ConnectionRecord) -> pb::Connection {
    pb::Connection {
        id: record.id,
        workspace_id: record.workspace_id,
        name: record.name,
        access_url: record.access_url,
        account_id: record.account_id,
        api_token_credential_id: record.api_token_credential_id,
        created_at_unix_ms: record.created_at_ms,
        last_test: record.last_test.map(test_of),
    }
}

fn test_of(test: LastTest) -> pb::ConnectionTestResult {
    pb::ConnectionTestResult {
        ok: test.ok,
        problem: test.problem,
        message: test.message,
        tested_at_unix_ms: test.tested_at_ms,
        account_name: test.account_name,
    }
}

fn job_of(job: Job, bound_sync_count: usize) -> pb::DbtCloudJob {
    pb::DbtCloudJob {
        id: job.id,
        project_id: job.project_id.unwrap_or(0),
        environment_id: job.environment_id.unwrap_or(0),
        name: job.name,
        job_type: job.job_type.unwrap_or_default(),
        state: job.state.unwrap_or(0),
        bound_sync_count: i32::try_from(bound_sync_count).unwrap_or(i32::MAX),
    }
}

fn run_of(run: Run, job_id: i64) -> pb::DbtCloudRun {
    let status = run
        .status_humanized
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| RunStatus::from_code(run.status).name());
    pb::DbtCloudRun {
        id: run.id,
        job_id: run.job_definition_id.unwrap_or(job_id),
        status_code: run.status,
        status,
        created_at: run.created_at.unwrap_or_default(),
        finished_at: run.finished_at.unwrap_or_default(),
        git_sha: run.git_sha.unwrap_or_default(),
        href: run.href.unwrap_or_default(),
    }
}

fn subscription_of(view: SubscriptionView) -> pb::WebhookSubscription {
    pb::WebhookSubscription {
        id: view.id,
        workspace_id: view.workspace_id,
        connection_id: view.connection_id,
        job_id: view.job_id,
        dbt_webhook_id: view.dbt_webhook_id,
        url: view.url,
        hmac_secret_credential_id: view.hmac_secret_credential_id,
        created_at_unix_ms: view.created_at_ms,
        sync_ids: view.sync_ids,
        state: view.state,
        problem: view.problem,
        account_id: view.account_id,
    }
}

fn event_of(record: ReceivedEventRecord) -> pb::ReceivedEvent {
    pb::ReceivedEvent {
        event_id: record.event_id,
        connection_id: record.connection_id,
        event_type: record.event_type,
        job_id: record.job_id,
        run_id: record.run_id,
        run_status_code: record.run_status_code,
        received_at_unix_ms: record.received_at_ms,
    }
}

#[tonic::async_trait]
impl DbtCloudListenerService for DbtCloudListenerGrpc {
    async fn create_connection(
        &self,
        request: Request<pb::CreateConnectionRequest>,
    ) -> Result<Response<pb::CreateConnectionResponse>, Status> {
        let request = request.into_inner();
        let record = self
            .connections
            .create(NewConnection {
                workspace_id: request.workspace_id,
                name: request.name,
                access_url: request.access_url,
                account_id: request.account_id,
                api_token_credential_id: request.api_token_credential_id,
            })
            .await?;
        Ok(Response::new(pb::CreateConnectionResponse {
            connection: Some(connection_of(record)),
        }))
    }

    async fn get_connection(
        &self,
        request: Request<pb::GetConnectionRequest>,
    ) -> Result<Response<pb::GetConnectionResponse>, Status> {
        let request = request.into_inner();
        let record = self
            .connections
            .get(&request.workspace_id, &request.connection_id)
            .await?;
        Ok(Response::new(pb::GetConnectionResponse {
            connection: Some(connection_of(record)),
        }))
    }

    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> Result<Response<pb::ListConnectionsResponse>, Status> {
        let records = self
            .connections
            .list(&request.into_inner().workspace_id)
            .await?;
        Ok(Response::new(pb::ListConnectionsResponse {
            connections: records.into_iter().map(connection_of).collect(),
        }))
    }

    async fn delete_connection(
        &self,
        request: Request<pb::DeleteConnectionRequest>,
    ) -> Result<Response<pb::DeleteConnectionResponse>, Status> {
        let request = request.into_inner();
        self.connections
            .delete(&request.workspace_id, &request.connection_id)
            .await?;
        Ok(Response::new(pb::DeleteConnectionResponse {}))
    }

    async fn list_received_events(
        &self,
        request: Request<pb::ListReceivedEventsRequest>,
    ) -> Result<Response<pb::ListReceivedEventsResponse>, Status> {
        let request = request.into_inner();
        let events = self
            .connections
            .received_events(&request.workspace_id, &request.connection_id)
            .await?;
        Ok(Response::new(pb::ListReceivedEventsResponse {
            events: events.into_iter().map(event_of).collect(),
        }))
    }

    async fn test_connection(
        &self,
        request: Request<pb::TestConnectionRequest>,
    ) -> Result<Response<pb::TestConnectionResponse>, Status> {
        let request = request.into_inner();
        let test = self
            .connections
            .test(&request.workspace_id, &request.connection_id)
            .await?;
        Ok(Response::new(pb::TestConnectionResponse {
            result: Some(test_of(test)),
        }))
    }

    async fn list_jobs(
        &self,
        request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        let request = request.into_inner();
        if request.project_id < 0 {
            return Err(DbtCloudError::InvalidArgument(format!(
                "project_id must be a dbt Cloud project id or 0 for every project, got {}",
                request.project_id
            ))
            .into());
        }
        let project = (request.project_id > 0).then_some(request.project_id);
        let record = self
            .connections
            .get(&request.workspace_id, &request.connection_id)
            .await?;
        let jobs = self
            .connections
            .jobs(&request.workspace_id, &request.connection_id, project)
            .await?;
        let counts = self
            .connections
            .watcher()
            .waiting_counts(&request.workspace_id, record.account_id)
            .await?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: jobs
                .into_iter()
                .map(|job| {
                    let count = counts.get(&job.id).copied().unwrap_or(0);
                    job_of(job, count)
                })
                .collect(),
        }))
    }

    async fn list_job_runs(
        &self,
        request: Request<pb::ListJobRunsRequest>,
    ) -> Result<Response<pb::ListJobRunsResponse>, Status> {
        let request = request.into_inner();
        let runs = self
            .connections
            .runs(
                &request.workspace_id,
                &request.connection_id,
                request.job_id,
                request.limit,
            )
            .await?;
        Ok(Response::new(pb::ListJobRunsResponse {
            runs: runs
                .into_iter()
                .map(|run| run_of(run, request.job_id))
                .collect(),
        }))
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let request = request.into_inner();
        if request.workspace_id.trim().is_empty() {
            return Err(DbtCloudError::InvalidArgument("workspace_id is required".into()).into());
        }
        let connection = Some(request.connection_id.trim()).filter(|id| !id.is_empty());
        if let Some(connection_id) = connection {
            self.connections
                .get(&request.workspace_id, connection_id)
                .await?;
        }
        let views = self
            .connections
            .watcher()
            .list(&request.workspace_id, connection)
            .await?;
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: views.into_iter().map(subscription_of).collect(),
        }))
    }
}
