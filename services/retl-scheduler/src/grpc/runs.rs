//! Run RPCs: get, watch (progress stream), cancel, approve / reject a guarded run,
//! per-record errors. Progress lives in the run row (the executor saves it a few times a
//! second), so any replica answers WatchRun by polling the row until the run ends.

use super::RetlSchedulerGrpc;
use crate::error::RetlError;
use crate::run::is_terminal;
use crate::store::runs::run_to_proto;
use backflow_proto::retl::v1 as pb;
use std::time::Duration;
use tonic::Status;

/// How often WatchRun looks at the run row.
const WATCH_POLL: Duration = Duration::from_millis(200);

fn require(field: &str, value: &str) -> Result<(), RetlError> {
    if value.trim().is_empty() {
        Err(RetlError::InvalidArgument(format!("{field} is required")))
    } else {
        Ok(())
    }
}

#[tracing::instrument(skip(grpc))]
pub async fn get_run(
    grpc: &RetlSchedulerGrpc,
    request: pb::GetRunRequest,
) -> Result<pb::GetRunResponse, Status> {
    require("workspace_id", &request.workspace_id)?;
    require("run_id", &request.run_id)?;
    let run = grpc
        .scheduler
        .store()
        .get_run(&request.workspace_id, &request.run_id)
        .await?;
    Ok(pb::GetRunResponse {
        run: Some(run_to_proto(run)),
    })
}

#[tracing::instrument(skip(grpc))]
pub async fn cancel_run(
    grpc: &RetlSchedulerGrpc,
    request: pb::CancelRunRequest,
) -> Result<pb::CancelRunResponse, Status> {
    require("workspace_id", &request.workspace_id)?;
    require("run_id", &request.run_id)?;
    let run = grpc
        .scheduler
        .store()
        .cancel_run(&request.workspace_id, &request.run_id)
        .await?;
    tracing::info!(run_id = %run.id, status = run.status.as_str_name(), "run cancel requested");
    Ok(pb::CancelRunResponse {
        run: Some(run_to_proto(run)),
    })
}

#[tracing::instrument(skip(grpc))]
pub async fn approve_run(
    grpc: &RetlSchedulerGrpc,
    request: pb::ApproveRunRequest,
) -> Result<pb::ApproveRunResponse, Status> {
    require("workspace_id", &request.workspace_id)?;
    require("run_id", &request.run_id)?;
    let run = grpc
        .scheduler
        .store()
        .approve_run(&request.workspace_id, &request.run_id)
        .await?;
    tracing::info!(run_id = %run.id, "guarded run approved");
    Ok(pb::ApproveRunResponse {
        run: Some(run_to_proto(run)),
    })
}

#[tracing::instrument(skip(grpc))]
pub async fn reject_run(
    grpc: &RetlSchedulerGrpc,
    request: pb::RejectRunRequest,
) -> Result<pb::RejectRunResponse, Status> {
    require("workspace_id", &request.workspace_id)?;
    require("run_id", &request.run_id)?;
    let run = grpc
        .scheduler
        .store()
        .reject_run(&request.workspace_id, &request.run_id)
        .await?;
    tracing::info!(run_id = %run.id, "guarded run rejected");
    Ok(pb::RejectRunResponse {
        run: Some(run_to_proto(run)),
    })
}

#[tracing::instrument(skip(grpc))]
pub async fn list_run_record_errors(
    grpc: &RetlSchedulerGrpc,
    request: pb::ListRunRecordErrorsRequest,
) -> Result<pb::ListRunRecordErrorsResponse, Status> {
    require("workspace_id", &request.workspace_id)?;
    require("run_id", &request.run_id)?;
    let limit = if request.limit <= 0 {
        1000
    } else {
        i64::from(request.limit).min(10_000)
    };
    let errors = grpc
        .scheduler
        .store()
        .list_record_errors(&request.workspace_id, &request.run_id, limit)
        .await?;
    Ok(pb::ListRunRecordErrorsResponse {
        errors: errors
            .into_iter()
            .map(|e| pb::RunRecordError {
                run_id: request.run_id.clone(),
                change: e.change as i32,
                key_json: e.key_json,
                rejected: e.rejected,
                message: e.message,
                destination_status: e.destination_status,
                attempts: e.attempts,
                given_up: e.given_up,
            })
            .collect(),
    })
}

/// Progress messages of one run, ending with `finished`.
pub type WatchRunStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<pb::RunProgress, Status>> + Send + 'static>,
>;

#[tracing::instrument(skip(grpc))]
pub async fn watch_run(
    grpc: &RetlSchedulerGrpc,
    request: pb::WatchRunRequest,
) -> Result<WatchRunStream, Status> {
    require("workspace_id", &request.workspace_id)?;
    require("run_id", &request.run_id)?;
    let store = grpc.scheduler.store().clone();
    // Fails now (not in the stream) for an unknown run.
    let first = store
        .get_run(&request.workspace_id, &request.run_id)
        .await?;
    let state = (store, request, Some(first), None::<pb::Run>, false);
    let stream =
        futures::stream::unfold(state, |(store, request, mut next, last, done)| async move {
            if done {
                return None;
            }
            loop {
                let record = match next.take() {
                    Some(record) => record,
                    None => {
                        tokio::time::sleep(WATCH_POLL).await;
                        match store.get_run(&request.workspace_id, &request.run_id).await {
                            Ok(record) => record,
                            Err(error) => {
                                let status = Status::from(error);
                                return Some((Err(status), (store, request, None, last, true)));
                            }
                        }
                    }
                };
                let finished = is_terminal(record.status);
                let run = run_to_proto(record);
                if last.as_ref() == Some(&run) && !finished {
                    continue;
                }
                let progress = pb::RunProgress {
                    run: Some(run.clone()),
                    finished,
                };
                return Some((Ok(progress), (store, request, None, Some(run), finished)));
            }
        });
    Ok(Box::pin(stream))
}
