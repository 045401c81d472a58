//! The RPCs that read the warehouse: DescribeModelColumns (YAML columns, else the
//! relation described and cached per commit), PreviewModel (the first rows of the
//! model's query, read-only, with a statement timeout, cached briefly per source, query
//! and limit) and CheckPrimaryKey (one scalar query of counts, then a few duplicate
//! examples). Connectors come from a [`ConnectorSource`] (the catalog's warehouse
//! access: source settings + secret from credentials).

use super::{require, CatalogGrpc};
use crate::error::CatalogError;
use crate::retl::cells::{arrow_type_name, cell_text};
use crate::retl::key_check::{self, KeyCounts};
use crate::retl::query::{query_for, relation_of, QueryMode};
use crate::retl::suggestions::suggest;
use crate::store::{DescribedColumn, DescriptionKey};
use backflow_platform::request_error::RequestErrorKind;
use backflow_proto::catalog::v1 as pb;
use backflow_warehouse::{Connector, QueryOptions, ReadOnlyQuery, WarehouseError};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const DEFAULT_LIMIT: i32 = 10;
pub const MAX_LIMIT: i32 = 100;

/// Where connectors come from: the source's settings and its secret, resolved when asked.
#[tonic::async_trait]
pub trait ConnectorSource: Send + Sync + std::fmt::Debug {
    async fn connector(
        &self,
        workspace_id: &str,
        source_id: &str,
    ) -> Result<Arc<dyn Connector>, CatalogError>;
}

/// No warehouse access configured: every warehouse read says so.
#[derive(Debug)]
struct Unconfigured;

#[tonic::async_trait]
impl ConnectorSource for Unconfigured {
    async fn connector(
        &self,
        _workspace_id: &str,
        _source_id: &str,
    ) -> Result<Arc<dyn Connector>, CatalogError> {
        Err(CatalogError::Unavailable(
            "warehouse access is not configured in this catalog".into(),
        ))
    }
}

/// A source of connectors that says warehouse access is not configured.
pub fn unconfigured_connectors() -> Arc<dyn ConnectorSource> {
    Arc::new(Unconfigured)
}

/// Timeouts and the preview cache's size (from `[model_catalog]`).
#[derive(Debug, Clone, Copy)]
pub struct PreviewSettings {
    pub statement_timeout: Duration,
    pub key_check_timeout: Duration,
    pub cache_ttl: Duration,
    pub cache_entries: usize,
}

impl Default for PreviewSettings {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(30),
            key_check_timeout: Duration::from_secs(300),
            cache_ttl: Duration::from_secs(60),
            cache_entries: 256,
        }
    }
}

type CacheKey = (String, String, i32);

/// Recent previews per (source, query, limit), in memory, bounded, each kept `ttl`.
#[derive(Debug, Default)]
struct PreviewCache {
    entries: Mutex<HashMap<CacheKey, (Instant, pb::PreviewModelResponse)>>,
}

impl PreviewCache {
    fn get(&self, key: &CacheKey, ttl: Duration) -> Option<pb::PreviewModelResponse> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, response)| response.clone())
    }

    fn put(&self, key: CacheKey, response: pb::PreviewModelResponse, settings: &PreviewSettings) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.retain(|_, (at, _)| at.elapsed() < settings.cache_ttl);
        while entries.len() >= settings.cache_entries.max(1) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(oldest) => entries.remove(&oldest),
                None => break,
            };
        }
        entries.insert(key, (Instant::now(), response));
    }
}

/// Connectors, timeouts and the preview cache.
#[derive(Debug)]
pub struct PreviewContext {
    connectors: Arc<dyn ConnectorSource>,
    settings: PreviewSettings,
    cache: PreviewCache,
}

impl PreviewContext {
    pub fn new(connectors: Arc<dyn ConnectorSource>, settings: PreviewSettings) -> Self {
        Self {
            connectors,
            settings,
            cache: PreviewCache::default(),
        }
    }

    pub fn unconfigured() -> Self {
        Self::new(unconfigured_connectors(), PreviewSettings::default())
    }
}

/// How a warehouse failure reaches callers.
pub fn warehouse_error_kind(error: &WarehouseError) -> RequestErrorKind {
    match error {
        WarehouseError::NotSingleStatement { .. } => RequestErrorKind::InvalidArgument,
        WarehouseError::Unreachable { .. }
        | WarehouseError::RateLimited { .. }
        | WarehouseError::Timeout { .. }
        | WarehouseError::Cancelled => RequestErrorKind::Unavailable,
        WarehouseError::Protocol { .. } => RequestErrorKind::Internal,
        _ => RequestErrorKind::FailedPrecondition,
    }
}

/// The source to read: the request's, else the connection's warehouse source.
pub(super) async fn resolve_source(
    grpc: &CatalogGrpc,
    workspace_id: &str,
    connection_id: &str,
    requested: &str,
) -> Result<String, CatalogError> {
    if !requested.trim().is_empty() {
        return Ok(requested.trim().to_string());
    }
    grpc.store
        .project_source_id(workspace_id, connection_id)
        .await
}

fn described_of(columns: Vec<backflow_warehouse::Column>) -> Vec<DescribedColumn> {
    columns
        .into_iter()
        .map(|column| DescribedColumn {
            name: column.name,
            warehouse_type: column.warehouse_type,
            arrow_type: arrow_type_name(&column.data_type),
            nullable: column.nullable,
        })
        .collect()
}

fn column_of(described: &DescribedColumn, yaml: Option<&pb::Column>) -> pb::Column {
    pb::Column {
        name: described.name.clone(),
        description: yaml.map(|c| c.description.clone()).unwrap_or_default(),
        data_type: described.warehouse_type.clone(),
        tests: yaml.map(|c| c.tests.clone()).unwrap_or_default(),
        origin: pb::ColumnOrigin::Warehouse as i32,
        arrow_type: described.arrow_type.clone(),
        nullable: described.nullable,
    }
}

/// Describes the model in the warehouse (its relation, else its compiled SQL), cached
/// per commit unless `refresh`.
async fn described_columns(
    grpc: &CatalogGrpc,
    workspace_id: &str,
    model: &pb::Model,
    source_id: &str,
    refresh: bool,
) -> Result<Vec<DescribedColumn>, CatalogError> {
    let key = DescriptionKey {
        workspace_id,
        connection_id: &model.connection_id,
        commit_sha: &model.commit_sha,
        unique_id: &model.unique_id,
        source_id,
    };
    if !refresh {
        if let Some(columns) = grpc.store.cached_columns(key).await? {
            return Ok(columns);
        }
    }
    let connector = grpc
        .preview
        .connectors
        .connector(workspace_id, source_id)
        .await?;
    let columns = match relation_of(model) {
        Some(relation) => connector.describe_relation(&relation).await?,
        None => {
            let query = query_for(model, QueryMode::CompiledSql)
                .map_err(|refusal| CatalogError::FailedPrecondition(refusal.to_string()))?;
            connector.describe_query(&query).await?
        }
    };
    let columns = described_of(columns);
    grpc.store.cache_columns(key, &columns).await?;
    tracing::info!(unique_id = %model.unique_id, commit = %model.commit_sha, columns = columns.len(), "model columns described");
    Ok(columns)
}

/// The model's column names: YAML if it declares any, else described by the warehouse.
pub(super) async fn model_column_names(
    grpc: &CatalogGrpc,
    workspace_id: &str,
    model: &pb::Model,
    source_id: &str,
) -> Result<Vec<String>, CatalogError> {
    if !model.columns.is_empty() {
        return Ok(model.columns.iter().map(|c| c.name.clone()).collect());
    }
    Ok(
        described_columns(grpc, workspace_id, model, source_id, false)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect(),
    )
}

/// The model's columns with their types: YAML if it declares any (its `data_type`), else
/// described by the warehouse (the warehouse's type names).
pub(super) async fn model_columns(
    grpc: &CatalogGrpc,
    workspace_id: &str,
    model: &pb::Model,
    source_id: &str,
) -> Result<Vec<pb::ResolvedColumn>, CatalogError> {
    if !model.columns.is_empty() {
        return Ok(model
            .columns
            .iter()
            .map(|c| pb::ResolvedColumn {
                name: c.name.clone(),
                data_type: c.data_type.clone(),
            })
            .collect());
    }
    Ok(
        described_columns(grpc, workspace_id, model, source_id, false)
            .await?
            .into_iter()
            .map(|c| pb::ResolvedColumn {
                name: c.name,
                data_type: c.warehouse_type,
            })
            .collect(),
    )
}

#[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id, connection_id = %request.connection_id, model = %request.unique_id))]
pub(super) async fn describe(
    grpc: &CatalogGrpc,
    request: pb::DescribeModelColumnsRequest,
) -> Result<pb::DescribeModelColumnsResponse, CatalogError> {
    require("workspace_id", &request.workspace_id)?;
    require("connection_id", &request.connection_id)?;
    require("unique_id", &request.unique_id)?;
    let model = grpc
        .store
        .get_model(
            &request.workspace_id,
            &request.connection_id,
            &request.unique_id,
            &request.commit_sha,
        )
        .await?;
    let commit_sha = model.commit_sha.clone();
    if !model.columns.is_empty() {
        let primary_key_suggestions = suggest(&model, &model.columns);
        return Ok(pb::DescribeModelColumnsResponse {
            columns: model.columns,
            commit_sha,
            primary_key_suggestions,
        });
    }
    let source_id = resolve_source(grpc, &request.workspace_id, &request.connection_id, "").await;
    let source_id = source_id?;
    let described = described_columns(
        grpc,
        &request.workspace_id,
        &model,
        &source_id,
        request.refresh,
    )
    .await?;
    let columns: Vec<pb::Column> = described.iter().map(|c| column_of(c, None)).collect();
    Ok(pb::DescribeModelColumnsResponse {
        primary_key_suggestions: suggest(&model, &columns),
        columns,
        commit_sha,
    })
}

fn limit_of(limit: i32) -> Result<i32, CatalogError> {
    match limit {
        0 => Ok(DEFAULT_LIMIT),
        1..=MAX_LIMIT => Ok(limit),
        other => Err(CatalogError::InvalidArgument(format!(
            "limit must be between 1 and {MAX_LIMIT} rows (got {other})"
        ))),
    }
}

/// The model, its query in `mode`, and the source to run it on.
async fn model_query(
    grpc: &CatalogGrpc,
    workspace_id: &str,
    connection_id: &str,
    unique_id: &str,
    commit_sha: &str,
    source_id: &str,
    mode: i32,
) -> Result<(pb::Model, ReadOnlyQuery, String), CatalogError> {
    require("workspace_id", workspace_id)?;
    require("connection_id", connection_id)?;
    require("unique_id", unique_id)?;
    let mode = QueryMode::from_wire(mode).map_err(CatalogError::InvalidArgument)?;
    let model = grpc
        .store
        .get_model(workspace_id, connection_id, unique_id, commit_sha)
        .await?;
    let query = query_for(&model, mode)
        .map_err(|refusal| CatalogError::FailedPrecondition(refusal.to_string()))?;
    let source_id = resolve_source(grpc, workspace_id, connection_id, source_id).await?;
    Ok((model, query, source_id))
}

#[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id, connection_id = %request.connection_id, model = %request.unique_id))]
pub(super) async fn preview(
    grpc: &CatalogGrpc,
    request: pb::PreviewModelRequest,
) -> Result<pb::PreviewModelResponse, CatalogError> {
    let limit = limit_of(request.limit)?;
    let (_, query, source_id) = model_query(
        grpc,
        &request.workspace_id,
        &request.connection_id,
        &request.unique_id,
        &request.commit_sha,
        &request.source_id,
        request.query_mode,
    )
    .await?;
    let settings = grpc.preview.settings;
    let cache_key = (source_id.clone(), query.sql().to_string(), limit);
    if !request.refresh {
        if let Some(mut cached) = grpc.preview.cache.get(&cache_key, settings.cache_ttl) {
            cached.from_cache = true;
            return Ok(cached);
        }
    }
    let started = Instant::now();
    let connector = grpc
        .preview
        .connectors
        .connector(&request.workspace_id, &source_id)
        .await?;
    let rows_wanted = usize::try_from(limit).unwrap_or(10);
    let options = QueryOptions {
        statement_timeout: settings.statement_timeout,
        batch_rows: rows_wanted,
        max_rows: Some(u64::try_from(limit).unwrap_or(10)),
        ..QueryOptions::default()
    };
    let mut stream = connector.stream(&query, &options).await?;
    let columns = stream
        .schema
        .fields()
        .iter()
        .map(|field| pb::PreviewColumn {
            name: field.name().clone(),
            data_type: field
                .metadata()
                .get(backflow_warehouse::types::LOGICAL_TYPE_KEY)
                .cloned()
                .unwrap_or_else(|| arrow_type_name(field.data_type())),
            arrow_type: arrow_type_name(field.data_type()),
            nullable: field.is_nullable(),
        })
        .collect();
    let mut rows = Vec::new();
    while rows.len() < rows_wanted {
        let Some(batch) = stream.batches.next().await else {
            break;
        };
        let batch = batch?;
        for row in 0..batch.num_rows() {
            if rows.len() == rows_wanted {
                break;
            }
            let cells: Vec<Option<String>> = batch
                .columns()
                .iter()
                .map(|array| cell_text(array, row))
                .collect();
            rows.push(pb::PreviewRow {
                null_cells: cells.iter().map(Option::is_none).collect(),
                cells: cells.into_iter().map(Option::unwrap_or_default).collect(),
            });
        }
    }
    let response = pb::PreviewModelResponse {
        columns,
        rows,
        query: query.sql().to_string(),
        from_cache: false,
        elapsed_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    };
    tracing::info!(%source_id, rows = response.rows.len(), elapsed_ms = response.elapsed_ms, "model previewed");
    grpc.preview
        .cache
        .put(cache_key, response.clone(), &settings);
    Ok(response)
}

#[tracing::instrument(skip_all, fields(workspace_id = %request.workspace_id, connection_id = %request.connection_id, model = %request.unique_id))]
pub(super) async fn check_primary_key(
    grpc: &CatalogGrpc,
    request: pb::CheckPrimaryKeyRequest,
) -> Result<pb::CheckPrimaryKeyResponse, CatalogError> {
    let requested: Vec<String> = request
        .primary_key
        .iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    if requested.is_empty() {
        return Err(CatalogError::InvalidArgument(
            "primary_key needs at least one column".into(),
        ));
    }
    let (model, query, source_id) = model_query(
        grpc,
        &request.workspace_id,
        &request.connection_id,
        &request.unique_id,
        &request.commit_sha,
        &request.source_id,
        request.query_mode,
    )
    .await?;
    let ws = request.workspace_id.as_str();
    // YAML may declare only some columns: a key outside them is looked up among the
    // columns the warehouse describes before it is refused.
    let yaml: Vec<String> = model.columns.iter().map(|c| c.name.clone()).collect();
    let keys = match key_check::resolve_key_columns(&requested, &yaml) {
        Ok(keys) if !yaml.is_empty() => keys,
        _ => {
            let described: Vec<String> = described_columns(grpc, ws, &model, &source_id, false)
                .await?
                .into_iter()
                .map(|c| c.name)
                .collect();
            key_check::resolve_key_columns(&requested, &described).map_err(|missing| {
                CatalogError::InvalidArgument(format!("{missing} in dbt model {}", model.unique_id))
            })?
        }
    };
    let connector = grpc.preview.connectors.connector(ws, &source_id).await?;
    let kind = connector.kind();
    let options = QueryOptions {
        statement_timeout: grpc.preview.settings.key_check_timeout,
        ..QueryOptions::default()
    };
    let counts_sql = ReadOnlyQuery::from_sql(&key_check::counts_query(kind, &query, &keys))?;
    let row = connector.scalar_row(&counts_sql, &options).await?;
    let counts = KeyCounts::from_row(&row).ok_or_else(|| {
        CatalogError::Warehouse(WarehouseError::Protocol {
            detail: format!("the key check answered {} columns, not 4", row.len()),
        })
    })?;
    let examples = if counts.duplicate_keys > 0 {
        duplicate_examples(connector.as_ref(), &query, &keys, &options).await?
    } else {
        Vec::new()
    };
    tracing::info!(%source_id, rows = counts.row_count, duplicates = counts.duplicate_keys, nulls = counts.null_keys, "primary key checked");
    Ok(pb::CheckPrimaryKeyResponse {
        row_count: counts.row_count,
        distinct_keys: counts.distinct_keys,
        duplicate_keys: counts.duplicate_keys,
        null_keys: counts.null_keys,
        examples,
        unique: counts.unique(),
    })
}

async fn duplicate_examples(
    connector: &dyn Connector,
    query: &ReadOnlyQuery,
    keys: &[String],
    options: &QueryOptions,
) -> Result<Vec<pb::DuplicateKeyExample>, CatalogError> {
    let sql = ReadOnlyQuery::from_sql(&key_check::duplicates_query(connector.kind(), query, keys))?;
    let options = QueryOptions {
        max_rows: Some(key_check::EXAMPLES),
        batch_rows: 16,
        ..options.clone()
    };
    let mut stream = connector.stream(&sql, &options).await?;
    let mut examples = Vec::new();
    while let Some(batch) = stream.batches.next().await {
        let batch = batch?;
        let width = batch.num_columns();
        if width < 2 {
            break;
        }
        for row in 0..batch.num_rows() {
            let key = (0..width - 1)
                .map(|col| cell_text(batch.column(col), row).unwrap_or_default())
                .collect();
            let count = cell_text(batch.column(width - 1), row)
                .and_then(|text| text.parse().ok())
                .unwrap_or(0);
            examples.push(pb::DuplicateKeyExample { key, count });
        }
        if examples.len() as u64 >= key_check::EXAMPLES {
            examples.truncate(key_check::EXAMPLES as usize);
            break;
        }
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_limits_default_to_ten_and_stop_at_a_hundred() {
        assert_eq!(limit_of(0).unwrap(), 10);
        assert_eq!(limit_of(100).unwrap(), 100);
        for bad in [101, -1] {
            assert!(matches!(
                limit_of(bad),
                Err(CatalogError::InvalidArgument(m)) if m.contains("between 1 and 100")
            ));
        }
    }

    #[test]
    fn the_cache_expires_and_stays_bounded() {
        let settings = PreviewSettings {
            cache_ttl: Duration::from_secs(60),
            cache_entries: 2,
            ..PreviewSettings::default()
        };
        let cache = PreviewCache::default();
        let key = |n: i32| ("s".to_string(), "select 1".to_string(), n);
        for n in 1..=3 {
            cache.put(key(n), pb::PreviewModelResponse::default(), &settings);
        }
        assert!(cache.get(&key(1), settings.cache_ttl).is_none());
        assert!(cache.get(&key(3), settings.cache_ttl).is_some());
        assert!(cache.get(&key(3), Duration::ZERO).is_none());
    }

    #[test]
    fn warehouse_errors_map_to_what_a_caller_can_do() {
        assert_eq!(
            warehouse_error_kind(&WarehouseError::ReadOnlyViolation {
                detail: "delete".into()
            }),
            RequestErrorKind::FailedPrecondition
        );
        assert_eq!(
            warehouse_error_kind(&WarehouseError::Timeout {
                after: Duration::from_secs(1)
            }),
            RequestErrorKind::Unavailable
        );
    }
}
