//! The PostgreSQL table destination: records are upserted into (or deleted from) a table
//! by key, one transaction per batch, so a batch lands whole or not at all and resending
//! it is harmless (upsert by key, delete by key).
//!
//! Settings: `url` (`postgres://user@host:port/database`, no password in it), `batch_size`
//! (1–10000, default 1000), `max_concurrency` (1–16, default 4; also the pool size).
//! Secret: the password (optional: trust or peer setups have none). Default rate: 1000
//! batches/s per `host:port/database`.
//!
//! Sync options: `table` (required; `table` or `schema.table`, case-sensitive, quoted),
//! `key_columns` (comma-separated; default the record key's columns). The record's key
//! and mapped fields are the table's columns by name; JSON values are converted to the
//! columns' types by PostgreSQL itself (`jsonb_populate_recordset(null::<table>, $1)`), so
//! a timestamp in a JSON string lands in a `timestamptz` column.
//!
//! Statements: upsert `insert … select … on conflict (<key>) do update set <fields> =
//! excluded.<fields>` (needs a unique index or primary key on the key columns); insert
//! `… on conflict (<key>) do nothing`; update `update … from … where <key> matches`;
//! delete `delete … using … where <key> matches`. When the batch's statement fails on a
//! data or constraint error (SQLSTATE classes 22 and 23), the batch is replayed record by
//! record under savepoints in the same transaction, so only the offending records fail
//! (with PostgreSQL's message) and the rest commit. A missing table or column (42P01,
//! 42703) or a missing unique index (42P10) refuses the batch; credentials (28xxx) are an
//! authentication error; connection failures and the SQLSTATEs that say "try again"
//! (serialization failure and deadlock 40xxx, too many connections 53xxx, shutdown or
//! starting up 57xxx, lock not available 55P03) are transient: the batch is resent whole
//! (its transaction rolled back, nothing of it applied).

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::settings::{bounded, only_known, optional, required};
use super::{
    BatchResult, Capabilities, Destination, DestinationError, DestinationKind, DestinationSettings,
    Operation, OutboundBatch, OutboundRecord, RecordOutcome, RecordResult,
};

const KNOWN: &[&str] = &["url", "batch_size", "max_concurrency"];

pub struct PostgresDestination {
    /// Made on first use: building a pool needs a Tokio runtime, `build` must not.
    pool: tokio::sync::OnceCell<PgPool>,
    options: PgConnectOptions,
    account: String,
    batch_size: usize,
    max_concurrency: usize,
}

impl std::fmt::Debug for PostgresDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDestination")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl PostgresDestination {
    pub fn new(
        settings: &DestinationSettings,
        password: Option<SecretString>,
    ) -> Result<Self, DestinationError> {
        only_known(settings, KNOWN)?;
        let url = required(settings, "url")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(DestinationError::Settings(
                "url must be postgres://user@host:port/database".into(),
            ));
        }
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| DestinationError::Settings(format!("url: {e}")))?;
        if reqwest::Url::parse(url).is_ok_and(|u| u.password().is_some()) {
            return Err(DestinationError::Settings(
                "url must not hold a password (it belongs in the secret)".into(),
            ));
        }
        if let Some(password) = &password {
            options = options.password(password.expose_secret());
        }
        let account = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let max_concurrency = bounded(settings, "max_concurrency", 4, 1, 16)?;
        Ok(Self {
            pool: tokio::sync::OnceCell::new(),
            options,
            account,
            batch_size: bounded(settings, "batch_size", 1000, 1, 10_000)?,
            max_concurrency,
        })
    }
}

/// `"a"` with inner quotes doubled.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// `table` or `schema.table`, quoted.
pub fn table_name(option: &str) -> Result<String, DestinationError> {
    let parts: Vec<&str> = option.split('.').map(str::trim).collect();
    if parts.is_empty() || parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(DestinationError::Settings(format!(
            "table must be table or schema.table, not {option:?}"
        )));
    }
    Ok(parts.iter().map(|p| quote(p)).collect::<Vec<_>>().join("."))
}

/// The statement of a batch (see the module doc); `$1` is a JSON array of row objects.
pub fn statement(operation: Operation, table: &str, keys: &[String], columns: &[String]) -> String {
    let list = |cols: &[String]| cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let source = format!("jsonb_populate_recordset(null::{table}, $1::text::jsonb)");
    let matches = keys
        .iter()
        .map(|k| format!("t.{0} = d.{0}", quote(k)))
        .collect::<Vec<_>>()
        .join(" and ");
    let non_keys: Vec<String> = columns
        .iter()
        .filter(|c| !keys.contains(c))
        .cloned()
        .collect();
    match operation {
        Operation::Upsert | Operation::Insert => {
            let conflict = if operation == Operation::Insert || non_keys.is_empty() {
                "do nothing".to_string()
            } else {
                format!(
                    "do update set {}",
                    non_keys
                        .iter()
                        .map(|c| format!("{0} = excluded.{0}", quote(c)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            format!(
                "insert into {table} ({cols}) select {cols} from {source} on conflict ({keys}) {conflict}",
                cols = list(columns),
                keys = list(keys),
            )
        }
        Operation::Update => format!(
            "update {table} as t set {sets} from {source} as d where {matches}",
            sets = non_keys
                .iter()
                .map(|c| format!("{0} = d.{0}", quote(c)))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Operation::Delete => {
            format!("delete from {table} as t using {source} as d where {matches}")
        }
    }
}

fn row(record: &OutboundRecord) -> Value {
    let mut row: Map<String, Value> = record.fields.to_map();
    for (k, v) in &record.key {
        row.insert(k.clone(), v.clone());
    }
    Value::Object(row)
}

fn classify(error: sqlx::Error) -> DestinationError {
    match &error {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            let message = format!("{} ({code})", db.message());
            if code.starts_with("28") {
                DestinationError::Authentication(message)
            } else if is_transient_code(&code) {
                DestinationError::Transient {
                    message,
                    status: 0,
                    retry_after: None,
                }
            } else {
                DestinationError::Rejected { message, status: 0 }
            }
        }
        sqlx::Error::Configuration(e) => DestinationError::Settings(e.to_string()),
        other => DestinationError::Transient {
            message: format!("postgres: {other}"),
            status: 0,
            retry_after: None,
        },
    }
}

/// SQLSTATEs worth the same batch again: connection exceptions (08), transaction
/// rollbacks — serialization failures and deadlocks, PostgreSQL's own "try again" (40) —
/// insufficient resources such as too many connections (53), operator intervention such as
/// a shutdown or a server still starting (57), a lock not available (55P03).
fn is_transient_code(code: &str) -> bool {
    ["08", "40", "53", "57"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "55P03"
}

/// Whether a failed statement is about some rows' values (replay row by row).
fn is_row_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23")),
        _ => false,
    }
}

impl PostgresDestination {
    async fn pool(&self) -> &PgPool {
        self.pool
            .get_or_init(|| async {
                PgPoolOptions::new()
                    .max_connections(self.max_concurrency as u32)
                    .acquire_timeout(Duration::from_secs(15))
                    .connect_lazy_with(self.options.clone())
            })
            .await
    }

    async fn write(
        &self,
        sql: &str,
        batch: &OutboundBatch,
    ) -> Result<Vec<RecordResult>, DestinationError> {
        let rows: Vec<Value> = batch.records.iter().map(row).collect();
        let all = Value::Array(rows.clone()).to_string();
        let mut tx = self.pool().await.begin().await.map_err(classify)?;
        match sqlx::query(sql).bind(&all).execute(&mut *tx).await {
            Ok(_) => {
                tx.commit().await.map_err(classify)?;
                return Ok(delivered_all(batch));
            }
            Err(e) if is_row_error(&e) => {
                tracing::info!(error = %e, records = rows.len(), "postgres batch failed on a row, replaying record by record");
            }
            Err(e) => return Err(classify(e)),
        }
        // The failed statement aborted the transaction: start over, one savepoint per row.
        tx.rollback().await.map_err(classify)?;
        let mut tx = self.pool().await.begin().await.map_err(classify)?;
        let mut results = Vec::with_capacity(rows.len());
        for (record, row) in batch.records.iter().zip(rows) {
            sqlx::query("savepoint backflow_row")
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            let one = Value::Array(vec![row]).to_string();
            match sqlx::query(sql).bind(&one).execute(&mut *tx).await {
                Ok(_) => {
                    sqlx::query("release savepoint backflow_row")
                        .execute(&mut *tx)
                        .await
                        .map_err(classify)?;
                    results.push(RecordResult {
                        key_hash: record.key_hash,
                        outcome: RecordOutcome::Delivered,
                    });
                }
                Err(e) if is_row_error(&e) => {
                    sqlx::query("rollback to savepoint backflow_row")
                        .execute(&mut *tx)
                        .await
                        .map_err(classify)?;
                    let message = match &e {
                        sqlx::Error::Database(db) => format!(
                            "{} ({})",
                            db.message(),
                            db.code().map(|c| c.to_string()).unwrap_or_default()
                        ),
                        other => other.to_string(),
                    };
                    results.push(RecordResult {
                        key_hash: record.key_hash,
                        outcome: RecordOutcome::Failed { message, status: 0 },
                    });
                }
                Err(e) => return Err(classify(e)),
            }
        }
        tx.commit().await.map_err(classify)?;
        Ok(results)
    }
}

fn delivered_all(batch: &OutboundBatch) -> Vec<RecordResult> {
    batch
        .records
        .iter()
        .map(|r| RecordResult {
            key_hash: r.key_hash,
            outcome: RecordOutcome::Delivered,
        })
        .collect()
}

#[async_trait::async_trait]
impl Destination for PostgresDestination {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Postgres
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_records: self.batch_size,
            max_concurrency: self.max_concurrency,
            deletes: true,
            idempotent: true,
            default_rate_per_second: 1000.0,
        }
    }

    fn rate_limit_key(&self) -> String {
        format!("postgres:{}", self.account)
    }

    async fn test(&self) -> Result<(), DestinationError> {
        sqlx::query("select 1")
            .execute(self.pool().await)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn send(&self, batch: &OutboundBatch) -> Result<BatchResult, DestinationError> {
        let table =
            table_name(optional(&batch.options, "table").ok_or_else(|| {
                DestinationError::Settings("the option table is required".into())
            })?)?;
        let Some(first) = batch.records.first() else {
            return Ok(BatchResult::default());
        };
        let keys: Vec<String> = match optional(&batch.options, "key_columns") {
            Some(list) => list
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
            None => first.key.keys().cloned().collect(),
        };
        if keys.is_empty() {
            return Err(DestinationError::Settings("no key columns".into()));
        }
        let mut columns: BTreeSet<String> = keys.iter().cloned().collect();
        if batch.operation != Operation::Delete {
            for record in &batch.records {
                columns.extend(record.fields.keys().cloned());
            }
        }
        let mut ordered: Vec<String> = keys.clone();
        ordered.extend(columns.into_iter().filter(|c| !keys.contains(c)));
        if batch.operation == Operation::Update && ordered.len() == keys.len() {
            return Ok(BatchResult {
                results: delivered_all(batch),
                requests: 0,
            });
        }
        let sql = statement(batch.operation, &table, &keys, &ordered);
        let results = self.write(&sql, batch).await?;
        Ok(BatchResult {
            results,
            requests: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_again_codes_are_transient() {
        for code in [
            "08006", "40001", "40P01", "53300", "57P01", "57P03", "55P03",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in ["23505", "22P02", "42P01", "28P01", "55000"] {
            assert!(!is_transient_code(code), "{code}");
        }
    }

    #[test]
    fn statements_quote_and_match_by_key() {
        let keys = vec!["id".to_string()];
        let cols = vec!["id".to_string(), "e\"mail".to_string()];
        let table = table_name("app.users").unwrap();
        assert_eq!(table, "\"app\".\"users\"");
        assert_eq!(
            statement(Operation::Upsert, &table, &keys, &cols),
            "insert into \"app\".\"users\" (\"id\", \"e\"\"mail\") select \"id\", \"e\"\"mail\" from jsonb_populate_recordset(null::\"app\".\"users\", $1::text::jsonb) on conflict (\"id\") do update set \"e\"\"mail\" = excluded.\"e\"\"mail\""
        );
        assert!(statement(Operation::Insert, &table, &keys, &cols)
            .ends_with("on conflict (\"id\") do nothing"));
        assert_eq!(
            statement(Operation::Delete, &table, &keys, &keys),
            "delete from \"app\".\"users\" as t using jsonb_populate_recordset(null::\"app\".\"users\", $1::text::jsonb) as d where t.\"id\" = d.\"id\""
        );
        assert!(table_name("a.b.c").is_err());
        assert!(table_name("").is_err());
    }
}
