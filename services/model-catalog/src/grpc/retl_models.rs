//! The Reverse ETL model RPCs: create (name, source, dbt model, primary key that must
//! be among the model's columns, query mode), get, list, update and delete. Updates and
//! deletes are refused with FAILED_PRECONDITION naming the enabled syncs that use the
//! model; the store checks that inside the writing transaction.

use super::{preview, require, CatalogGrpc};
use crate::error::CatalogError;
use crate::retl::key_check::resolve_key_columns;
use crate::retl::query::{breakage, query_for, relation_of, QueryMode};
use crate::store::{RetlHealth, RetlModelChange, RetlModelRecord};
use backflow_proto::catalog::v1 as pb;

fn primary_key_of(columns: &[String]) -> Result<Vec<String>, CatalogError> {
    let mut key: Vec<String> = Vec::new();
    for column in columns.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        if key.iter().any(|k| k == column) {
            return Err(CatalogError::InvalidArgument(format!(
                "primary_key names column {column:?} twice"
            )));
        }
        key.push(column.to_string());
    }
    if key.is_empty() {
        return Err(CatalogError::InvalidArgument(
            "primary_key needs at least one column".into(),
        ));
    }
    Ok(key)
}

fn query_mode_of(value: i32) -> Result<QueryMode, CatalogError> {
    QueryMode::from_wire(value).map_err(CatalogError::InvalidArgument)
}

/// The key as the model spells it; a column that is not the model's is named.
async fn checked_key(
    grpc: &CatalogGrpc,
    workspace_id: &str,
    model: &pb::Model,
    source_id: &str,
    key: &[String],
) -> Result<Vec<String>, CatalogError> {
    let columns = preview::model_column_names(grpc, workspace_id, model, source_id).await?;
    resolve_key_columns(key, &columns).map_err(|missing| {
        CatalogError::InvalidArgument(format!("{missing} in dbt model {}", model.unique_id))
    })
}

/// The model runs in `mode`, or the reason it cannot.
fn runnable(model: &pb::Model, mode: QueryMode) -> Result<(), CatalogError> {
    query_for(model, mode)
        .map(|_| ())
        .map_err(|refusal| CatalogError::FailedPrecondition(refusal.to_string()))
}

async fn to_proto(
    grpc: &CatalogGrpc,
    record: &RetlModelRecord,
) -> Result<pb::RetlModel, CatalogError> {
    let used_by = grpc
        .store
        .syncs_using(&record.workspace_id, &record.id)
        .await?
        .into_iter()
        .map(|(sync_id, _)| sync_id)
        .collect();
    Ok(record.to_proto_used_by(used_by))
}

#[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id, connection_id = %request.connection_id, model = %request.model_unique_id))]
pub(super) async fn create(
    grpc: &CatalogGrpc,
    request: pb::CreateRetlModelRequest,
) -> Result<pb::CreateRetlModelResponse, CatalogError> {
    require("workspace_id", &request.workspace_id)?;
    require("name", &request.name)?;
    require("connection_id", &request.connection_id)?;
    require("model_unique_id", &request.model_unique_id)?;
    let key = primary_key_of(&request.primary_key)?;
    let query_mode = query_mode_of(request.query_mode)?;
    let ws = request.workspace_id.as_str();
    // The dbt model as it is at the connection's latest synced commit.
    let model = grpc
        .store
        .get_model(ws, &request.connection_id, &request.model_unique_id, "")
        .await?;
    runnable(&model, query_mode)?;
    let source_id =
        preview::resolve_source(grpc, ws, &request.connection_id, &request.source_id).await?;
    let primary_key = checked_key(grpc, ws, &model, &source_id, &key).await?;
    let commit_sha = if model.commit_sha.is_empty() {
        grpc.store
            .get_project(ws, &request.connection_id)
            .await?
            .latest_commit_sha
    } else {
        model.commit_sha.clone()
    };
    let now = backflow_platform::now_unix_ms();
    let record = RetlModelRecord {
        id: backflow_platform::new_id(),
        workspace_id: request.workspace_id.clone(),
        name: request.name.trim().to_string(),
        connection_id: request.connection_id.clone(),
        model_unique_id: request.model_unique_id.clone(),
        primary_key,
        created_at_ms: now,
        source_id,
        query_mode,
        health: RetlHealth::Ok,
        commit_sha,
        relation_name: relation_of(&model)
            .map(|relation| relation.rendered)
            .unwrap_or_default(),
        updated_at_ms: now,
    };
    grpc.store.create_retl_model(&record).await?;
    tracing::info!(retl_model_id = %record.id, "retl model created");
    Ok(pb::CreateRetlModelResponse {
        model: Some(record.to_proto()),
    })
}

#[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id, retl_model_id = %request.retl_model_id))]
pub(super) async fn get(
    grpc: &CatalogGrpc,
    request: pb::GetRetlModelRequest,
) -> Result<pb::GetRetlModelResponse, CatalogError> {
    require("workspace_id", &request.workspace_id)?;
    require("retl_model_id", &request.retl_model_id)?;
    let record = grpc
        .store
        .get_retl_model(&request.workspace_id, &request.retl_model_id)
        .await?;
    Ok(pb::GetRetlModelResponse {
        model: Some(to_proto(grpc, &record).await?),
    })
}

#[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id))]
pub(super) async fn list(
    grpc: &CatalogGrpc,
    request: pb::ListRetlModelsRequest,
) -> Result<pb::ListRetlModelsResponse, CatalogError> {
    require("workspace_id", &request.workspace_id)?;
    let records = grpc.store.list_retl_models(&request.workspace_id).await?;
    let mut models = Vec::with_capacity(records.len());
    for record in &records {
        models.push(to_proto(grpc, record).await?);
    }
    Ok(pb::ListRetlModelsResponse { models })
}

#[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id, retl_model_id = %request.retl_model_id))]
pub(super) async fn update(
    grpc: &CatalogGrpc,
    request: pb::UpdateRetlModelRequest,
) -> Result<pb::UpdateRetlModelResponse, CatalogError> {
    require("workspace_id", &request.workspace_id)?;
    require("retl_model_id", &request.retl_model_id)?;
    let ws = request.workspace_id.as_str();
    let current = grpc
        .store
        .get_retl_model(ws, &request.retl_model_id)
        .await?;
    let mut change = RetlModelChange::default();
    if !request.name.trim().is_empty() {
        change.name = Some(request.name.trim().to_string());
    }
    if request.query_mode != 0 {
        change.query_mode = Some(query_mode_of(request.query_mode)?);
    }
    let new_key = if request.primary_key.is_empty() {
        None
    } else {
        Some(primary_key_of(&request.primary_key)?)
    };
    if change.name.is_none() && change.query_mode.is_none() && new_key.is_none() {
        return Err(CatalogError::InvalidArgument(
            "nothing to update: give name, primary_key or query_mode".into(),
        ));
    }
    // Say early (and without the warehouse) that it is in use; the store's transaction
    // is what enforces it.
    let used = grpc.store.syncs_using(ws, &current.id).await?;
    if !used.is_empty() {
        return grpc
            .store
            .update_retl_model(ws, &current.id, &change)
            .await
            .map(|record| pb::UpdateRetlModelResponse {
                model: Some(record.to_proto()),
            });
    }
    if change.query_mode.is_some() || new_key.is_some() {
        let model = grpc
            .store
            .get_model(
                ws,
                &current.connection_id,
                &current.model_unique_id,
                &current.commit_sha,
            )
            .await?;
        runnable(&model, change.query_mode.unwrap_or(current.query_mode))?;
        if let Some(key) = new_key {
            change.primary_key =
                Some(checked_key(grpc, ws, &model, &current.source_id, &key).await?);
        }
    }
    let record = grpc
        .store
        .update_retl_model(ws, &current.id, &change)
        .await?;
    tracing::info!(retl_model_id = %record.id, "retl model updated");
    Ok(pb::UpdateRetlModelResponse {
        model: Some(to_proto(grpc, &record).await?),
    })
}

#[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id, retl_model_id = %request.retl_model_id))]
pub(super) async fn delete(
    grpc: &CatalogGrpc,
    request: pb::DeleteRetlModelRequest,
) -> Result<pb::DeleteRetlModelResponse, CatalogError> {
    require("workspace_id", &request.workspace_id)?;
    require("retl_model_id", &request.retl_model_id)?;
    grpc.store
        .delete_retl_model(&request.workspace_id, &request.retl_model_id)
        .await?;
    tracing::info!("retl model deleted");
    Ok(pb::DeleteRetlModelResponse {})
}

/// Everything the sync engine needs to extract a Reverse ETL model (service callers only):
/// the model, its source, the one statement it runs (unwrapped; the connector wraps it
/// read-only) and its columns. A broken model, one that gives no query, or a source that
/// is gone is FAILED_PRECONDITION with the reason, so the run fails saying what to fix.
#[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id, retl_model_id = %request.retl_model_id))]
pub(super) async fn resolve_run(
    grpc: &CatalogGrpc,
    request: pb::ResolveRetlModelRunRequest,
) -> Result<pb::ResolveRetlModelRunResponse, CatalogError> {
    require("workspace_id", &request.workspace_id)?;
    require("retl_model_id", &request.retl_model_id)?;
    let ws = request.workspace_id.as_str();
    let record = grpc
        .store
        .get_retl_model(ws, &request.retl_model_id)
        .await?;
    if let RetlHealth::Broken { reason, at_commit } = &record.health {
        return Err(CatalogError::FailedPrecondition(format!(
            "reverse etl model {} is broken at commit {at_commit}: {reason}",
            record.name
        )));
    }
    let model = grpc
        .store
        .get_model(
            ws,
            &record.connection_id,
            &record.model_unique_id,
            &record.commit_sha,
        )
        .await?;
    if let Some(refusal) = breakage(&model, record.query_mode) {
        return Err(CatalogError::FailedPrecondition(refusal.to_string()));
    }
    let query = query_for(&model, record.query_mode)
        .map_err(|refusal| CatalogError::FailedPrecondition(refusal.to_string()))?;
    let source = match grpc.store.get_source(ws, &record.source_id).await {
        Ok(source) => source,
        Err(CatalogError::NotFound { .. }) => {
            return Err(CatalogError::FailedPrecondition(format!(
                "warehouse source {} of reverse etl model {} does not exist",
                record.source_id, record.name
            )))
        }
        Err(other) => return Err(other),
    };
    let columns = preview::model_columns(grpc, ws, &model, &record.source_id).await?;
    Ok(pb::ResolveRetlModelRunResponse {
        model: Some(to_proto(grpc, &record).await?),
        source: Some(source.to_proto()),
        sql: query.sql().to_string(),
        columns,
        // The data tests of the model at the commit the Reverse ETL model follows (empty
        // for snapshots recorded before git-sync reported test ids).
        test_unique_ids: model.test_unique_ids.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_keys_are_trimmed_non_empty_and_without_repeats() {
        assert_eq!(
            primary_key_of(&[" id ".into(), "".into(), "region".into()]).unwrap(),
            vec!["id".to_string(), "region".to_string()]
        );
        assert!(matches!(
            primary_key_of(&[" ".into()]),
            Err(CatalogError::InvalidArgument(m)) if m.contains("at least one column")
        ));
        assert!(matches!(
            primary_key_of(&["id".into(), "id".into()]),
            Err(CatalogError::InvalidArgument(m)) if m.contains("twice")
        ));
    }
}
