//! Snowflake over the SQL API v2 (`/api/v2/statements`), as documented in
//! fixtures/wire/snowflake-sql-api.md.
//!
//! Authentication is a key-pair JWT (`auth=key_pair`, the secret a PKCS#8 PEM private
//! key) or an OAuth access token (`auth=oauth`); see [`auth`]. Every statement is sent
//! alone (`MULTI_STATEMENT_COUNT` = 1, so Snowflake itself refuses a second statement)
//! with the source's `database`, `schema`, `warehouse` and `role`, a `timeout`, and a
//! `requestId`; the model query is wrapped as `select * from (<sql>) as backflow_q
//! [limit N]`, so the warehouse sees one select. The SQL API runs each request with
//! AUTOCOMMIT, and a single select cannot write. Long statements answer 202 and are
//! polled; result partitions are streamed one at a time ([`api`], [`stream`]).
//!
//! Types (`rowType.type`, matched case-insensitively) and their cells (jsonv2 strings):
//!
//! | Snowflake | `warehouse_type` | Arrow | cell |
//! |---|---|---|---|
//! | FIXED (NUMBER, INT, ...) p ≤ 38 | `NUMBER(p,s)` | `Decimal128(p, s)` | decimal text |
//! | REAL (FLOAT, DOUBLE) | `FLOAT` | `Float64` | float text, `NaN`, `inf`, `-inf` |
//! | DECFLOAT | `DECFLOAT` | `Utf8` (exact decimal text) | as sent |
//! | TEXT (VARCHAR, CHAR, STRING) | `VARCHAR(n)` | `Utf8` | as sent |
//! | BINARY | `BINARY(n)` | `Binary` | hex |
//! | BOOLEAN | `BOOLEAN` | `Boolean` | `true` / `false` |
//! | DATE | `DATE` | `Date32` | days since the epoch |
//! | TIME | `TIME(s)` | `Time64(µs)` | seconds since midnight, 9 decimals |
//! | TIMESTAMP_NTZ | `TIMESTAMP_NTZ(s)` | `Timestamp(µs, None)` | seconds since the epoch, 9 decimals |
//! | TIMESTAMP_LTZ | `TIMESTAMP_LTZ(s)` | `Timestamp(µs, "UTC")` | seconds since the epoch (an instant) |
//! | TIMESTAMP_TZ | `TIMESTAMP_TZ(s)` | `Timestamp(µs, "UTC")` | seconds, space, offset minutes + 1440 (offset dropped) |
//! | VARIANT, OBJECT, ARRAY, MAP, GEOGRAPHY, GEOMETRY | the name | `Utf8`, `backflow.logical=json` | JSON text |
//! | anything else (VECTOR, FILE, ...) | | [`WarehouseError::UnsupportedType`] | |
//!
//! Nanoseconds beyond the sixth digit are truncated. Cell encodings are Snowflake's
//! defaults: the SQL API ignores account- and user-level output formats, and the
//! connector sends none.

mod api;
pub mod auth;
mod columns;
mod errors;
mod settings;
mod stream;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use self::api::{Api, Run};
use self::auth::{Auth, KeyPair};
use self::settings::{AuthKind, Settings};
use self::wire::{Binding, ResultSet};
use crate::cells::parse;
use crate::http::{self, ClientOptions};
use crate::{
    Column, Connector, QueryOptions, ReadOnlyQuery, RelationRef, RowStream, SecretMaterial,
    SourceSettings, TestReport, WarehouseError, WarehouseKind,
};

/// Timeout of the connection test and describe queries.
const METADATA_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn connect(
    settings: &SourceSettings,
    secret: SecretMaterial,
) -> Result<Arc<dyn Connector>, WarehouseError> {
    Ok(Arc::new(SnowflakeConnector::new(settings, secret)?))
}

/// A Snowflake source.
#[derive(Debug)]
pub struct SnowflakeConnector {
    api: Arc<Api>,
}

impl SnowflakeConnector {
    pub fn new(settings: &SourceSettings, secret: SecretMaterial) -> Result<Self, WarehouseError> {
        let settings = Settings::parse(settings)?;
        let auth = match settings.auth {
            AuthKind::KeyPair => Auth::KeyPair(KeyPair::new(
                &settings.account,
                &settings.user,
                &secret.0,
                settings.public_key_fingerprint.as_deref(),
            )?),
            AuthKind::OAuth => Auth::OAuth(secret.0),
        };
        let http = http::client(ClientOptions::default())?;
        Ok(Self {
            api: Arc::new(Api {
                http,
                settings,
                auth,
            }),
        })
    }

    async fn run(
        &self,
        sql: String,
        bindings: BTreeMap<String, Binding>,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<ResultSet, WarehouseError> {
        self.api
            .execute(Run {
                sql,
                bindings,
                timeout,
                cancel,
            })
            .await
    }

    async fn columns_of(&self, sql: String) -> Result<Vec<Column>, WarehouseError> {
        let result = self
            .run(
                sql,
                BTreeMap::new(),
                METADATA_TIMEOUT,
                &CancellationToken::new(),
            )
            .await?;
        Ok(columns::columns(&result.meta.row_type)?
            .into_iter()
            .map(|(c, _)| c)
            .collect())
    }
}

/// `"name"` with `"` doubled: Snowflake identifiers in settings are case-sensitive.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The first row's cells of a result, as text.
fn first_row(result: &ResultSet) -> Result<&[Option<String>], WarehouseError> {
    result
        .data
        .first()
        .map(Vec::as_slice)
        .ok_or_else(|| WarehouseError::Protocol {
            detail: "the query returned no row".into(),
        })
}

#[async_trait::async_trait]
impl Connector for SnowflakeConnector {
    fn kind(&self) -> WarehouseKind {
        WarehouseKind::Snowflake
    }

    async fn test(&self, schema: Option<&str>) -> Result<TestReport, WarehouseError> {
        let settings = &self.api.settings;
        let cancel = CancellationToken::new();
        let result = self
            .run(
                "select current_version(), current_database(), current_warehouse(), current_role()"
                    .into(),
                BTreeMap::new(),
                METADATA_TIMEOUT,
                &cancel,
            )
            .await?;
        let row = first_row(&result)?;
        let cell = |i: usize| row.get(i).cloned().flatten();
        if cell(1).is_none() {
            return Err(WarehouseError::UnknownDatabase {
                name: settings.database.clone(),
            });
        }
        if cell(2).is_none() {
            return Err(WarehouseError::UnknownWarehouse {
                name: settings.warehouse.clone(),
            });
        }
        if let Some(schema) = schema.or(settings.schema.as_deref()) {
            let sql = format!(
                "select count(*) from {}.information_schema.schemata where schema_name = ?",
                quote_identifier(&settings.database)
            );
            let bindings = BTreeMap::from([(
                "1".to_string(),
                Binding {
                    kind: "TEXT".into(),
                    value: schema.to_string(),
                },
            )]);
            let result = self.run(sql, bindings, METADATA_TIMEOUT, &cancel).await?;
            let visible = first_row(&result)?
                .first()
                .cloned()
                .flatten()
                .and_then(|c| parse::int(&c));
            if visible.unwrap_or(0) == 0 {
                return Err(WarehouseError::MissingPrivilege {
                    detail: format!(
                        "no usage on schema {}.{} (or it does not exist) for this role",
                        quote_identifier(&settings.database),
                        quote_identifier(schema)
                    ),
                });
            }
        }
        Ok(TestReport {
            server_version: cell(0),
        })
    }

    async fn describe_relation(
        &self,
        relation: &RelationRef,
    ) -> Result<Vec<Column>, WarehouseError> {
        let sql = ReadOnlyQuery::select_all(relation).wrapped(WarehouseKind::Snowflake, Some(0));
        self.columns_of(sql).await
    }

    async fn describe_query(&self, query: &ReadOnlyQuery) -> Result<Vec<Column>, WarehouseError> {
        self.columns_of(query.wrapped(WarehouseKind::Snowflake, Some(0)))
            .await
    }

    async fn stream(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
    ) -> Result<RowStream, WarehouseError> {
        let sql = query.wrapped(WarehouseKind::Snowflake, options.max_rows);
        let result = self
            .run(
                sql,
                BTreeMap::new(),
                options.statement_timeout,
                &options.cancel,
            )
            .await?;
        let columns = columns::columns(&result.meta.row_type)?;
        stream::rows(
            self.api.clone(),
            result,
            &columns,
            options.batch_rows,
            options.cancel.clone(),
        )
    }

    async fn scalar_row(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
    ) -> Result<Vec<Option<i64>>, WarehouseError> {
        let sql = query.wrapped(WarehouseKind::Snowflake, Some(1));
        let result = self
            .run(
                sql,
                BTreeMap::new(),
                options.statement_timeout,
                &options.cancel,
            )
            .await?;
        let row = first_row(&result)?;
        row.iter()
            .zip(&result.meta.row_type)
            .map(|(cell, column)| match cell {
                None => Ok(None),
                Some(text) => parse::int(text)
                    .map(Some)
                    .ok_or_else(|| WarehouseError::Protocol {
                        detail: format!("column {:?} is not an integer", column.name),
                    }),
            })
            .collect()
    }
}
