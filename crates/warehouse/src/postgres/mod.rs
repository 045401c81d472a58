//! PostgreSQL over sqlx, and the Postgres-wire machinery Redshift reuses.
//!
//! Every operation dials its own connection (no pool: a stream owns its connection for
//! its whole life, and a cancelled one is never reused). Queries run inside
//! `BEGIN READ ONLY` with `SET LOCAL statement_timeout` (and `SET LOCAL work_mem` when
//! [`crate::QueryOptions::work_mem_kib`] asks), plus a client-side deadline
//! (the timeout + 2 s) and a cancel token, both of which cancel the statement in the
//! server (`pg_cancel_backend` from a second connection). Only queries are accepted
//! (`select`, `with`, `values`, `table`): anything else is refused before it is sent,
//! and whatever writes from inside a query (a volatile function, a data-modifying CTE)
//! is stopped by the read-only transaction.
//!
//! Streaming is binary `COPY (<wrapped query>) TO STDOUT (FORMAT binary)`, decoded
//! straight into Arrow builders (see the `copy` and `decode` modules); Redshift uses a cursor.
//! The columns come from preparing the query (never executing it), with typmods and
//! nullability looked up in `pg_attribute` for columns read straight from tables.
//!
//! | PostgreSQL type | Arrow type | read as |
//! |---|---|---|
//! | boolean | `Boolean` | binary |
//! | smallint, integer, bigint, oid | `Int64` | binary |
//! | real, double precision | `Float64` | binary |
//! | numeric(p,s), 1 ≤ p ≤ 38, 0 ≤ s ≤ p | `Decimal128(p, s)` | binary (NaN/±Infinity are an error) |
//! | numeric without typmod (incl. computed numerics), p > 38, negative scale | `Utf8`, exact decimal text | binary |
//! | text, varchar(n), char(n), name, "char" | `Utf8` | binary |
//! | uuid | `Utf8`, lower-case hyphenated | binary |
//! | json, jsonb | `Utf8` JSON, `backflow.logical = json` | binary |
//! | arrays, composite (row) types | `Utf8` JSON (`to_json(col)::text`), `backflow.logical = json` | cast |
//! | date | `Date32` (±infinity is an error) | binary |
//! | timestamp | `Timestamp(µs, None)` | binary |
//! | timestamptz | `Timestamp(µs, "UTC")` | binary |
//! | time | `Time64(µs)` | binary |
//! | bytea | `Binary` | binary |
//! | every other type (interval, timetz, money, inet, cidr, macaddr, bit, xml, enums, ranges, geometric, extension types) | `Utf8`, the type's text output (`col::text`, session `DateStyle=ISO`, `TimeZone=UTC`) | cast |
//! | a domain | as its base type | — |
//!
//! TLS: `sslmode=require` encrypts with rustls and does not verify the server
//! certificate (libpq's `require`); `prefer` tries TLS first; `disable` never.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::types::{Column, KeyProof, RowStream, TestReport};
use crate::{
    Connector, QueryOptions, ReadOnlyQuery, RelationRef, SecretMaterial, SourceSettings,
    WarehouseError, WarehouseKind,
};

mod copy;
mod decode;
mod describe;
mod errors;
mod session;
pub(crate) mod settings;
mod sql;
mod stream;
mod types;
mod unique;
pub(crate) mod write;

/// Which server dialect is on the other end of the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Postgres,
    Redshift,
}

/// Where a relation's columns are described from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescribeSource {
    /// `pg_attribute` (PostgreSQL).
    Catalog,
    /// An `information_schema.columns`-shaped view: `svv_columns` on Redshift.
    ColumnsView(&'static str),
}

/// How rows are streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Binary `COPY ... TO STDOUT` (PostgreSQL).
    Copy,
    /// `DECLARE CURSOR` + `FETCH FORWARD fetch_rows` (Redshift; works on PostgreSQL too).
    Cursor { fetch_rows: usize },
}

/// A Postgres-wire source: settings, the password, and the dialect's choices.
pub(crate) struct PgSource {
    pub kind: WarehouseKind,
    pub flavor: Flavor,
    pub settings: settings::PgSettings,
    pub endpoint: String,
    password: SecretString,
    pub describe: DescribeSource,
    pub mode: StreamMode,
}

impl std::fmt::Debug for PgSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSource")
            .field("kind", &self.kind)
            .field("settings", &self.settings)
            .field("password", &"[redacted]")
            .field("describe", &self.describe)
            .field("mode", &self.mode)
            .finish()
    }
}

/// The connector for PostgreSQL and (with another [`Flavor`]) Redshift.
#[derive(Debug, Clone)]
pub(crate) struct PgConnector {
    source: Arc<PgSource>,
}

pub(crate) fn connect(
    settings: &SourceSettings,
    secret: SecretMaterial,
) -> Result<Arc<dyn Connector>, WarehouseError> {
    Ok(Arc::new(PgConnector::new(
        WarehouseKind::Postgres,
        Flavor::Postgres,
        settings::PgSettings::parse(settings, 5432)?,
        secret,
        DescribeSource::Catalog,
        StreamMode::Copy,
    )))
}

/// A Postgres-wire connector with explicit choices (Redshift's, or tests' on PostgreSQL).
pub fn connect_with(
    kind: WarehouseKind,
    settings: &SourceSettings,
    secret: SecretMaterial,
    describe: DescribeSource,
    mode: StreamMode,
) -> Result<Arc<dyn Connector>, WarehouseError> {
    let (flavor, port) = match kind {
        WarehouseKind::Redshift => (Flavor::Redshift, 5439),
        _ => (Flavor::Postgres, 5432),
    };
    Ok(Arc::new(PgConnector::new(
        kind,
        flavor,
        settings::PgSettings::parse(settings, port)?,
        secret,
        describe,
        mode,
    )))
}

impl PgConnector {
    pub(crate) fn new(
        kind: WarehouseKind,
        flavor: Flavor,
        settings: settings::PgSettings,
        secret: SecretMaterial,
        describe: DescribeSource,
        mode: StreamMode,
    ) -> Self {
        Self {
            source: Arc::new(PgSource {
                kind,
                flavor,
                endpoint: settings.endpoint(),
                settings,
                password: SecretString::from(secret.0.expose_secret().to_string()),
                describe,
                mode,
            }),
        }
    }
}

impl PgConnector {
    /// Opens the stream; with a `key`, first tries to prove it unique ([`unique`]), in
    /// the transaction the rows are then read in (PostgreSQL only: Redshift does not
    /// enforce unique constraints).
    async fn stream_keyed(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
        key: Option<&[String]>,
    ) -> Result<(RowStream, KeyProof), WarehouseError> {
        must_be_query(query)?;
        let src = &self.source;
        let timeout = options.statement_timeout;
        let mut session = src.read_only_with(timeout, options.work_mem_kib).await?;
        let plans = src
            .guarded(
                session.pid,
                timeout,
                &options.cancel,
                describe::query_plans(&mut session.conn, query.sql()),
            )
            .await?;
        let schema = types::schema(&plans);
        let select = sql::streaming_select(src.flavor, query.sql(), &plans, options.max_rows);
        let proof = match key {
            Some(key) if src.flavor == Flavor::Postgres => {
                src.guarded(
                    session.pid,
                    timeout,
                    &options.cancel,
                    unique::prove(&mut session.conn, &select, &plans, key),
                )
                .await?
            }
            _ => KeyProof::Unproven,
        };
        let stream = stream::spawn(self.source.clone(), session, select, plans, schema, options);
        Ok((stream, proof))
    }
}

/// How long describing a relation may take (it has no options of its own).
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Refuses statements that are not queries before anything is sent.
fn must_be_query(query: &ReadOnlyQuery) -> Result<(), WarehouseError> {
    match query.leading_keyword().as_deref() {
        Some("select" | "with" | "values" | "table" | "(") => Ok(()),
        Some(other) => Err(WarehouseError::ReadOnlyViolation {
            detail: format!("a model must be a query (select, with, values); `{other}` is not"),
        }),
        None => Err(WarehouseError::NotSingleStatement {
            detail: "the query is empty".into(),
        }),
    }
}

#[async_trait::async_trait]
impl Connector for PgConnector {
    fn kind(&self) -> WarehouseKind {
        self.source.kind
    }

    async fn test(&self, schema: Option<&str>) -> Result<TestReport, WarehouseError> {
        use sqlx::Connection;
        let src = &self.source;
        let mut conn = src.dial().await?;
        let ctx = src.ctx(DESCRIBE_TIMEOUT, false);
        let version: String = sqlx::query_scalar("select version()::text")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| errors::map_error(e, ctx))?;
        if let Some(schema) = schema {
            let (exists, usage): (bool, bool) = sqlx::query_as(sql::SCHEMA_USAGE)
                .bind(schema)
                .fetch_one(&mut conn)
                .await
                .map_err(|e| errors::map_error(e, ctx))?;
            if !exists || !usage {
                let _ = conn.close().await;
                return Err(WarehouseError::MissingPrivilege {
                    detail: if exists {
                        format!(
                            "user {:?} has no usage on schema {schema:?}",
                            src.settings.user
                        )
                    } else {
                        format!("schema {schema:?} does not exist")
                    },
                });
            }
        }
        let _ = conn.close().await;
        Ok(TestReport {
            server_version: Some(version),
        })
    }

    async fn describe_relation(
        &self,
        relation: &RelationRef,
    ) -> Result<Vec<Column>, WarehouseError> {
        let src = &self.source;
        let mut session = src.read_only(DESCRIBE_TIMEOUT).await?;
        let never = tokio_util::sync::CancellationToken::new();
        let plans = src
            .guarded(
                session.pid,
                DESCRIBE_TIMEOUT,
                &never,
                describe::relation_plans(&mut session.conn, src.describe, relation),
            )
            .await??;
        session.finish().await;
        Ok(plans.into_iter().map(|p| p.column).collect())
    }

    async fn describe_query(&self, query: &ReadOnlyQuery) -> Result<Vec<Column>, WarehouseError> {
        must_be_query(query)?;
        let src = &self.source;
        let mut session = src.read_only(DESCRIBE_TIMEOUT).await?;
        let never = tokio_util::sync::CancellationToken::new();
        let plans = src
            .guarded(
                session.pid,
                DESCRIBE_TIMEOUT,
                &never,
                describe::query_plans(&mut session.conn, query.sql()),
            )
            .await?;
        session.finish().await;
        Ok(plans.into_iter().map(|p| p.column).collect())
    }

    async fn stream(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
    ) -> Result<RowStream, WarehouseError> {
        Ok(self.stream_keyed(query, options, None).await?.0)
    }

    async fn stream_proving_key(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
        key: &[String],
    ) -> Result<(RowStream, KeyProof), WarehouseError> {
        self.stream_keyed(query, options, Some(key)).await
    }

    async fn scalar_row(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
    ) -> Result<Vec<Option<i64>>, WarehouseError> {
        must_be_query(query)?;
        let src = &self.source;
        let timeout = options.statement_timeout;
        let mut session = src.read_only(timeout).await?;
        let pid = session.pid;
        let conn = &mut session.conn;
        let work = async {
            let plans = describe::query_plans(&mut *conn, query.sql()).await?;
            let select = sql::streaming_select(src.flavor, query.sql(), &plans, Some(1));
            let row = sqlx::query(&select)
                .persistent(false)
                .fetch_optional(&mut *conn)
                .await?;
            Ok((plans, row))
        };
        let (plans, row) = src.guarded(pid, timeout, &options.cancel, work).await?;
        session.finish().await;
        let Some(row) = row else {
            return Err(WarehouseError::QueryFailed {
                code: None,
                message: "the scalar query returned no row".into(),
            });
        };
        scalar_values(&plans, &row)
    }
}

fn scalar_values(
    plans: &[types::ColumnPlan],
    row: &sqlx::postgres::PgRow,
) -> Result<Vec<Option<i64>>, WarehouseError> {
    use sqlx::{Row, ValueRef};
    plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let value = row.try_get_raw(i).map_err(|e| WarehouseError::Protocol {
                detail: e.to_string(),
            })?;
            if value.is_null() {
                return Ok(None);
            }
            let bytes = value.as_bytes().map_err(|e| WarehouseError::Protocol {
                detail: e.to_string(),
            })?;
            decode::decode_i64(p.decoder, bytes)
                .map(Some)
                .map_err(|reason| WarehouseError::QueryFailed {
                    code: None,
                    message: format!("column {:?} is not an integer: {reason}", p.column.name),
                })
        })
        .collect()
}
