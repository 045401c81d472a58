//! Sync lifecycle RPCs beyond get/list/pause/resume/trigger: update, delete, reset
//! state, dry run; and the decoding of sync requests (mappings, guards) shared with
//! create.

use super::{run_of, schedule_from_wire, sync_of, RetlSchedulerGrpc};
use crate::error::RetlError;
use crate::sync::{Guards, Mapping, NewSync, NullPolicy, SyncUpdate};
use backflow_proto::retl::v1 as pb;
use tonic::Status;

pub(crate) fn mapping_to_wire(mapping: Mapping) -> pb::FieldMapping {
    pb::FieldMapping {
        source_column: mapping.source_column,
        destination_field: mapping.destination_field,
        constant: mapping.constant,
        null_policy: mapping.null_policy.to_wire() as i32,
    }
}

fn mappings_of(wire: Vec<pb::FieldMapping>) -> Result<Vec<Mapping>, RetlError> {
    wire.into_iter()
        .map(|mapping| {
            Ok(Mapping {
                source_column: mapping.source_column.trim().to_string(),
                destination_field: mapping.destination_field.trim().to_string(),
                constant: mapping.constant,
                null_policy: NullPolicy::from_wire(mapping.null_policy)?,
            })
        })
        .collect()
}

fn guards_of(wire: Option<pb::SyncGuards>) -> Result<Option<Guards>, RetlError> {
    wire.map(|guards| Guards::from_wire(guards.max_delete_share, guards.allow_empty_extract))
        .transpose()
}

pub(crate) fn new_sync_of(request: pb::CreateSyncRequest) -> Result<NewSync, RetlError> {
    Ok(NewSync {
        workspace_id: request.workspace_id,
        name: request.name,
        retl_model_id: request.retl_model_id,
        destination_id: request.destination_id,
        mode: request.mode,
        mappings: mappings_of(request.mappings)?,
        schedule: schedule_from_wire(request.schedule),
        destination_options: request.destination_options.into_iter().collect(),
        guards: guards_of(request.guards)?.unwrap_or_default(),
        diff_strategy: request.diff_strategy,
        max_record_attempts: request.max_record_attempts,
        only_if_model_rebuilt: request.only_if_model_rebuilt,
        paused: request.paused,
    })
}

fn update_of(request: pb::UpdateSyncRequest) -> Result<SyncUpdate, RetlError> {
    Ok(SyncUpdate {
        name: request.name,
        mode: request.mode,
        mappings: mappings_of(request.mappings)?,
        replace_mappings: request.replace_mappings,
        schedule: match request.schedule {
            None => None,
            Some(schedule) => Some(schedule_from_wire(Some(schedule)).ok_or_else(|| {
                RetlError::InvalidArgument("schedule is set but names no kind".into())
            })?),
        },
        destination_options: request.destination_options.into_iter().collect(),
        replace_destination_options: request.replace_destination_options,
        guards: guards_of(request.guards)?,
        max_record_attempts: request.max_record_attempts,
        only_if_model_rebuilt: request.only_if_model_rebuilt,
        diff_strategy: request.diff_strategy,
    })
}

#[tracing::instrument(skip(grpc, request), fields(workspace_id = %request.workspace_id, sync_id = %request.sync_id))]
pub async fn update_sync(
    grpc: &RetlSchedulerGrpc,
    request: pb::UpdateSyncRequest,
) -> Result<pb::UpdateSyncResponse, Status> {
    let workspace_id = request.workspace_id.clone();
    let sync_id = request.sync_id.clone();
    let update = update_of(request)?;
    let record = grpc
        .scheduler
        .update_sync(&workspace_id, &sync_id, update)
        .await?;
    Ok(pb::UpdateSyncResponse {
        sync: Some(sync_of(record)),
    })
}

#[tracing::instrument(skip(grpc))]
pub async fn delete_sync(
    grpc: &RetlSchedulerGrpc,
    request: pb::DeleteSyncRequest,
) -> Result<pb::DeleteSyncResponse, Status> {
    grpc.scheduler
        .delete_sync(&request.workspace_id, &request.sync_id)
        .await?;
    Ok(pb::DeleteSyncResponse {})
}

#[tracing::instrument(skip(grpc))]
pub async fn reset_sync_state(
    grpc: &RetlSchedulerGrpc,
    request: pb::ResetSyncStateRequest,
) -> Result<pb::ResetSyncStateResponse, Status> {
    let record = grpc
        .scheduler
        .reset_state(&request.workspace_id, &request.sync_id)
        .await?;
    Ok(pb::ResetSyncStateResponse {
        sync: Some(sync_of(record)),
    })
}

#[tracing::instrument(skip(grpc))]
pub async fn dry_run_sync(
    grpc: &RetlSchedulerGrpc,
    request: pb::DryRunSyncRequest,
) -> Result<pb::DryRunSyncResponse, Status> {
    let run = grpc
        .scheduler
        .dry_run(&request.workspace_id, &request.sync_id)
        .await?;
    Ok(pb::DryRunSyncResponse {
        run: Some(run_of(run)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_round_trip_with_constants_and_null_policies() {
        let wire = vec![
            pb::FieldMapping {
                source_column: "email".into(),
                destination_field: "Email".into(),
                constant: None,
                null_policy: pb::NullPolicy::OmitField as i32,
            },
            pb::FieldMapping {
                source_column: String::new(),
                destination_field: "source".into(),
                constant: Some("backflow".into()),
                null_policy: pb::NullPolicy::SendNull as i32,
            },
        ];
        let domain = mappings_of(wire.clone()).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(domain[0].null_policy, NullPolicy::OmitField);
        assert_eq!(domain[1].constant.as_deref(), Some("backflow"));
        let back: Vec<_> = domain.into_iter().map(mapping_to_wire).collect();
        assert_eq!(back, wire);
        let bad = vec![pb::FieldMapping {
            null_policy: 9,
            ..Default::default()
        }];
        assert!(mappings_of(bad).is_err());
    }

    #[test]
    fn an_update_with_an_empty_schedule_is_refused() {
        let request = pb::UpdateSyncRequest {
            schedule: Some(pb::Schedule { kind: None }),
            ..Default::default()
        };
        assert!(matches!(
            update_of(request),
            Err(RetlError::InvalidArgument(_))
        ));
    }
}
