//! Databricks connector over the SQL Statement Execution API 2.0, authenticated with a
//! personal access token (`Authorization: Bearer`), running on one SQL warehouse
//! (`warehouse_id`), results `INLINE` as `JSON_ARRAY` chunks.
//!
//! **Read-only.** Databricks SQL has no read-only transaction, so every statement is sent
//! as `select * from (\n<sql>\n) as backflow_q`: a subquery cannot be DML, DDL or a
//! script. [`QueryOptions::max_rows`] is the request's `row_limit`. The statement timeout
//! is a client-side deadline that cancels the statement ([`run`]); the server-side
//! `wait_timeout` only bounds one submit.
//!
//! **Describing** a relation or query runs it as `… limit 0` and reads
//! `manifest.schema`. **Testing** runs `select 1` (token, warehouse) and, for a schema,
//! `select 1` with the request's `schema` set to it (like `USE SCHEMA`, so a missing or
//! forbidden schema fails).
//!
//! **Types** (`manifest.schema.columns[].type_name`; every `data_array` cell is a string
//! or null):
//!
//! | type_name (type_text) | Arrow type | cell |
//! |---|---|---|
//! | BOOLEAN | `Boolean` | `true` / `false` |
//! | BYTE, SHORT, INT, LONG (TINYINT … BIGINT) | `Int64` | decimal |
//! | FLOAT, DOUBLE | `Float64` | float (`NaN`, `Infinity` too) |
//! | DECIMAL(p, s) | `Decimal128(p, s)` (DECIMAL alone is (10, 0)) | decimal |
//! | STRING, CHAR, VARCHAR, INTERVAL | `Utf8` | text |
//! | NULL (VOID) | `Utf8`, always null | null |
//! | DATE | `Date32` | `YYYY-MM-DD` |
//! | TIMESTAMP | `Timestamp(µs, "UTC")` | ISO 8601, `Z`/offset (none = UTC) |
//! | TIMESTAMP (TIMESTAMP_NTZ) | `Timestamp(µs, None)` | ISO 8601 |
//! | BINARY | `Binary` | base64 |
//! | ARRAY, MAP, STRUCT | `Utf8` JSON text, `backflow.logical = json` | JSON text |
//!
//! USER_DEFINED_TYPE and anything else is [`WarehouseError::UnsupportedType`].

mod chunks;
mod client;
mod errors;
mod run;
mod schema;
mod wire;

use std::collections::VecDeque;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use self::chunks::Chunks;
use self::client::DbxClient;
use self::errors::ErrorContext;
use self::run::Target;
use self::wire::StatementResponse;
use crate::cells::{self, CellBatchBuilder, CellFormat};
use crate::deadline::Stop;
use crate::{
    http, Column, Connector, QueryOptions, ReadOnlyQuery, RelationRef, RowStream, SecretMaterial,
    SourceSettings, TestReport, WarehouseError, WarehouseKind,
};

const KNOWN_KEYS: [&str; 5] = ["host", "warehouse_id", "catalog", "schema", "endpoint"];

fn setting(settings: &SourceSettings, key: &str) -> Option<String> {
    settings
        .get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn required(settings: &SourceSettings, key: &str) -> Result<String, WarehouseError> {
    setting(settings, key).ok_or_else(|| WarehouseError::Settings {
        key: key.into(),
        reason: "required".into(),
    })
}

pub(crate) fn connect(
    settings: &SourceSettings,
    secret: SecretMaterial,
) -> Result<Arc<dyn Connector>, WarehouseError> {
    if let Some(key) = settings.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
        return Err(WarehouseError::Settings {
            key: key.clone(),
            reason: "not a databricks setting".into(),
        });
    }
    let host = required(settings, "host")?;
    let warehouse_id = required(settings, "warehouse_id")?;
    let endpoint = setting(settings, "endpoint")
        .unwrap_or_else(|| format!("https://{host}"))
        .trim_end_matches('/')
        .to_string();
    if reqwest::Url::parse(&endpoint).is_err() {
        return Err(WarehouseError::Settings {
            key: if settings.contains_key("endpoint") {
                "endpoint"
            } else {
                "host"
            }
            .into(),
            reason: "does not make a url".into(),
        });
    }
    let token = secret.0.expose_secret().trim().to_string();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(WarehouseError::Credential {
            reason: "the personal access token is empty or contains whitespace".into(),
        });
    }
    Ok(Arc::new(DatabricksConnector {
        client: Arc::new(DbxClient {
            http: http::client(http::ClientOptions::default())?,
            endpoint,
            token: SecretString::from(token),
            warehouse_id,
            catalog: setting(settings, "catalog"),
            schema: setting(settings, "schema"),
        }),
    }))
}

fn wrap(sql: &str, limit: Option<u64>) -> String {
    crate::query::wrap(WarehouseKind::Databricks, sql, "*", limit)
}

#[derive(Debug)]
struct DatabricksConnector {
    client: Arc<DbxClient>,
}

impl DatabricksConnector {
    fn ctx(&self, options: &QueryOptions) -> ErrorContext {
        ErrorContext {
            endpoint: self.client.endpoint.clone(),
            warehouse_id: self.client.warehouse_id.clone(),
            statement_timeout: options.statement_timeout,
        }
    }

    fn target(&self) -> Target {
        Target {
            catalog: self.client.catalog.clone(),
            schema: self.client.schema.clone(),
            row_limit: None,
        }
    }

    /// Runs to SUCCEEDED; returns the response and its columns.
    async fn succeed(
        &self,
        statement: String,
        target: Target,
        options: &QueryOptions,
    ) -> Result<(StatementResponse, Vec<(Column, CellFormat)>), WarehouseError> {
        let stop = Stop::new(options);
        let ctx = self.ctx(options);
        let response = run::execute(&self.client, statement, target, &stop, &ctx).await?;
        let columns = response
            .manifest
            .as_ref()
            .and_then(|m| m.schema.as_ref())
            .ok_or_else(|| WarehouseError::Protocol {
                detail: "a succeeded statement has no manifest schema".into(),
            })?;
        let columns = schema::result_columns(&columns.columns)?;
        Ok((response, columns))
    }
}

#[async_trait::async_trait]
impl Connector for DatabricksConnector {
    fn kind(&self) -> WarehouseKind {
        WarehouseKind::Databricks
    }

    async fn test(&self, schema: Option<&str>) -> Result<TestReport, WarehouseError> {
        let options = QueryOptions::default();
        self.succeed(wrap("select 1", None), self.target(), &options)
            .await?;
        if let Some(schema) = schema {
            let target = Target {
                schema: Some(schema.to_string()),
                ..self.target()
            };
            self.succeed(wrap("select 1", None), target, &options)
                .await?;
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
        let (_, columns) = self
            .succeed(
                wrap(query.sql(), Some(0)),
                self.target(),
                &QueryOptions::default(),
            )
            .await?;
        Ok(columns.into_iter().map(|(c, _)| c).collect())
    }

    async fn stream(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
    ) -> Result<RowStream, WarehouseError> {
        let target = Target {
            row_limit: options.max_rows,
            ..self.target()
        };
        let (response, columns) = self
            .succeed(wrap(query.sql(), None), target, options)
            .await?;
        let builder = CellBatchBuilder::new(&columns)?;
        let schema = builder.schema();
        let mut chunks = Chunks {
            client: self.client.clone(),
            next_link: None,
            builder,
            ready: VecDeque::new(),
            batch_rows: options.batch_rows.max(1),
            cancel: options.cancel.clone(),
            ctx: self.ctx(options),
            failed: false,
        };
        if let Some(first) = response.result {
            chunks.absorb(first)?;
        }
        Ok(RowStream {
            schema,
            batches: Box::pin(chunks.into_stream()),
        })
    }

    async fn scalar_row(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
    ) -> Result<Vec<Option<i64>>, WarehouseError> {
        let (response, columns) = self
            .succeed(wrap(query.sql(), Some(1)), self.target(), options)
            .await?;
        let row = response
            .result
            .and_then(|r| r.data_array)
            .and_then(|rows| rows.into_iter().next())
            .ok_or_else(|| WarehouseError::Protocol {
                detail: "the scalar query returned no row".into(),
            })?;
        if row.len() != columns.len() {
            return Err(WarehouseError::Protocol {
                detail: "the scalar row does not match its schema".into(),
            });
        }
        row.into_iter()
            .zip(&columns)
            .map(|(cell, (column, _))| match cell {
                None => Ok(None),
                Some(text) => {
                    cells::parse::int(&text)
                        .map(Some)
                        .ok_or_else(|| WarehouseError::Protocol {
                            detail: format!(
                                "column {:?} of the scalar query is not an integer",
                                column.name
                            ),
                        })
                }
            })
            .collect()
    }
}
