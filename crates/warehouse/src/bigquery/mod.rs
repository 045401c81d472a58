//! BigQuery connector over the REST v2 API (`jobs.query`, `jobs.getQueryResults`,
//! `jobs.get`, `jobs.cancel`), authenticated as a service account (see [`auth`]).
//!
//! **Read-only.** BigQuery has no read-only transaction, so every query is sent as
//! `select * from (\n<sql>\n) as backflow_q` (plus `limit N` for [`QueryOptions::max_rows`]): a
//! subquery cannot be DML, DDL or a script, so whatever the model's SQL says, BigQuery
//! only reads. Always GoogleSQL: `useLegacySql: false` is sent on every request (the
//! API's default is legacy SQL). The statement timeout is the job's `jobTimeoutMs` and a
//! client-side deadline that cancels the job ([`run`]).
//!
//! **Describing** a relation or a query runs it as `… limit 0` and reads the schema of
//! the (empty) answer: only `jobs.query` is in the documented wire format, and BigQuery
//! bills a `limit 0` query nothing.
//!
//! **Types** (TIMESTAMP cells are requested as int64 microseconds with
//! `formatOptions.useInt64Timestamp`, as the official client does):
//!
//! | BigQuery type | Arrow type | cell on the wire |
//! |---|---|---|
//! | BOOL / BOOLEAN | `Boolean` | `"true"` / `"false"` |
//! | INT64 / INTEGER | `Int64` | decimal string |
//! | FLOAT64 / FLOAT | `Float64` | float string (`NaN`, `Infinity` too) |
//! | NUMERIC | `Decimal128(38, 9)`; NUMERIC(P, S) → `Decimal128(P, S)` | decimal string |
//! | BIGNUMERIC | `Utf8` (exact decimal text) | decimal string |
//! | STRING, INTERVAL, RANGE | `Utf8` | string |
//! | GEOGRAPHY | `Utf8` (WKT, as sent) | string |
//! | JSON | `Utf8`, `backflow.logical = json` | JSON text |
//! | RECORD / STRUCT, any REPEATED field | `Utf8` JSON text, `backflow.logical = json` | nested `f`/`v` cells (see [`decode`]) |
//! | BYTES | `Binary` | base64 |
//! | DATE | `Date32` | `YYYY-MM-DD` |
//! | DATETIME | `Timestamp(µs, None)` | `YYYY-MM-DDTHH:MM:SS[.ffffff]` |
//! | TIMESTAMP | `Timestamp(µs, "UTC")` | int64 microseconds |
//! | TIME | `Time64(µs)` | `HH:MM:SS[.ffffff]` |
//!
//! Any other type is [`WarehouseError::UnsupportedType`].

mod auth;
mod client;
mod decode;
mod errors;
mod pages;
mod run;
mod schema;
mod wire;

use std::collections::VecDeque;
use std::sync::Arc;

use secrecy::ExposeSecret;

use self::client::BqClient;
use self::errors::ErrorContext;
use self::pages::Pager;
use self::run::Completed;
use self::schema::{builder_spec, result_columns, ResultColumn};
use crate::cells::{self, CellBatchBuilder};
use crate::deadline::Stop;
use crate::{
    http, Column, Connector, QueryOptions, ReadOnlyQuery, RelationRef, RowStream, SecretMaterial,
    SourceSettings, TestReport, WarehouseError, WarehouseKind,
};

const DEFAULT_ENDPOINT: &str = "https://bigquery.googleapis.com";
const KNOWN_KEYS: [&str; 4] = ["project", "location", "dataset", "endpoint"];
/// Rows per page when the caller's batch is larger (pages are also capped at 10 MB).
const MAX_PAGE_ROWS: usize = 100_000;

pub(crate) fn connect(
    settings: &SourceSettings,
    secret: SecretMaterial,
) -> Result<Arc<dyn Connector>, WarehouseError> {
    if let Some(key) = settings.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
        return Err(WarehouseError::Settings {
            key: key.clone(),
            reason: "not a bigquery setting".into(),
        });
    }
    let project = identifier(settings, "project")?.ok_or_else(|| WarehouseError::Settings {
        key: "project".into(),
        reason: "required".into(),
    })?;
    let dataset = identifier(settings, "dataset")?;
    let location = settings.get("location").filter(|l| !l.is_empty()).cloned();
    let endpoint = settings
        .get("endpoint")
        .map(|e| e.trim_end_matches('/').to_string())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    if reqwest::Url::parse(&endpoint).is_err() {
        return Err(WarehouseError::Settings {
            key: "endpoint".into(),
            reason: "not a url".into(),
        });
    }
    let key = auth::ServiceAccountKey::parse(secret.0.expose_secret())?;
    let http = http::client(http::ClientOptions::default())?;
    let tokens = auth::TokenSource::new(http.clone(), &key)?;
    Ok(Arc::new(BigQueryConnector {
        client: Arc::new(BqClient {
            http,
            endpoint,
            project,
            location,
            dataset,
            tokens,
        }),
    }))
}

/// A project or dataset name, refused if it could break out of backtick quoting.
fn identifier(settings: &SourceSettings, key: &str) -> Result<Option<String>, WarehouseError> {
    match settings
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => Ok(None),
        Some(v) if v.contains(['`', '\\', '\n']) => Err(WarehouseError::Settings {
            key: key.into(),
            reason: "contains a backtick, backslash or newline".into(),
        }),
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// The read-only wrapping (see the module doc): `select * from (\n<sql>\n) as backflow_q [limit N]`.
fn wrap(sql: &str, limit: Option<u64>) -> String {
    crate::query::wrap(WarehouseKind::Bigquery, sql, "*", limit)
}

#[derive(Debug)]
struct BigQueryConnector {
    client: Arc<BqClient>,
}

impl BigQueryConnector {
    fn ctx(&self, options: &QueryOptions) -> ErrorContext {
        ErrorContext {
            endpoint: self.client.endpoint.clone(),
            statement_timeout: options.statement_timeout,
        }
    }

    /// Runs wrapped SQL to completion and reads its schema.
    async fn complete(
        &self,
        sql: String,
        page_rows: u32,
        options: &QueryOptions,
    ) -> Result<(Completed, Vec<ResultColumn>), WarehouseError> {
        let stop = Stop::new(options);
        let completed = run::execute(&self.client, sql, page_rows, &stop).await?;
        let schema = completed
            .first
            .schema
            .as_ref()
            .ok_or_else(|| WarehouseError::Protocol {
                detail: "a complete query answer has no schema".into(),
            })?;
        let columns = result_columns(&schema.fields)?;
        Ok((completed, columns))
    }
}

#[async_trait::async_trait]
impl Connector for BigQueryConnector {
    fn kind(&self) -> WarehouseKind {
        WarehouseKind::Bigquery
    }

    async fn test(&self, schema: Option<&str>) -> Result<TestReport, WarehouseError> {
        let options = QueryOptions::default();
        // Token, project access and the right to create jobs.
        self.complete(wrap("select 1", None), 1, &options).await?;
        if let Some(dataset) = schema {
            if dataset.contains(['`', '\\', '\n']) {
                return Err(WarehouseError::Settings {
                    key: "schema".into(),
                    reason: "contains a backtick, backslash or newline".into(),
                });
            }
            let sql = format!(
                "select 1 from `{}`.`{dataset}`.INFORMATION_SCHEMA.TABLES limit 0",
                self.client.project
            );
            self.complete(wrap(&sql, None), 1, &options).await?;
        }
        Ok(TestReport::default())
    }

    async fn describe_relation(
        &self,
        relation: &RelationRef,
    ) -> Result<Vec<Column>, WarehouseError> {
        self.describe_query(&ReadOnlyQuery::select_all(relation))
            .await
    }

    async fn describe_query(&self, query: &ReadOnlyQuery) -> Result<Vec<Column>, WarehouseError> {
        let options = QueryOptions::default();
        let (_, columns) = self
            .complete(wrap(query.sql(), Some(0)), 1, &options)
            .await?;
        Ok(columns.into_iter().map(|c| c.column).collect())
    }

    async fn stream(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
    ) -> Result<RowStream, WarehouseError> {
        let batch_rows = options.batch_rows.max(1);
        let page_rows = u32::try_from(batch_rows.min(MAX_PAGE_ROWS)).unwrap_or(u32::MAX);
        let (completed, columns) = self
            .complete(wrap(query.sql(), options.max_rows), page_rows, options)
            .await?;
        let builder = CellBatchBuilder::new(&builder_spec(&columns))?;
        let schema = builder.schema();
        let next_token = completed.first.next_page().map(str::to_string);
        let mut pager = Pager {
            client: self.client.clone(),
            job: completed.job,
            next_token,
            columns,
            builder,
            ready: VecDeque::new(),
            page_rows,
            batch_rows,
            cancel: options.cancel.clone(),
            ctx: self.ctx(options),
            failed: false,
        };
        let last = pager.next_token.is_none();
        pager.absorb(completed.first.rows, last)?;
        Ok(RowStream {
            schema,
            batches: Box::pin(pager.into_stream()),
        })
    }

    async fn scalar_row(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
    ) -> Result<Vec<Option<i64>>, WarehouseError> {
        let (completed, columns) = self
            .complete(wrap(query.sql(), Some(1)), 1, options)
            .await?;
        let Some(row) = completed.first.rows.into_iter().next() else {
            return Err(WarehouseError::Protocol {
                detail: "the scalar query returned no row".into(),
            });
        };
        decode::row_cells(row, &columns)?
            .into_iter()
            .zip(&columns)
            .map(|(cell, column)| match cell {
                None => Ok(None),
                Some(text) => {
                    cells::parse::int(&text)
                        .map(Some)
                        .ok_or_else(|| WarehouseError::Protocol {
                            detail: format!(
                                "column {:?} of the scalar query is not an integer",
                                column.column.name
                            ),
                        })
                }
            })
            .collect()
    }
}
