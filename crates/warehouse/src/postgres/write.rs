//! [`SchemaWriter`] for PostgreSQL: one connection per transaction, `BEGIN` (read-write)
//! with `SET LOCAL statement_timeout` and `search_path` set to the Backflow schema, each
//! statement bound with its typed parameters, an expected row count checked before the
//! next, `COMMIT` at the end; any error or a conflict rolls everything back. A statement
//! running past its timeout (plus the client grace) is cancelled in the server.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgArguments;
use sqlx::{Connection, Executor, PgConnection, Row};
use tokio_util::sync::CancellationToken;

use super::{settings, DescribeSource, Flavor, PgSource, StreamMode};
use crate::write::{quote_ident, Applied, Param, SchemaWriter, Statement};
use crate::{SecretMaterial, SourceSettings, WarehouseError, WarehouseKind};

#[derive(Debug)]
pub(crate) struct PgWriter {
    source: Arc<PgSource>,
    schema: String,
}

pub(crate) fn writer(
    settings: &SourceSettings,
    secret: SecretMaterial,
    schema: &str,
) -> Result<Arc<dyn SchemaWriter>, WarehouseError> {
    let connector = super::PgConnector::new(
        WarehouseKind::Postgres,
        Flavor::Postgres,
        settings::PgSettings::parse(settings, 5432)?,
        secret,
        DescribeSource::Catalog,
        StreamMode::Copy,
    );
    Ok(Arc::new(PgWriter {
        source: connector.source,
        schema: schema.to_string(),
    }))
}

fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, PgArguments>,
    params: &'q [Param],
) -> sqlx::query::Query<'q, sqlx::Postgres, PgArguments> {
    for param in params {
        query = match param {
            Param::I64(v) => query.bind(*v),
            Param::Text(v) => query.bind(v.as_str()),
            Param::OptText(v) => query.bind(v.as_deref()),
            Param::Bool(v) => query.bind(*v),
            Param::I64s(v) => query.bind(v.as_slice()),
            Param::I32s(v) => query.bind(v.as_slice()),
            Param::Bools(v) => query.bind(v.as_slice()),
            Param::Texts(v) => query.bind(v.as_slice()),
        };
    }
    query
}

impl PgWriter {
    async fn begin(
        &self,
        read_only: bool,
        timeout: Duration,
    ) -> Result<(PgConnection, i32), WarehouseError> {
        let mut conn = self.source.dial().await?;
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
        let begin = format!(
            "BEGIN{}; SET LOCAL statement_timeout = {ms}; SET LOCAL search_path = {}; SELECT pg_backend_pid()",
            if read_only { " READ ONLY" } else { "" },
            quote_ident(&self.schema)
        );
        let rows = conn
            .fetch_all(begin.as_str())
            .await
            .map_err(|e| super::errors::map_error(e, self.source.ctx(timeout, false)))?;
        let pid = rows
            .first()
            .and_then(|r| r.try_get::<i32, _>(0).ok())
            .ok_or_else(|| WarehouseError::Protocol {
                detail: "pg_backend_pid() returned no row".into(),
            })?;
        Ok((conn, pid))
    }

    async fn run(
        &self,
        conn: &mut PgConnection,
        pid: i32,
        statements: &[Statement],
        timeout: Duration,
    ) -> Result<Applied, WarehouseError> {
        let never = CancellationToken::new();
        let mut affected = Vec::with_capacity(statements.len());
        for (index, statement) in statements.iter().enumerate() {
            let query = bind(sqlx::query(&statement.sql), &statement.params);
            let done = self
                .source
                .guarded(pid, timeout, &never, query.execute(&mut *conn))
                .await?;
            let rows = done.rows_affected();
            if statement
                .expect_rows
                .is_some_and(|expected| expected != rows)
            {
                return Ok(Applied::Conflict { index, rows });
            }
            affected.push(rows);
        }
        Ok(Applied::Committed(affected))
    }
}

#[async_trait::async_trait]
impl SchemaWriter for PgWriter {
    fn kind(&self) -> WarehouseKind {
        WarehouseKind::Postgres
    }

    fn schema(&self) -> &str {
        &self.schema
    }

    async fn transaction(
        &self,
        statements: &[Statement],
        timeout: Duration,
    ) -> Result<Applied, WarehouseError> {
        let (mut conn, pid) = self.begin(false, timeout).await?;
        let outcome = self.run(&mut conn, pid, statements, timeout).await;
        let finish = match &outcome {
            Ok(Applied::Committed(_)) => conn.execute("COMMIT").await.map(|_| ()),
            _ => conn.execute("ROLLBACK").await.map(|_| ()),
        };
        let _ = conn.close().await;
        let applied = outcome?;
        finish.map_err(|e| super::errors::map_error(e, self.source.ctx(timeout, false)))?;
        Ok(applied)
    }

    async fn query_text(
        &self,
        sql: &str,
        params: &[Param],
        max_rows: usize,
        timeout: Duration,
    ) -> Result<Vec<Vec<Option<String>>>, WarehouseError> {
        let (mut conn, pid) = self.begin(true, timeout).await?;
        let never = CancellationToken::new();
        let query = bind(sqlx::query(sql), params);
        let rows = self
            .source
            .guarded(pid, timeout, &never, query.fetch_all(&mut conn))
            .await;
        let _ = conn.execute("ROLLBACK").await;
        let _ = conn.close().await;
        let rows = rows?;
        rows.iter()
            .take(max_rows)
            .map(|row| {
                (0..row.len())
                    .map(|at| {
                        row.try_get::<Option<String>, _>(at)
                            .map_err(|e| WarehouseError::Protocol {
                                detail: format!("column {at} is not text: {e}"),
                            })
                    })
                    .collect()
            })
            .collect()
    }
}
