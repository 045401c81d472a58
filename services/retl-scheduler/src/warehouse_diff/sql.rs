//! Every SQL text of the warehouse-side strategy (PostgreSQL), built here so it is
//! unit-tested as text: the bookkeeping tables in the Backflow schema, the diff query,
//! and the commit statements.
//!
//! The diff query computes, per model row, a key hash and a row hash over a canonical
//! typed text of the key columns and of the mapped columns (in mapping order): each value
//! is `<type tag>` + `quote_nullable(<text>)` (`NULL`, or the text as a quoted literal), so
//! the concatenation is injective; each value's text is computed once.
//! The text of a value follows the Arrow value Backflow-side hashing sees (see
//! `diff::encode`), so both strategies call the same values equal: integers, decimals,
//! text, uuids, booleans as their text; floats as their IEEE bits with `-0` as `0` and every
//! NaN alike; dates as days since 2000-01-01; timestamps (with or without time zone) and
//! times as their binary send form (microseconds, independent of the session's time zone);
//! JSON as its text, arrays and composites as `to_json(..)` text (what the extract reads);
//! bytea as hex; other types as the `::text` the extract reads. The hashes are PostgreSQL's
//! `hashtextextended` (64 bits; the row hash keeps 63, as Backflow-side). They are not the
//! Backflow-side XXH3 values: a state belongs to one strategy.
//!
//! The query returns only what the run needs, one class per row (`__bf_class`), from one
//! pass of the hashed model through a hash full join with the state: `a` added rows (every
//! column when the mode sends additions, else only the key columns), `u` updated rows
//! (modes that send updates), `n` rows with a NULL key column, `m` / `x` state entries
//! missing from the model (observed / delivered; key values only for mirror, which
//! deletes), and one `t` row with the model's row count. Duplicate keys are found from the
//! pulled rows and the counts, and named by a second query only when there are some.
//! A replacing commit (first run, reset, strategy change) loads a new state table and
//! builds its primary key after the rows are in. The diff query's transaction sets
//! `work_mem` ([`work_mem_kib`]), so the hash join keeps the state side in memory.

use crate::diff::{Change, DeliveryMode, RowSpec};
use arrow_schema::DataType;
use backflow_warehouse::write::{qualified, quote_ident, Param, Statement};
use backflow_warehouse::Column;

/// The table of every warehouse-side sync: which state table, its epoch and version.
pub const SYNCS_TABLE: &str = "backflow_syncs";
/// Ledger tables.
pub const RUNS_TABLE: &str = "backflow_runs";
pub const RECORDS_TABLE: &str = "backflow_run_records";
/// Prefix of per-sync state tables.
pub const STATE_PREFIX: &str = "backflow_state_";
/// Rows per bound array in commit and ledger statements.
pub const CHUNK: usize = 50_000;

/// `work_mem` (MiB) the diff query runs with unless `[retl_scheduler.executor]
/// warehouse_diff_work_mem_mb` says otherwise. The hash full join holds the state side
/// (key hash, row hash, flag, key values: ~100 MB for 1M entries) in memory; at
/// PostgreSQL's default 4 MB it is split into batches written to and re-read from disk.
/// Set per transaction (`SET LOCAL`), so nothing else on the warehouse is affected.
pub const DEFAULT_WORK_MEM_MB: u64 = 256;

/// The diff query's `work_mem` in KiB from the configured MiB; 0 keeps the server's.
pub fn work_mem_kib(mb: u64) -> Option<u64> {
    (mb > 0).then(|| mb.saturating_mul(1024))
}

/// Output column names the diff query adds to the model's.
pub const CLASS: &str = "__bf_class";
pub const KEY_HASH: &str = "__bf_key_hash";
pub const ROW_HASH: &str = "__bf_row_hash";
pub const STATE_KEY: &str = "__bf_state_key";

/// A model column the diff query cannot hash, or a name it cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("column {column:?} has type {data_type}, which the warehouse-side diff cannot hash")]
    UnsupportedType { column: String, data_type: String },
    #[error("column {0:?} is not in the model")]
    MissingColumn(String),
    #[error("the model has two columns named {0:?}; the warehouse-side diff needs unique names")]
    DuplicateColumn(String),
    #[error("column name {0:?} is reserved by the warehouse-side diff")]
    Reserved(String),
}

/// The state table's columns (its primary key is `key_hash`).
const STATE_COLUMNS: &str =
    "(key_hash bigint PRIMARY KEY, row_hash bigint NOT NULL, delivered boolean NOT NULL, key_json text)";
/// The same without the key: a replacing commit loads the rows first and builds the
/// index once after (several times faster than a million inserts into a B-tree).
const STATE_COLUMNS_UNINDEXED: &str =
    "(key_hash bigint NOT NULL, row_hash bigint NOT NULL, delivered boolean NOT NULL, key_json text)";

/// `CREATE ... IF NOT EXISTS` for the syncs table, the sync's state table and its row.
pub fn ensure_state(schema: &str, sync_id: &str, state_table: &str) -> Vec<Statement> {
    let syncs = qualified(schema, SYNCS_TABLE);
    let state = qualified(schema, state_table);
    vec![
        Statement::new(format!(
            "CREATE TABLE IF NOT EXISTS {syncs} (sync_id text PRIMARY KEY, state_table text NOT NULL, \
             state_epoch bigint NOT NULL, version bigint NOT NULL, last_run_id text, committed_at timestamptz)"
        )),
        Statement::new(format!("CREATE TABLE IF NOT EXISTS {state} {STATE_COLUMNS}")),
        Statement::new(format!(
            "INSERT INTO {syncs} (sync_id, state_table, state_epoch, version) VALUES ($1, $2, -1, 0) \
             ON CONFLICT (sync_id) DO NOTHING"
        ))
        .bind(Param::Text(sync_id.to_string()))
        .bind(Param::Text(state_table.to_string())),
    ]
}

/// Epoch and version of the sync's state, and its entries (all, delivered).
pub fn read_meta(schema: &str, state_table: &str) -> String {
    format!(
        "SELECT m.state_epoch::text, m.version::text, \
         (SELECT count(*) FROM {state})::text, (SELECT count(*) FROM {state} WHERE delivered)::text \
         FROM {syncs} m WHERE m.sync_id = $1",
        syncs = qualified(schema, SYNCS_TABLE),
        state = qualified(schema, state_table),
    )
}

/// The qualified name of the syncs table, to bind to [`TABLE_EXISTS`].
pub fn syncs_table(schema: &str) -> String {
    qualified(schema, SYNCS_TABLE)
}

/// One row: the table named by `$1` if it exists, else NULL.
pub const TABLE_EXISTS: &str = "SELECT to_regclass($1)::text";

/// The epoch of the sync's warehouse-side state (no row before its first run there).
pub fn state_epoch(schema: &str) -> String {
    format!(
        "SELECT state_epoch::text FROM {} WHERE sync_id = $1",
        qualified(schema, SYNCS_TABLE)
    )
}

/// Key hash and key values of every delivered entry that kept its key values (mirror):
/// what a first run under the Backflow-side strategy carries over (`executor::carried_keys`).
pub fn delivered_keys(schema: &str, state_table: &str) -> String {
    format!(
        "SELECT key_hash::text, key_json FROM {} WHERE delivered AND key_json IS NOT NULL",
        qualified(schema, state_table)
    )
}

/// The canonical text of one value of `column` (NULL when the value is NULL), and its tag.
fn value_text(column: &Column, expr: &str) -> Result<(char, String), SqlError> {
    let unsupported = || SqlError::UnsupportedType {
        column: column.name.clone(),
        data_type: column.data_type.to_string(),
    };
    let pg_type = column.warehouse_type.to_ascii_lowercase();
    Ok(match &column.data_type {
        DataType::Boolean => ('b', format!("{expr}::text")),
        DataType::Int64 => ('i', format!("{expr}::text")),
        DataType::Float64 => (
            'f',
            format!(
                "(case when {expr} = 0 then '0' when {expr} = 'NaN' then 'nan' \
                 else encode(float8send({expr}::float8), 'hex') end)"
            ),
        ),
        DataType::Decimal128(..) => ('d', format!("{expr}::text")),
        // arrays are read as `to_json(..)::text`; json, jsonb and the rest as their text
        DataType::Utf8 | DataType::LargeUtf8 if pg_type.ends_with("[]") => {
            ('j', format!("to_json({expr})::text"))
        }
        DataType::Utf8 | DataType::LargeUtf8 if pg_type == "json" || pg_type == "jsonb" => {
            ('j', format!("{expr}::text"))
        }
        DataType::Utf8 | DataType::LargeUtf8 => ('s', format!("{expr}::text")),
        DataType::Date32 => ('D', format!("({expr} - date '2000-01-01')::text")),
        DataType::Timestamp(_, None) => ('T', format!("encode(timestamp_send({expr}), 'hex')")),
        DataType::Timestamp(_, Some(_)) => {
            ('Z', format!("encode(timestamptz_send({expr}), 'hex')"))
        }
        DataType::Time64(_) => ('H', format!("encode(time_send({expr}), 'hex')")),
        DataType::Binary | DataType::LargeBinary => ('B', format!("encode({expr}, 'hex')")),
        _ => return Err(unsupported()),
    })
}

/// `'<tag>' || quote_nullable(v)` per column, concatenated: each value is `NULL` or a
/// quoted literal (quotes doubled), so the concatenation decodes one way only.
fn encoding(columns: &[&Column], alias: &str) -> Result<String, SqlError> {
    if columns.is_empty() {
        return Ok("''".into());
    }
    let parts = columns
        .iter()
        .map(|column| {
            let expr = format!("{alias}.{}", quote_ident(&column.name));
            let (tag, text) = value_text(column, &expr)?;
            Ok(format!("'{tag}' || quote_nullable({text})"))
        })
        .collect::<Result<Vec<_>, SqlError>>()?;
    Ok(parts.join(" || "))
}

fn find<'a>(columns: &'a [Column], name: &str) -> Result<&'a Column, SqlError> {
    columns
        .iter()
        .find(|column| column.name == name)
        .ok_or_else(|| SqlError::MissingColumn(name.to_string()))
}

/// The hashed model: its columns plus key hash (NULL where a key column is NULL), row
/// hash and the NULL-key flag.
fn hashed_model(model_sql: &str, keys: &[&Column], mapped: &[&Column]) -> Result<String, SqlError> {
    let key_text = encoding(keys, "backflow_q")?;
    let row_text = encoding(mapped, "backflow_q")?;
    let null_key = keys
        .iter()
        .map(|c| format!("backflow_q.{} IS NULL", quote_ident(&c.name)))
        .collect::<Vec<_>>()
        .join(" OR ");
    Ok(format!(
        "SELECT backflow_q.*, CASE WHEN {null_key} THEN NULL ELSE hashtextextended(({key_text}) COLLATE \"C\", 0) END AS {KEY_HASH}, \
         (hashtextextended(({row_text}) COLLATE \"C\", 0) & 9223372036854775807) AS {ROW_HASH}, \
         ({null_key}) AS __bf_null_key\n\
         FROM (\n{model_sql}\n) AS backflow_q"
    ))
}

/// The key and mapped columns of `spec`, after checking the model's column names.
fn spec_columns<'a>(
    columns: &'a [Column],
    spec: &RowSpec,
) -> Result<(Vec<&'a Column>, Vec<&'a Column>), SqlError> {
    let mut names = std::collections::BTreeSet::new();
    for column in columns {
        if column.name.starts_with("__bf_") {
            return Err(SqlError::Reserved(column.name.clone()));
        }
        if !names.insert(column.name.as_str()) {
            return Err(SqlError::DuplicateColumn(column.name.clone()));
        }
    }
    let keys = spec
        .key_columns
        .iter()
        .map(|name| find(columns, name))
        .collect::<Result<Vec<_>, _>>()?;
    let mapped = spec
        .mapped_columns
        .iter()
        .map(|name| find(columns, name))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((keys, mapped))
}

/// The diff query of one run. `state_table` is `None` when the state is void (first run,
/// or reset): every row is then an addition.
///
/// One pass: the hashed model streams through a full join with the state (hashed on the
/// state side, so nothing of the model is materialized or sorted), and only rows with
/// work leave it: `a` additions (every column when the mode sends additions, else the key
/// columns only: update mode just records them), `u` updates (modes that send them), `n`
/// NULL keys (key columns), `m` / `x` state entries missing from the model (observed /
/// delivered; key values kept in the state only for mirror, which deletes). A last `t` row
/// counts the model's rows (key hash) and those with a NULL key (row hash) from a second,
/// hash-free evaluation of the model. Duplicate keys are not settled here: the caller finds
/// repeated key hashes among the rows it pulled and checks [`duplicates_possible`] with
/// the counts; only then does it run [`duplicates_query`].
pub fn diff_query(
    model_sql: &str,
    columns: &[Column],
    spec: &RowSpec,
    mode: DeliveryMode,
    schema: &str,
    state_table: Option<&str>,
) -> Result<String, SqlError> {
    let (keys, mapped) = spec_columns(columns, spec)?;
    let hashed = hashed_model(model_sql, &keys, &mapped)?;
    let state = match state_table {
        Some(table) => format!(
            "SELECT key_hash, row_hash, delivered, key_json FROM {}",
            qualified(schema, table)
        ),
        None => "SELECT NULL::bigint AS key_hash, NULL::bigint AS row_hash, NULL::boolean AS delivered, \
                 NULL::text AS key_json WHERE false"
            .into(),
    };
    let is_key = |name: &str| spec.key_columns.iter().any(|k| k == name);
    // rows that carry every column: updates, and additions when the mode sends them
    let full_row = if mode.delivers(Change::Added) {
        "NOT m.__bf_null_key"
    } else {
        "s.key_hash IS NOT NULL"
    };
    let projected = columns
        .iter()
        .map(|c| {
            let column = format!("m.{}", quote_ident(&c.name));
            if is_key(&c.name) {
                column
            } else {
                format!(
                    "CASE WHEN {full_row} THEN {column} END AS {}",
                    quote_ident(&c.name)
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let no_columns = vec!["NULL"; columns.len()].join(", ");
    let updates = if mode.delivers(Change::Updated) {
        " OR s.row_hash <> m.__bf_row_hash"
    } else {
        // a mode that sends no updates keeps the old entries: nothing to pull
        ""
    };
    let state_key = if mode == DeliveryMode::Mirror {
        "s.key_json"
    } else {
        "NULL::text"
    };
    let null_key = keys
        .iter()
        .map(|c| format!("backflow_q.{} IS NULL", quote_ident(&c.name)))
        .collect::<Vec<_>>()
        .join(" OR ");
    Ok(format!(
        "WITH backflow_m AS (\n{hashed}\n),\n\
         backflow_s AS ({state})\n\
         SELECT {projected}, \
         CASE WHEN m.__bf_null_key IS NULL THEN (CASE WHEN s.delivered THEN 'x' ELSE 'm' END) \
         WHEN m.__bf_null_key THEN 'n' WHEN s.key_hash IS NULL THEN 'a' ELSE 'u' END AS {CLASS}, \
         coalesce(m.{KEY_HASH}, s.key_hash, 0) AS {KEY_HASH}, coalesce(m.{ROW_HASH}, s.row_hash) AS {ROW_HASH}, \
         {state_key} AS {STATE_KEY}\n\
         FROM backflow_m m FULL JOIN backflow_s s ON s.key_hash = m.{KEY_HASH}\n\
         WHERE m.__bf_null_key IS NULL OR m.__bf_null_key OR s.key_hash IS NULL{updates}\n\
         UNION ALL\n\
         SELECT {no_columns}, 't', count(*), count(*) FILTER (WHERE {null_key}), NULL \
         FROM (\n{model_sql}\n) AS backflow_q",
    ))
}

/// Whether keys of the state may repeat in the model although no pulled row showed it
/// (two unchanged rows of one key are not pulled): the model's rows with a key in the state
/// (`rows - null_keys - added_rows`) outnumber the state entries it matched
/// (`state_entries - missing`).
pub fn duplicates_possible(
    rows: u64,
    null_keys: u64,
    added_rows: u64,
    state_entries: u64,
    missing: u64,
) -> bool {
    let matched_rows = rows.saturating_sub(null_keys).saturating_sub(added_rows);
    matched_rows > state_entries.saturating_sub(missing)
}

/// Every key occurring more than once in the model: one row per key, its key columns (the
/// other columns NULL) and key hash. Run only when [`duplicates_possible`].
pub fn duplicates_query(
    model_sql: &str,
    columns: &[Column],
    spec: &RowSpec,
) -> Result<String, SqlError> {
    let (keys, _) = spec_columns(columns, spec)?;
    let hashed = hashed_model(model_sql, &keys, &[])?;
    let is_key = |name: &str| spec.key_columns.iter().any(|k| k == name);
    let keys_only = columns
        .iter()
        .map(|c| {
            if is_key(&c.name) {
                format!("m.{}", quote_ident(&c.name))
            } else {
                format!("NULL AS {}", quote_ident(&c.name))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    Ok(format!(
        "WITH backflow_m AS MATERIALIZED (\n{hashed}\n),\n\
         backflow_dup AS (SELECT {KEY_HASH} FROM backflow_m WHERE NOT __bf_null_key GROUP BY 1 HAVING count(*) > 1)\n\
         SELECT DISTINCT ON (m.{KEY_HASH}) {keys_only}, m.{KEY_HASH} AS {KEY_HASH} \
         FROM backflow_m m JOIN backflow_dup d ON d.{KEY_HASH} = m.{KEY_HASH} ORDER BY m.{KEY_HASH}"
    ))
}

/// One put of the commit: the entry's new row hash and flag (and key values, for mirror).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    pub key_hash: u64,
    pub row_hash: u64,
    pub delivered: bool,
    pub key_json: Option<String>,
}

/// What a commit changes in the state table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Void the whole state first (its epoch is older than the sync's).
    pub replace: bool,
    pub puts: Vec<Put>,
    /// New row hash, flag unchanged (given-up updates).
    pub rehash: Vec<(u64, u64)>,
    pub drops: Vec<u64>,
}

/// The commit transaction: bump the version (expecting the one read at the start, so a
/// concurrent commit makes this one a conflict), then apply the delta in chunks.
#[allow(clippy::too_many_arguments)]
pub fn commit(
    schema: &str,
    state_table: &str,
    sync_id: &str,
    run_id: &str,
    epoch: i64,
    version: i64,
    delta: &Delta,
) -> Vec<Statement> {
    let syncs = qualified(schema, SYNCS_TABLE);
    let state = qualified(schema, state_table);
    let mut statements = vec![Statement::new(format!(
        "UPDATE {syncs} SET version = version + 1, state_epoch = $1, last_run_id = $2, committed_at = now() \
         WHERE sync_id = $3 AND version = $4"
    ))
    .bind(Param::I64(epoch))
    .bind(Param::Text(run_id.to_string()))
    .bind(Param::Text(sync_id.to_string()))
    .bind(Param::I64(version))
    .expect(1)];
    if delta.replace {
        statements.push(Statement::new(format!("DROP TABLE IF EXISTS {state}")));
        statements.push(Statement::new(format!(
            "CREATE TABLE {state} {STATE_COLUMNS_UNINDEXED}"
        )));
    }
    for chunk in delta.drops.chunks(CHUNK) {
        statements.push(
            Statement::new(format!(
                "DELETE FROM {state} WHERE key_hash = ANY($1::bigint[])"
            ))
            .bind(Param::I64s(chunk.iter().map(|&k| k as i64).collect())),
        );
    }
    // into a new table no key can conflict: a plain insert
    let on_conflict = if delta.replace {
        ""
    } else {
        " ON CONFLICT (key_hash) DO UPDATE SET row_hash = excluded.row_hash, \
          delivered = excluded.delivered, key_json = coalesce(excluded.key_json, s.key_json)"
    };
    for chunk in delta.puts.chunks(CHUNK) {
        statements.push(
            Statement::new(format!(
                "INSERT INTO {state} AS s (key_hash, row_hash, delivered, key_json) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::boolean[], $4::text[]){on_conflict}"
            ))
            .bind(Param::I64s(
                chunk.iter().map(|p| p.key_hash as i64).collect(),
            ))
            .bind(Param::I64s(
                chunk.iter().map(|p| p.row_hash as i64).collect(),
            ))
            .bind(Param::Bools(chunk.iter().map(|p| p.delivered).collect()))
            .bind(Param::Texts(
                chunk.iter().map(|p| p.key_json.clone()).collect(),
            ))
            .expect(chunk.len() as u64),
        );
    }
    if delta.replace {
        statements.push(Statement::new(format!(
            "ALTER TABLE {state} ADD PRIMARY KEY (key_hash)"
        )));
    }
    for chunk in delta.rehash.chunks(CHUNK) {
        statements.push(
            Statement::new(format!(
                "UPDATE {state} AS s SET row_hash = u.r FROM unnest($1::bigint[], $2::bigint[]) AS u(k, r) \
                 WHERE s.key_hash = u.k"
            ))
            .bind(Param::I64s(chunk.iter().map(|(k, _)| *k as i64).collect()))
            .bind(Param::I64s(chunk.iter().map(|(_, r)| *r as i64).collect())),
        );
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, warehouse_type: &str, data_type: DataType) -> Column {
        Column {
            name: name.into(),
            warehouse_type: warehouse_type.into(),
            data_type,
            nullable: true,
        }
    }

    fn columns() -> Vec<Column> {
        vec![
            column("id", "bigint", DataType::Int64),
            column("email", "text", DataType::Utf8),
            column("score", "double precision", DataType::Float64),
            column("tags", "text[]", DataType::Utf8),
            column(
                "seen",
                "timestamp with time zone",
                DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into())),
            ),
        ]
    }

    fn spec() -> RowSpec {
        RowSpec {
            key_columns: vec!["id".into()],
            mapped_columns: vec!["email".into(), "score".into(), "tags".into(), "seen".into()],
        }
    }

    #[test]
    fn values_encode_by_type_independent_of_session_settings() {
        let sql = diff_query(
            "select * from people",
            &columns(),
            &spec(),
            DeliveryMode::Upsert,
            "bf",
            Some("backflow_state_s1"),
        )
        .unwrap();
        assert!(
            sql.contains("'i' || quote_nullable(backflow_q.\"id\"::text)"),
            "{sql}"
        );
        assert!(sql.contains("encode(float8send(backflow_q.\"score\"::float8), 'hex')"));
        assert!(sql.contains("to_json(backflow_q.\"tags\")::text"));
        assert!(sql.contains("timestamptz_send(backflow_q.\"seen\")"));
        assert!(sql.contains("FROM \"bf\".\"backflow_state_s1\""));
        assert!(sql.contains("OR s.key_hash IS NULL OR s.row_hash <> m.__bf_row_hash\n"));
        assert!(sql.contains("FULL JOIN backflow_s s ON s.key_hash = m.__bf_key_hash"));
        assert!(
            !sql.contains("MATERIALIZED"),
            "one pass, nothing materialized"
        );
        assert!(
            sql.contains("NULL::text AS __bf_state_key"),
            "upsert deletes nothing: no key values of missing entries"
        );
        assert!(sql.contains("CASE WHEN NOT m.__bf_null_key THEN m.\"email\" END AS \"email\""));
        assert_eq!(
            sql.matches("\nselect * from people\n").count(),
            2,
            "hashed once, counted once"
        );
    }

    #[test]
    fn modes_pull_only_what_they_need() {
        let insert = diff_query(
            "select 1",
            &columns(),
            &spec(),
            DeliveryMode::Insert,
            "bf",
            None,
        )
        .unwrap();
        assert!(insert.contains("OR m.__bf_null_key OR s.key_hash IS NULL\n"));
        assert!(insert.contains("WHERE false"), "a void state");
        let update = diff_query(
            "select 1",
            &columns(),
            &spec(),
            DeliveryMode::Update,
            "bf",
            Some("t"),
        )
        .unwrap();
        assert!(
            update.contains("CASE WHEN s.key_hash IS NOT NULL THEN m.\"email\" END"),
            "additions it never sends: key columns only"
        );
        assert!(update.contains("m.\"id\", CASE"), "key columns always");
        let mirror = diff_query(
            "select 1",
            &columns(),
            &spec(),
            DeliveryMode::Mirror,
            "bf",
            Some("t"),
        )
        .unwrap();
        assert!(mirror.contains("s.key_json AS __bf_state_key"));
        let dups = duplicates_query("select 1", &columns(), &spec()).unwrap();
        assert!(dups.contains("HAVING count(*) > 1"));
    }

    #[test]
    fn a_strategy_change_reads_the_epoch_and_the_delivered_keys() {
        assert_eq!(
            state_epoch("bf"),
            "SELECT state_epoch::text FROM \"bf\".\"backflow_syncs\" WHERE sync_id = $1"
        );
        assert_eq!(
            delivered_keys("bf", "backflow_state_s1"),
            "SELECT key_hash::text, key_json FROM \"bf\".\"backflow_state_s1\" WHERE delivered AND key_json IS NOT NULL"
        );
    }

    #[test]
    fn the_diff_query_asks_for_work_mem_unless_turned_off() {
        assert_eq!(work_mem_kib(DEFAULT_WORK_MEM_MB), Some(262_144));
        assert_eq!(work_mem_kib(1), Some(1024));
        assert_eq!(work_mem_kib(0), None, "0 keeps the server's setting");
        assert_eq!(
            work_mem_kib(u64::MAX),
            Some(u64::MAX),
            "clamped by the connector"
        );
    }

    #[test]
    fn counts_betray_repeated_state_keys() {
        // 10 rows, 1 null key, 2 additions, 8 state entries of which 1 missing: 7 rows
        // matched 7 entries
        assert!(!duplicates_possible(10, 1, 2, 8, 1));
        // one more row matching a state key: two rows share an entry
        assert!(duplicates_possible(11, 1, 2, 8, 1));
        assert!(!duplicates_possible(5, 0, 5, 0, 0), "a first run");
    }

    #[test]
    fn unusable_models_are_refused() {
        let mut cols = columns();
        cols.push(column("__bf_class", "text", DataType::Utf8));
        assert!(matches!(
            diff_query("select 1", &cols, &spec(), DeliveryMode::Upsert, "bf", None),
            Err(SqlError::Reserved(_))
        ));
        let cols = vec![column(
            "id",
            "interval",
            DataType::Duration(arrow_schema::TimeUnit::Microsecond),
        )];
        let spec = RowSpec {
            key_columns: vec!["id".into()],
            mapped_columns: vec![],
        };
        assert!(matches!(
            diff_query("select 1", &cols, &spec, DeliveryMode::Upsert, "bf", None),
            Err(SqlError::UnsupportedType { .. })
        ));
        let spec = RowSpec {
            key_columns: vec!["nope".into()],
            mapped_columns: vec![],
        };
        assert!(matches!(
            diff_query(
                "select 1",
                &columns(),
                &spec,
                DeliveryMode::Upsert,
                "bf",
                None
            ),
            Err(SqlError::MissingColumn(_))
        ));
    }

    #[test]
    fn commits_check_the_version_and_chunk_rows() {
        let delta = Delta {
            replace: true,
            puts: (0..(CHUNK as u64 + 1))
                .map(|k| Put {
                    key_hash: k,
                    row_hash: 1,
                    delivered: true,
                    key_json: None,
                })
                .collect(),
            rehash: vec![(1, 2)],
            drops: vec![u64::MAX],
        };
        let statements = commit("bf", "t", "s1", "r1", 3, 7, &delta);
        assert_eq!(statements.len(), 1 + 2 + 1 + 2 + 1 + 1);
        assert_eq!(statements[0].expect_rows, Some(1));
        assert_eq!(statements[0].params[3], Param::I64(7));
        assert!(statements[1].sql.starts_with("DROP TABLE IF EXISTS"));
        assert!(
            statements[2].sql.starts_with("CREATE TABLE")
                && !statements[2].sql.contains("PRIMARY KEY")
        );
        assert_eq!(statements[3].params[0], Param::I64s(vec![-1]));
        assert_eq!(statements[5].expect_rows, Some(1));
        assert!(
            !statements[4].sql.contains("ON CONFLICT"),
            "a new table: plain inserts"
        );
        assert!(statements[6].sql.ends_with("ADD PRIMARY KEY (key_hash)"));
    }
}
