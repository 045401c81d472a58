//! Destination RPCs: create / get / list / update / delete / test. A destination's secret
//! lives in the credentials service; settings hold no secrets. The work is
//! [`crate::destination_admin::DestinationAdmin`]'s; this decodes and encodes.

use super::RetlSchedulerGrpc;
use crate::destination_admin::{DestinationUpdate, NewDestination};
use crate::destination_config::{kind_to_wire, DestinationRecord, TestOutcome};
use backflow_proto::retl::v1 as pb;
use tonic::Status;

fn test_of(test: TestOutcome) -> pb::DestinationTestResult {
    pb::DestinationTestResult {
        ok: test.ok,
        message: test.message,
        tested_at_unix_ms: test.tested_at_ms,
    }
}

pub(crate) fn destination_of(record: DestinationRecord) -> pb::Destination {
    pb::Destination {
        id: record.id,
        workspace_id: record.workspace_id,
        name: record.name,
        kind: kind_to_wire(record.kind),
        settings: record.settings.into_iter().collect(),
        credential_id: record.credential_id,
        rate_limit_per_second: record.rate_limit_per_second,
        created_at_unix_ms: record.created_at_ms,
        updated_at_unix_ms: record.updated_at_ms,
        version: record.version,
        last_test: record.last_test.map(test_of),
    }
}

#[tracing::instrument(skip(grpc, request), fields(workspace_id = %request.workspace_id))]
pub async fn create_destination(
    grpc: &RetlSchedulerGrpc,
    request: pb::CreateDestinationRequest,
) -> Result<pb::CreateDestinationResponse, Status> {
    let record = grpc
        .scheduler
        .destinations()
        .create(NewDestination {
            workspace_id: request.workspace_id,
            name: request.name,
            kind: request.kind,
            settings: request.settings.into_iter().collect(),
            credential_id: request.credential_id,
            rate_limit_per_second: request.rate_limit_per_second,
            skip_test: request.skip_test,
        })
        .await?;
    Ok(pb::CreateDestinationResponse {
        destination: Some(destination_of(record)),
    })
}

#[tracing::instrument(skip(grpc))]
pub async fn get_destination(
    grpc: &RetlSchedulerGrpc,
    request: pb::GetDestinationRequest,
) -> Result<pb::GetDestinationResponse, Status> {
    let record = grpc
        .scheduler
        .destinations()
        .get(&request.workspace_id, &request.destination_id)
        .await?;
    Ok(pb::GetDestinationResponse {
        destination: Some(destination_of(record)),
    })
}

#[tracing::instrument(skip(grpc))]
pub async fn list_destinations(
    grpc: &RetlSchedulerGrpc,
    request: pb::ListDestinationsRequest,
) -> Result<pb::ListDestinationsResponse, Status> {
    let records = grpc
        .scheduler
        .destinations()
        .list(&request.workspace_id)
        .await?;
    Ok(pb::ListDestinationsResponse {
        destinations: records.into_iter().map(destination_of).collect(),
    })
}

#[tracing::instrument(skip(grpc, request), fields(workspace_id = %request.workspace_id, destination_id = %request.destination_id))]
pub async fn update_destination(
    grpc: &RetlSchedulerGrpc,
    request: pb::UpdateDestinationRequest,
) -> Result<pb::UpdateDestinationResponse, Status> {
    let record = grpc
        .scheduler
        .destinations()
        .update(
            &request.workspace_id,
            &request.destination_id,
            DestinationUpdate {
                name: request.name,
                settings: request.settings.into_iter().collect(),
                replace_settings: request.replace_settings,
                credential_id: request.credential_id,
                rate_limit_per_second: request.rate_limit_per_second,
                skip_test: request.skip_test,
            },
        )
        .await?;
    Ok(pb::UpdateDestinationResponse {
        destination: Some(destination_of(record)),
    })
}

#[tracing::instrument(skip(grpc))]
pub async fn delete_destination(
    grpc: &RetlSchedulerGrpc,
    request: pb::DeleteDestinationRequest,
) -> Result<pb::DeleteDestinationResponse, Status> {
    grpc.scheduler
        .destinations()
        .delete(&request.workspace_id, &request.destination_id)
        .await?;
    Ok(pb::DeleteDestinationResponse {})
}

#[tracing::instrument(skip(grpc))]
pub async fn test_destination(
    grpc: &RetlSchedulerGrpc,
    request: pb::TestDestinationRequest,
) -> Result<pb::TestDestinationResponse, Status> {
    let outcome = grpc
        .scheduler
        .destinations()
        .test(&request.workspace_id, &request.destination_id)
        .await?;
    Ok(pb::TestDestinationResponse {
        result: Some(test_of(outcome)),
    })
}
