//! Run RPCs: get, watch (progress stream), cancel, approve / reject a guarded run,
//! per-record errors.

use super::RetlSchedulerGrpc;
use backflow_proto::retl::v1 as pb;
use tonic::Status;

#[tracing::instrument(skip(_grpc))]
pub async fn get_run(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::GetRunRequest,
) -> Result<pb::GetRunResponse, Status> {
    Err(Status::unimplemented("get_run is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn cancel_run(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::CancelRunRequest,
) -> Result<pb::CancelRunResponse, Status> {
    Err(Status::unimplemented("cancel_run is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn approve_run(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::ApproveRunRequest,
) -> Result<pb::ApproveRunResponse, Status> {
    Err(Status::unimplemented("approve_run is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn reject_run(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::RejectRunRequest,
) -> Result<pb::RejectRunResponse, Status> {
    Err(Status::unimplemented("reject_run is not built yet"))
}

#[tracing::instrument(skip(_grpc))]
pub async fn list_run_record_errors(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::ListRunRecordErrorsRequest,
) -> Result<pb::ListRunRecordErrorsResponse, Status> {
    Err(Status::unimplemented(
        "list_run_record_errors is not built yet",
    ))
}

/// Progress messages of one run, ending with `finished`.
pub type WatchRunStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<pb::RunProgress, Status>> + Send + 'static>,
>;

#[tracing::instrument(skip(_grpc))]
pub async fn watch_run(
    _grpc: &RetlSchedulerGrpc,
    _request: pb::WatchRunRequest,
) -> Result<WatchRunStream, Status> {
    Err(Status::unimplemented("watch_run is not built yet"))
}
