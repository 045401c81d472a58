//! The write side: the one place Backflow changes anything in a customer's warehouse, and
//! only inside the schema the source names as Backflow's (`backflow_schema`: warehouse-side
//! diff state, run ledger). Everything else in this crate reads.
//!
//! The API is deliberately small: a [`SchemaWriter`] runs a list of [`Statement`]s in one
//! read-write transaction (all or nothing), each with typed parameters (scalars, or arrays
//! that bind as one parameter so thousands of rows go in one round trip) and an optional
//! expected row count; a statement affecting another number of rows rolls the whole
//! transaction back and answers [`Applied::Conflict`] (optimistic concurrency on a version
//! row). Callers build statements with [`qualified`] so every name is quoted and inside the
//! schema. [`SchemaWriter::ensure_schema`] creates the schema when it is missing and the
//! role may, and otherwise says what to grant. Built for PostgreSQL; [`schema_writer`] refuses the other kinds with a
//! [`WarehouseError::Settings`] on `backflow_schema` that says so.

use std::sync::Arc;
use std::time::Duration;

use crate::{SecretMaterial, SourceSettings, WarehouseError, WarehouseKind};

/// A typed parameter (`$1`, `$2` ... in statement order).
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    I64(i64),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
    /// `bigint[]`
    I64s(Vec<i64>),
    /// `integer[]`
    I32s(Vec<i32>),
    /// `boolean[]`
    Bools(Vec<bool>),
    /// `text[]` (elements may be NULL)
    Texts(Vec<Option<String>>),
}

/// One statement of a write transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
    /// Rows the statement must affect, else the transaction rolls back as a conflict.
    pub expect_rows: Option<u64>,
}

impl Statement {
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
            expect_rows: None,
        }
    }

    pub fn bind(mut self, param: Param) -> Self {
        self.params.push(param);
        self
    }

    pub fn expect(mut self, rows: u64) -> Self {
        self.expect_rows = Some(rows);
        self
    }
}

/// What a write transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Committed; rows affected per statement.
    Committed(Vec<u64>),
    /// Statement `index` affected `rows`, not what it expected; nothing was committed.
    Conflict { index: usize, rows: u64 },
}

/// Writes in one schema of one warehouse.
#[async_trait::async_trait]
pub trait SchemaWriter: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> WarehouseKind;

    /// The schema, unquoted.
    fn schema(&self) -> &str;

    /// Runs `statements` in one read-write transaction with `timeout` per statement.
    async fn transaction(
        &self,
        statements: &[Statement],
        timeout: Duration,
    ) -> Result<Applied, WarehouseError>;

    /// The text cells of the rows of one small query, run read-only (state tables'
    /// bookkeeping; at most `max_rows` rows). NULL cells are `None`; every column must be
    /// castable to text in the query itself.
    async fn query_text(
        &self,
        sql: &str,
        params: &[Param],
        max_rows: usize,
        timeout: Duration,
    ) -> Result<Vec<Vec<Option<String>>>, WarehouseError>;

    /// Makes sure the schema exists, creating it when it is missing and the role may
    /// (`CREATE` on the database), and that the role may use it and create tables in it.
    /// Otherwise a [`WarehouseError::MissingPrivilege`] that says what to grant.
    async fn ensure_schema(&self, timeout: Duration) -> Result<(), WarehouseError> {
        let check = || async {
            let rows = self
                .query_text(
                    SCHEMA_CHECK,
                    &[Param::Text(self.schema().to_string())],
                    1,
                    timeout,
                )
                .await?;
            let row = rows.into_iter().next().unwrap_or_default();
            Ok::<_, WarehouseError>(SchemaCheck::of(self.schema(), &row))
        };
        let first = check().await?;
        if first.exists {
            return first.usable();
        }
        if !first.may_create {
            return Err(first.missing());
        }
        let create = Statement::new(format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quote_ident(self.schema())
        ));
        if let Err(error) = self.transaction(&[create], timeout).await {
            // two runs creating it at once: one loses the race; the check says which
            let again = check().await?;
            if !again.exists {
                return Err(error);
            }
            return again.usable();
        }
        check().await?.usable()
    }
}

/// What [`SchemaWriter::ensure_schema`] asks: does the schema exist, may the role use it
/// and create in it, may it create schemas, and who is asking.
const SCHEMA_CHECK: &str = "SELECT (n.oid IS NOT NULL)::text, \
     coalesce(has_schema_privilege(n.oid, 'USAGE') AND has_schema_privilege(n.oid, 'CREATE'), false)::text, \
     has_database_privilege(current_database(), 'CREATE')::text, current_user::text, current_database()::text \
     FROM (SELECT 1) AS one LEFT JOIN pg_namespace n ON n.nspname = $1";

#[derive(Debug, Clone, PartialEq, Eq)]
struct SchemaCheck {
    schema: String,
    exists: bool,
    usable: bool,
    may_create: bool,
    role: String,
    database: String,
}

impl SchemaCheck {
    fn of(schema: &str, row: &[Option<String>]) -> Self {
        let flag = |at: usize| row.get(at).and_then(|c| c.as_deref()) == Some("true");
        let text = |at: usize| {
            row.get(at)
                .and_then(|c| c.clone())
                .unwrap_or_else(|| "?".into())
        };
        Self {
            schema: schema.to_string(),
            exists: flag(0),
            usable: flag(1),
            may_create: flag(2),
            role: text(3),
            database: text(4),
        }
    }

    fn usable(&self) -> Result<(), WarehouseError> {
        if self.usable {
            return Ok(());
        }
        Err(WarehouseError::MissingPrivilege {
            detail: format!(
                "role {role:?} may not create tables in the backflow schema {schema:?}; grant it with \
                 GRANT USAGE, CREATE ON SCHEMA {quoted} TO {role_quoted}, or clear the source's backflow schema",
                role = self.role,
                schema = self.schema,
                quoted = quote_ident(&self.schema),
                role_quoted = quote_ident(&self.role),
            ),
        })
    }

    fn missing(&self) -> WarehouseError {
        WarehouseError::MissingPrivilege {
            detail: format!(
                "the backflow schema {schema:?} does not exist and role {role:?} may not create it \
                 (no CREATE on database {database:?}); create it with CREATE SCHEMA {quoted} and \
                 GRANT USAGE, CREATE ON SCHEMA {quoted} TO {role_quoted}, or clear the source's backflow schema",
                schema = self.schema,
                role = self.role,
                database = self.database,
                quoted = quote_ident(&self.schema),
                role_quoted = quote_ident(&self.role),
            ),
        }
    }
}

/// The writer for the schema `schema` of a source, or why there is none.
pub fn schema_writer(
    kind: WarehouseKind,
    settings: &SourceSettings,
    secret: SecretMaterial,
    schema: &str,
) -> Result<Arc<dyn SchemaWriter>, WarehouseError> {
    check_schema_name(schema)?;
    match kind {
        WarehouseKind::Postgres => crate::postgres::write::writer(settings, secret, schema),
        other => Err(WarehouseError::Settings {
            key: "backflow_schema".into(),
            reason: format!(
                "writing to the backflow schema (warehouse-side diff state, run ledger) is built for postgres only, not {}; use the backflow-side diff strategy",
                other.as_str()
            ),
        }),
    }
}

/// Refuses empty or unreasonable schema names before anything is dialled.
pub fn check_schema_name(schema: &str) -> Result<(), WarehouseError> {
    let bad = |reason: &str| WarehouseError::Settings {
        key: "backflow_schema".into(),
        reason: reason.into(),
    };
    if schema.trim().is_empty() {
        return Err(bad("empty: the source is read-only to backflow"));
    }
    if schema.len() > 63 {
        return Err(bad("longer than 63 bytes"));
    }
    if schema.chars().any(|c| c.is_control() || c == '\0') {
        return Err(bad("contains control characters"));
    }
    Ok(())
}

/// A PostgreSQL identifier, quoted (`"` doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// A text literal (`'` doubled), for the few statements that cannot bind.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A table name of at most 63 bytes: `prefix` + `id` (lowercase letters, digits and `_`
/// kept, anything else `_`); an id too long is cut and suffixed with a hash of the whole
/// id, so two ids never share a table.
pub fn table_name(prefix: &str, id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let full = format!("{prefix}{clean}");
    if full.len() <= 63 && clean == id {
        return full;
    }
    // Different ids can clean to the same text (case, punctuation): suffix a hash.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let suffix = hex::encode(&digest[..6]);
    let room = 63 - prefix.len() - 1 - suffix.len();
    let cut: String = clean.chars().take(room).collect();
    format!("{prefix}{cut}_{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_bounded() {
        assert_eq!(qualified("bf", "a\"b"), "\"bf\".\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(table_name("state_", "abc_123"), "state_abc_123");
        let odd = table_name("state_", "Sync-1");
        assert!(odd.starts_with("state_sync_1_"), "{odd}");
        assert_ne!(odd, table_name("state_", "sync-1"));
        let long = table_name("state_", &"x".repeat(200));
        assert!(long.len() <= 63, "{long}");
        assert!(check_schema_name("").is_err());
        assert!(check_schema_name("backflow").is_ok());
    }

    #[test]
    fn schema_checks_say_what_to_grant() {
        let row = |cells: [&str; 5]| cells.map(|c| Some(c.to_string())).to_vec();
        let fine = SchemaCheck::of("bf", &row(["true", "true", "false", "app", "db"]));
        assert!(fine.exists && fine.usable().is_ok());
        let no_rights = SchemaCheck::of("bf", &row(["true", "false", "false", "app", "db"]));
        assert!(matches!(
            no_rights.usable(),
            Err(WarehouseError::MissingPrivilege { detail }) if detail.contains("GRANT USAGE, CREATE ON SCHEMA \"bf\" TO \"app\"")
        ));
        let missing = SchemaCheck::of("bf", &row(["false", "false", "false", "app", "db"]));
        assert!(!missing.exists && !missing.may_create);
        assert!(matches!(
            missing.missing(),
            WarehouseError::MissingPrivilege { detail } if detail.contains("does not exist") && detail.contains("CREATE SCHEMA \"bf\"")
        ));
    }

    #[test]
    fn only_postgres_writes() {
        for kind in WarehouseKind::ALL {
            if kind == WarehouseKind::Postgres {
                continue;
            }
            let refused = schema_writer(
                kind,
                &SourceSettings::new(),
                SecretMaterial(String::new().into()),
                "backflow",
            );
            assert!(
                matches!(&refused, Err(WarehouseError::Settings { key, reason }) if key == "backflow_schema" && reason.contains("postgres only")),
                "{kind:?}"
            );
        }
    }
}
