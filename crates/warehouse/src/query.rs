//! The one query a Reverse ETL model runs, made safe to hand to a warehouse.
//!
//! A [`ReadOnlyQuery`] is exactly one statement (a `;` anywhere but at the very end,
//! outside string literals, quoted identifiers and comments, is refused with
//! [`WarehouseError::NotSingleStatement`]); connectors wrap it as a subquery inside a
//! read-only transaction, so the warehouse sees a single read-only query.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::WarehouseError;

/// A relation as dbt's adapter renders it (`rendered`, e.g. `"analytics"."public"."users"`
/// or `` `proj`.`ds`.`users` ``) and its unquoted parts, for describing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationRef {
    pub database: String,
    pub schema: String,
    pub identifier: String,
    pub rendered: String,
}

/// One read-only statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOnlyQuery {
    sql: String,
}

impl ReadOnlyQuery {
    /// `select * from <relation>` with the relation exactly as the adapter renders it.
    pub fn select_all(relation: &RelationRef) -> Self {
        Self {
            sql: format!("select * from {}", relation.rendered),
        }
    }

    /// Any SQL that is exactly one statement; a trailing `;` (and whitespace) is dropped.
    pub fn from_sql(sql: &str) -> Result<Self, WarehouseError> {
        let sql = crate::query::single_statement(sql)?;
        Ok(Self { sql })
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }
}

/// Checks for exactly one statement; returns it without a trailing `;`.
fn single_statement(sql: &str) -> Result<String, WarehouseError> {
    // TODO(warehouse-core helper): real lexer (strings, quoted identifiers, dollar quotes,
    // comments, backticks); this placeholder only trims.
    let trimmed = sql.trim().trim_end_matches(';').trim_end();
    if trimmed.is_empty() {
        return Err(WarehouseError::NotSingleStatement {
            detail: "the query is empty".into(),
        });
    }
    Ok(trimmed.to_string())
}

/// How to run a query.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Enforced by the warehouse where it can be (`statement_timeout`, `timeoutMs`,
    /// `STATEMENT_TIMEOUT_IN_SECONDS`, `wait_timeout` + cancel) and by the client too.
    pub statement_timeout: Duration,
    /// Rows per record batch (the last may be shorter).
    pub batch_rows: usize,
    /// At most this many rows (a `limit` the connector adds around the query).
    pub max_rows: Option<u64>,
    /// Fires to stop the query; the connector also cancels it in the warehouse.
    pub cancel: CancellationToken,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(300),
            batch_rows: 8192,
            max_rows: None,
            cancel: CancellationToken::new(),
        }
    }
}
