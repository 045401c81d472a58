//! Sync lifecycle RPCs beyond create/get/list/pause/resume/trigger: update, delete,
//! reset state, dry run.

use super::RetlSchedulerGrpc;
use backflow_proto::retl::v1 as pb;
use tonic::Status;

#[tracing::instrument(skip(_grpc))]
pub async fn update_sync(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::UpdateSyncRequest,
) -> Result<pb::UpdateSyncResponse, Status> {
    Err(Status::unimplemented("update_sync is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn delete_sync(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::DeleteSyncRequest,
) -> Result<pb::DeleteSyncResponse, Status> {
    Err(Status::unimplemented("delete_sync is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn reset_sync_state(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::ResetSyncStateRequest,
) -> Result<pb::ResetSyncStateResponse, Status> {
    Err(Status::unimplemented("reset_sync_state is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn dry_run_sync(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::DryRunSyncRequest,
) -> Result<pb::DryRunSyncResponse, Status> {
    Err(Status::unimplemented("dry_run_sync is not built yet"))
}
