//! Destination RPCs: create / get / list / update / delete / test. A destination's secret
//! lives in the credentials service; settings hold no secrets.

use super::RetlSchedulerGrpc;
use backflow_proto::retl::v1 as pb;
use tonic::Status;

#[tracing::instrument(skip(_grpc))]
pub async fn create_destination(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::CreateDestinationRequest,
) -> Result<pb::CreateDestinationResponse, Status> {
    Err(Status::unimplemented("create_destination is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn get_destination(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::GetDestinationRequest,
) -> Result<pb::GetDestinationResponse, Status> {
    Err(Status::unimplemented("get_destination is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn list_destinations(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::ListDestinationsRequest,
) -> Result<pb::ListDestinationsResponse, Status> {
    Err(Status::unimplemented("list_destinations is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn update_destination(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::UpdateDestinationRequest,
) -> Result<pb::UpdateDestinationResponse, Status> {
    Err(Status::unimplemented("update_destination is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn delete_destination(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::DeleteDestinationRequest,
) -> Result<pb::DeleteDestinationResponse, Status> {
    Err(Status::unimplemented("delete_destination is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn test_destination(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::TestDestinationRequest,
) -> Result<pb::TestDestinationResponse, Status> {
    Err(Status::unimplemented("test_destination is not built yet"))
}
