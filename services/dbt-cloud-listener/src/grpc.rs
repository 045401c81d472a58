//! The gRPC edge of the dbt Cloud listener: decodes requests, calls [`Connections`],
//! and maps [`DbtCloudError`] to status codes in one place.

use crate::connections::{Connections, NewConnection};
use crate::error::DbtCloudError;
use crate::store::{ConnectionRecord, ReceivedEventRecord};
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
            _ => Kind::Internal,
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
        last_test: None,
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
        _request: Request<pb::TestConnectionRequest>,
    ) -> Result<Response<pb::TestConnectionResponse>, Status> {
        Err(Status::unimplemented("test connection is not built yet"))
    }

    async fn list_jobs(
        &self,
        _request: Request<pb::ListJobsRequest>,
    ) -> Result<Response<pb::ListJobsResponse>, Status> {
        Err(Status::unimplemented("list jobs is not built yet"))
    }

    async fn list_job_runs(
        &self,
        _request: Request<pb::ListJobRunsRequest>,
    ) -> Result<Response<pb::ListJobRunsResponse>, Status> {
        Err(Status::unimplemented("list job runs is not built yet"))
    }

    async fn list_subscriptions(
        &self,
        _request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        Err(Status::unimplemented("list subscriptions is not built yet"))
    }
}
