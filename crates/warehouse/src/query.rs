//! The one query a Reverse ETL model runs, made safe to hand to a warehouse.
//!
//! A [`ReadOnlyQuery`] is exactly one statement (a `;` anywhere but at the very end,
//! outside string literals, quoted identifiers and comments, is refused with
//! [`WarehouseError::NotSingleStatement`]); connectors wrap it as a subquery inside a
//! read-only transaction, so the warehouse sees a single read-only query.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{WarehouseError, WarehouseKind};

mod lexer;

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

    /// Any SQL that is exactly one statement; a trailing `;` (and whitespace and comments
    /// after it) is dropped. Uses PostgreSQL's quoting rules plus backtick identifiers;
    /// prefer [`Self::from_sql_for`] when the warehouse is known.
    pub fn from_sql(sql: &str) -> Result<Self, WarehouseError> {
        let sql = lexer::single_statement(sql, lexer::Rules::GENERIC)?;
        Ok(Self { sql })
    }

    /// Like [`Self::from_sql`], with the string, identifier and comment rules of `kind`'s
    /// SQL dialect (backslash escapes, `"..."` strings, `#` / `//` comments, nesting).
    pub fn from_sql_for(kind: WarehouseKind, sql: &str) -> Result<Self, WarehouseError> {
        let sql = lexer::single_statement(sql, lexer::Rules::for_kind(kind))?;
        Ok(Self { sql })
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The first keyword, lower case, after leading whitespace and comments (`select`,
    /// `with`, `delete` ...), or `(` when the statement opens with a parenthesis.
    pub fn leading_keyword(&self) -> Option<String> {
        let mut rest = self.sql.as_str();
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix("--") {
                rest = r.split_once('\n').map(|(_, after)| after).unwrap_or("");
            } else if let Some(r) = rest.strip_prefix("/*") {
                rest = r.split_once("*/").map(|(_, after)| after).unwrap_or("");
            } else {
                break;
            }
        }
        if rest.starts_with('(') {
            return Some("(".into());
        }
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
            .collect();
        (!word.is_empty()).then(|| word.to_ascii_lowercase())
    }

    /// The query as a subquery the warehouse runs as one statement, with an optional
    /// row limit: `select * from (<sql>) as backflow_q limit N`. Every supported dialect
    /// (PostgreSQL, Redshift, Snowflake, BigQuery, Databricks) accepts this form; the
    /// closing parenthesis goes on its own line so a trailing `--` comment cannot eat it.
    pub fn wrapped(&self, kind: WarehouseKind, max_rows: Option<u64>) -> String {
        wrap(kind, &self.sql, "*", max_rows)
    }
}

/// `select <projection> from (<sql>) as backflow_q [limit N]` for `kind`. `projection`
/// is `*` or a list the caller built (casts of `backflow_q`'s columns).
pub fn wrap(_kind: WarehouseKind, sql: &str, projection: &str, max_rows: Option<u64>) -> String {
    let limit = max_rows.map(|n| format!(" limit {n}")).unwrap_or_default();
    format!("select {projection} from (\n{sql}\n) as backflow_q{limit}")
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
    /// PostgreSQL only: memory each sort or hash of the query may use before it spills to
    /// disk, in KiB (`SET LOCAL work_mem`, for this query's transaction alone); `None`
    /// keeps the server's setting. Other warehouses ignore it.
    pub work_mem_kib: Option<u64>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(300),
            batch_rows: 8192,
            max_rows: None,
            cancel: CancellationToken::new(),
            work_mem_kib: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_adds_the_limit_and_keeps_trailing_comments_inside() {
        let q = ReadOnlyQuery::from_sql("select a from t -- note\n;").unwrap();
        assert_eq!(
            q.wrapped(WarehouseKind::Postgres, Some(10)),
            "select * from (\nselect a from t -- note\n) as backflow_q limit 10"
        );
        assert_eq!(
            q.wrapped(WarehouseKind::Snowflake, None),
            "select * from (\nselect a from t -- note\n) as backflow_q"
        );
    }

    #[test]
    fn leading_keyword_skips_comments() {
        let kw = |s: &str| ReadOnlyQuery::from_sql(s).unwrap().leading_keyword();
        assert_eq!(kw("-- c\n /* d */ SELECT 1").as_deref(), Some("select"));
        assert_eq!(
            kw("With x as (select 1) select * from x").as_deref(),
            Some("with")
        );
        assert_eq!(kw("(select 1) union (select 2)").as_deref(), Some("("));
        assert_eq!(kw("delete from t").as_deref(), Some("delete"));
    }

    #[test]
    fn from_sql_for_uses_the_dialect() {
        assert!(ReadOnlyQuery::from_sql_for(WarehouseKind::Bigquery, r"select 'a\'; b'").is_ok());
        assert!(ReadOnlyQuery::from_sql_for(WarehouseKind::Postgres, r"select 'a\'; b'").is_err());
    }
}
