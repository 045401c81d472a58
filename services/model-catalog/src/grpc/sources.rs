//! Warehouse-source RPCs: create and update run a connection test (unless
//! `skip_test`) and refuse a failing one with FAILED_PRECONDITION saying what is wrong;
//! test stores its result; delete is refused while a Git connection or a Reverse ETL
//! model uses the source. Settings are checked per kind before anything is dialled.

use super::{require, CatalogGrpc};
use crate::error::CatalogError;
use crate::source_kinds;
use crate::store::SourceRecord;
use backflow_proto::catalog::v1 as pb;
use std::collections::BTreeMap;
use tonic::{Request, Response, Status};

/// Keys trimmed; settings are otherwise stored as given.
fn clean_settings(
    settings: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    settings
        .into_iter()
        .map(|(key, value)| (key.trim().to_string(), value))
        .collect()
}

/// Applies an update's settings: the whole map when `replace`, else key by key (an
/// empty value removes the key).
fn merged_settings(
    current: &BTreeMap<String, String>,
    changes: BTreeMap<String, String>,
    replace: bool,
) -> BTreeMap<String, String> {
    if replace {
        return changes;
    }
    let mut merged = current.clone();
    for (key, value) in changes {
        if value.is_empty() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    merged
}

/// FAILED_PRECONDITION for a failed test: the problem and the one-line message.
fn refuse_failed_test(result: &pb::SourceTestResult) -> Result<(), CatalogError> {
    if result.ok {
        return Ok(());
    }
    Err(CatalogError::FailedPrecondition(format!(
        "connection test failed ({}): {}; fix the settings or credential, or pass skip_test to store it anyway",
        source_kinds::problem_name(result.problem),
        result.message
    )))
}

impl CatalogGrpc {
    fn warehouse(&self) -> Result<&crate::warehouse_access::WarehouseAccess, CatalogError> {
        self.warehouse.as_ref().ok_or_else(|| {
            CatalogError::Unavailable("warehouse access is not configured in this catalog".into())
        })
    }

    #[tracing::instrument(name = "catalog.create_warehouse_source", skip_all, fields(workspace_id = %request.get_ref().workspace_id))]
    pub(super) async fn create_source(
        &self,
        request: Request<pb::CreateWarehouseSourceRequest>,
    ) -> Result<Response<pb::CreateWarehouseSourceResponse>, Status> {
        let request = request.into_inner();
        require("workspace_id", &request.workspace_id)?;
        require("name", &request.name)?;
        let kind = source_kinds::warehouse_kind(request.kind)?;
        require("credential_id", &request.credential_id)?;
        let settings = clean_settings(request.settings);
        source_kinds::check_settings(kind, &settings)?;
        let mut record = SourceRecord::new(
            &request.workspace_id,
            request.name.trim(),
            request.kind,
            settings,
            request.credential_id.trim(),
        );
        record.backflow_schema = request.backflow_schema.trim().to_string();
        record.run_ledger = request.run_ledger;
        check_run_ledger(&record)?;
        if !request.skip_test {
            let result = self.warehouse()?.test(&record).await?;
            refuse_failed_test(&result)?;
            record.last_test = Some(result);
        }
        self.store.create_source(&record).await?;
        tracing::info!(workspace_id = %record.workspace_id, source_id = %record.id, kind = kind.as_str(), tested = !request.skip_test, "warehouse source created");
        Ok(Response::new(pb::CreateWarehouseSourceResponse {
            source: Some(record.to_proto()),
        }))
    }

    #[tracing::instrument(name = "catalog.get_warehouse_source", skip_all, fields(workspace_id = %request.get_ref().workspace_id, source_id = %request.get_ref().source_id))]
    pub(super) async fn get_source(
        &self,
        request: Request<pb::GetWarehouseSourceRequest>,
    ) -> Result<Response<pb::GetWarehouseSourceResponse>, Status> {
        let request = request.into_inner();
        require("workspace_id", &request.workspace_id)?;
        require("source_id", &request.source_id)?;
        let record = self
            .store
            .get_source(&request.workspace_id, &request.source_id)
            .await?;
        Ok(Response::new(pb::GetWarehouseSourceResponse {
            source: Some(record.to_proto()),
        }))
    }

    #[tracing::instrument(name = "catalog.list_warehouse_sources", skip_all, fields(workspace_id = %request.get_ref().workspace_id))]
    pub(super) async fn list_sources(
        &self,
        request: Request<pb::ListWarehouseSourcesRequest>,
    ) -> Result<Response<pb::ListWarehouseSourcesResponse>, Status> {
        let request = request.into_inner();
        require("workspace_id", &request.workspace_id)?;
        let sources = self.store.list_sources(&request.workspace_id).await?;
        Ok(Response::new(pb::ListWarehouseSourcesResponse {
            sources: sources.iter().map(SourceRecord::to_proto).collect(),
        }))
    }

    #[tracing::instrument(name = "catalog.update_warehouse_source", skip_all, fields(workspace_id = %request.get_ref().workspace_id, source_id = %request.get_ref().source_id))]
    pub(super) async fn update_source(
        &self,
        request: Request<pb::UpdateWarehouseSourceRequest>,
    ) -> Result<Response<pb::UpdateWarehouseSourceResponse>, Status> {
        let request = request.into_inner();
        require("workspace_id", &request.workspace_id)?;
        require("source_id", &request.source_id)?;
        let current = self
            .store
            .get_source(&request.workspace_id, &request.source_id)
            .await?;
        let kind = source_kinds::warehouse_kind(current.kind)?;
        let mut record = current.clone();
        if !request.name.trim().is_empty() {
            record.name = request.name.trim().to_string();
        }
        record.settings = merged_settings(
            &current.settings,
            clean_settings(request.settings),
            request.replace_settings,
        );
        if !request.credential_id.trim().is_empty() {
            record.credential_id = request.credential_id.trim().to_string();
        }
        if let Some(schema) = &request.backflow_schema {
            record.backflow_schema = schema.trim().to_string();
        }
        if let Some(run_ledger) = request.run_ledger {
            record.run_ledger = run_ledger;
        }
        check_run_ledger(&record)?;
        source_kinds::check_settings(kind, &record.settings)?;
        record.version = current.version + 1;
        record.updated_at_ms = backflow_platform::now_unix_ms();
        let reaches_elsewhere = record.settings != current.settings
            || record.credential_id != current.credential_id
            || record.backflow_schema != current.backflow_schema;
        if !request.skip_test {
            let result = self.warehouse()?.test(&record).await?;
            refuse_failed_test(&result)?;
            record.last_test = Some(result);
        } else if reaches_elsewhere {
            // The old result says nothing about the new settings.
            record.last_test = None;
        }
        self.store.update_source(&record).await?;
        tracing::info!(workspace_id = %record.workspace_id, source_id = %record.id, version = record.version, "warehouse source updated");
        Ok(Response::new(pb::UpdateWarehouseSourceResponse {
            source: Some(record.to_proto()),
        }))
    }

    #[tracing::instrument(name = "catalog.test_warehouse_source", skip_all, fields(workspace_id = %request.get_ref().workspace_id, source_id = %request.get_ref().source_id))]
    pub(super) async fn test_source(
        &self,
        request: Request<pb::TestWarehouseSourceRequest>,
    ) -> Result<Response<pb::TestWarehouseSourceResponse>, Status> {
        let request = request.into_inner();
        require("workspace_id", &request.workspace_id)?;
        require("source_id", &request.source_id)?;
        let source = self
            .store
            .get_source(&request.workspace_id, &request.source_id)
            .await?;
        let result = self.warehouse()?.test(&source).await?;
        self.store
            .record_source_test(&request.workspace_id, &request.source_id, &result)
            .await?;
        Ok(Response::new(pb::TestWarehouseSourceResponse {
            result: Some(result),
        }))
    }

    #[tracing::instrument(name = "catalog.delete_warehouse_source", skip_all, fields(workspace_id = %request.get_ref().workspace_id, source_id = %request.get_ref().source_id))]
    pub(super) async fn delete_source(
        &self,
        request: Request<pb::DeleteWarehouseSourceRequest>,
    ) -> Result<Response<pb::DeleteWarehouseSourceResponse>, Status> {
        let request = request.into_inner();
        require("workspace_id", &request.workspace_id)?;
        require("source_id", &request.source_id)?;
        self.store
            .delete_source(&request.workspace_id, &request.source_id)
            .await?;
        tracing::info!(workspace_id = %request.workspace_id, source_id = %request.source_id, "warehouse source deleted");
        Ok(Response::new(pb::DeleteWarehouseSourceResponse {}))
    }
}

/// A run ledger is written into the Backflow schema: a source without one cannot have it.
fn check_run_ledger(record: &SourceRecord) -> Result<(), CatalogError> {
    if record.run_ledger && record.backflow_schema.is_empty() {
        return Err(CatalogError::InvalidArgument(
            "run_ledger needs a backflow_schema (the schema backflow may write its ledger tables to)"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn updates_merge_settings_unless_replacing() {
        let current = map(&[("host", "a"), ("port", "5432"), ("user", "u")]);
        assert_eq!(
            merged_settings(&current, map(&[("host", "b"), ("port", "")]), false),
            map(&[("host", "b"), ("user", "u")])
        );
        assert_eq!(
            merged_settings(&current, map(&[("host", "b")]), true),
            map(&[("host", "b")])
        );
    }

    #[test]
    fn a_failed_test_is_refused_with_its_problem() {
        let failed = pb::SourceTestResult {
            ok: false,
            problem: pb::SourceProblem::Authentication as i32,
            message: "authentication failed: password authentication failed for user \"u\"".into(),
            ..Default::default()
        };
        let error = refuse_failed_test(&failed).expect_err("refused");
        assert!(
            matches!(&error, CatalogError::FailedPrecondition(m)
                if m.starts_with("connection test failed (authentication): authentication failed: password")),
            "{error}"
        );
        assert!(refuse_failed_test(&pb::SourceTestResult {
            ok: true,
            ..Default::default()
        })
        .is_ok());
    }
}
