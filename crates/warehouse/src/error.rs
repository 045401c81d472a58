//! What can go wrong talking to a warehouse, classified so a user (and the sync engine's
//! retry logic) can act on it: a wrong host is not a wrong password, and a rate limit
//! is not a failed query. Messages are lowercase, one line, and never contain secrets.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WarehouseError {
    /// A setting is missing or malformed (`key` names it).
    #[error("settings.{key}: {reason}")]
    Settings { key: String, reason: String },
    /// The secret material is not what this kind needs (e.g. not a PEM private key).
    #[error("credential: {reason}")]
    Credential { reason: String },
    /// DNS, TCP, TLS or HTTP transport failure before the warehouse answered.
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// The warehouse refused the user, password, key or token.
    #[error("authentication failed: {detail}")]
    Authentication { detail: String },
    #[error("database {name:?} does not exist or is not visible to this user")]
    UnknownDatabase { name: String },
    /// Snowflake warehouse or Databricks SQL warehouse.
    #[error("warehouse {name:?} does not exist or is not visible to this user")]
    UnknownWarehouse { name: String },
    #[error("relation {name} does not exist or is not visible to this user")]
    UnknownRelation { name: String },
    #[error("missing privilege: {detail}")]
    MissingPrivilege { detail: String },
    /// The SQL is not exactly one statement.
    #[error("not a single statement: {detail}")]
    NotSingleStatement { detail: String },
    /// The query tried to write inside the read-only transaction.
    #[error("the query tried to write, and models run read-only: {detail}")]
    ReadOnlyViolation { detail: String },
    #[error("statement timed out after {}s", after.as_secs_f64())]
    Timeout { after: Duration },
    #[error("query cancelled")]
    Cancelled,
    /// Retry after `retry_after` when the warehouse said so.
    #[error("rate limited by the warehouse: {detail}")]
    RateLimited {
        retry_after: Option<Duration>,
        detail: String,
    },
    /// The warehouse ran the query and it failed (syntax, type, division by zero ...).
    #[error("query failed{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    QueryFailed {
        code: Option<String>,
        message: String,
    },
    /// A column type this connector cannot map to Arrow.
    #[error("column {column:?} has type {warehouse_type}, which backflow cannot read")]
    UnsupportedType {
        column: String,
        warehouse_type: String,
    },
    /// The warehouse answered something its documented wire format does not allow.
    #[error("unexpected answer from the warehouse: {detail}")]
    Protocol { detail: String },
}

impl WarehouseError {
    /// Worth trying again later without changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::RateLimited { .. } | Self::Timeout { .. }
        )
    }
}
