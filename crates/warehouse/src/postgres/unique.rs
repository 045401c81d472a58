//! A proof from PostgreSQL itself that no two rows of a query's result share a key, so a
//! caller may act on rows before the extract has ended (a first sync delivers while it
//! reads, instead of waiting to learn which keys repeat).
//!
//! The proof has three parts, all of which must hold, else the answer is
//! [`KeyProof::Unproven`] and nothing changes for the caller:
//!
//! 1. **One relation, each tuple at most once.** `EXPLAIN (VERBOSE, FORMAT JSON)` of the
//!    very select that streams is a chain of row-preserving nodes (`Limit`, `Sort`,
//!    `Incremental Sort`, `Result`, `Gather`, `Gather Merge`, each with one input) ending
//!    in one scan of one relation (`Seq Scan`, `Index Scan`, `Index Only Scan`, or a
//!    `Bitmap Heap Scan` over bitmap index nodes); `InitPlan`/`SubPlan` children are
//!    ignored (they compute values, never rows). Every plan the server may pick for the
//!    query returns the same rows, so the query's result is a projection of a subset of
//!    that relation's visible tuples, each at most once: no join, union, set-returning
//!    function, `VALUES` or CTE can repeat one.
//! 2. **The key is that relation's own columns.** Each key column's `RowDescription`
//!    origin (table OID and attribute number, which the server fills only for a plain
//!    column reference, through subqueries; a view's column names the view, so a model
//!    over a view proves nothing) is a column of the scanned relation
//!    (same schema and name, a plain table or materialized view), read as is (no cast)
//!    and of a type whose distinct values Backflow never encodes alike (integers, text,
//!    `uuid`, `numeric`, dates and timestamps, `boolean`).
//! 3. **A unique index covers it.** The relation has a unique index that is valid,
//!    ready, immediate (not deferrable), not partial, without expressions, whose key
//!    columns are all among the key's columns (a unique index on a subset makes the whole
//!    key unique). NULL keys are not covered (a unique index admits repeated NULLs), and
//!    need not be: a caller rejects NULL keys on its own, row by row.
//!
//! Concurrency: planning the `EXPLAIN` takes `AccessShareLock` on the relation, held to
//! the end of the read-only transaction the rows are then streamed in. Dropping the index
//! or the constraint (`AccessExclusiveLock`) waits for it, and `DROP INDEX CONCURRENTLY`
//! keeps enforcing the index until every transaction holding a lock on the table is gone,
//! so no duplicate can be committed into what the stream's snapshot sees.
//!
//! Redshift does not enforce unique constraints: its flavor never proves anything.

use serde_json::Value;
use sqlx::{PgConnection, Row};

use super::types::{oid, ColumnPlan, Select};
use crate::types::KeyProof;

/// Nodes that pass their one input's rows through (or fewer of them), never repeat one.
const PASS_THROUGH: &[&str] = &[
    "Limit",
    "Sort",
    "Incremental Sort",
    "Result",
    "Gather",
    "Gather Merge",
];

/// Scans that return each tuple of their relation at most once.
const SCANS: &[&str] = &[
    "Seq Scan",
    "Index Scan",
    "Index Only Scan",
    "Bitmap Heap Scan",
];

/// The inputs of a `Bitmap Heap Scan` (tuple ids, not rows).
const BITMAP_INPUTS: &[&str] = &["Bitmap Index Scan", "BitmapAnd", "BitmapOr"];

/// Key column types whose distinct values (by the index's equality) never encode alike in
/// Backflow's key hash: for these, PostgreSQL's equality is at least as coarse as
/// Backflow's encoding (text by bytes under a deterministic collation, coarser under a
/// nondeterministic one; numerics by value, which their exact text or unscaled decimal
/// keeps apart; instants by microsecond).
const KEY_TYPES: &[u32] = &[
    oid::BOOL,
    oid::INT2,
    oid::INT4,
    oid::INT8,
    oid::TEXT,
    oid::VARCHAR,
    oid::BPCHAR,
    oid::NAME,
    oid::UUID,
    oid::NUMERIC,
    oid::DATE,
    oid::TIMESTAMP,
    oid::TIMESTAMPTZ,
];

/// The relation a plan reads, when it is one scan under row-preserving nodes.
pub(crate) fn single_scan(plan: &Value) -> Option<(String, String)> {
    let mut node = plan;
    loop {
        let kind = node.get("Node Type")?.as_str()?;
        let inputs: Vec<&Value> = match node.get("Plans") {
            None => Vec::new(),
            Some(plans) => plans
                .as_array()?
                .iter()
                .filter(|child| {
                    !matches!(
                        child.get("Parent Relationship").and_then(Value::as_str),
                        Some("InitPlan" | "SubPlan")
                    )
                })
                .collect(),
        };
        if SCANS.contains(&kind) {
            let bitmap_only = inputs.iter().all(|input| {
                kind == "Bitmap Heap Scan"
                    && input
                        .get("Node Type")
                        .and_then(Value::as_str)
                        .is_some_and(|k| BITMAP_INPUTS.contains(&k))
            });
            if !bitmap_only {
                return None;
            }
            let schema = node.get("Schema")?.as_str()?.to_string();
            let relation = node.get("Relation Name")?.as_str()?.to_string();
            return Some((schema, relation));
        }
        if !PASS_THROUGH.contains(&kind) || inputs.len() != 1 {
            return None;
        }
        node = inputs[0];
    }
}

/// The key columns' (relation OID, attribute numbers), when all are plain columns of one
/// relation, read as is, of a [`KEY_TYPES`] type.
pub(crate) fn key_origin(plans: &[ColumnPlan], key: &[String]) -> Option<(u32, Vec<i16>)> {
    let mut relation = None;
    let mut attributes = Vec::with_capacity(key.len());
    for name in key {
        let mut named = plans.iter().filter(|p| &p.column.name == name);
        let plan = named.next()?;
        if named.next().is_some() || plan.select != Select::AsIs || !KEY_TYPES.contains(&plan.oid) {
            return None;
        }
        let (table, attribute) = plan.origin?;
        if attribute <= 0 || *relation.get_or_insert(table) != table {
            return None;
        }
        attributes.push(attribute);
    }
    Some((relation?, attributes))
}

/// Whether the rows of `select` (already described as `plans`) have unique `key` values.
/// Runs inside the stream's read-only transaction, before the rows are read.
pub(crate) async fn prove(
    conn: &mut PgConnection,
    select: &str,
    plans: &[ColumnPlan],
    key: &[String],
) -> Result<KeyProof, sqlx::Error> {
    let Some((table, attributes)) = key_origin(plans, key) else {
        return Ok(KeyProof::Unproven);
    };
    // Planning takes (and keeps, to the end of the transaction) the relation's lock.
    let explained: Value = sqlx::query_scalar::<_, sqlx::types::Json<Value>>(&format!(
        "explain (verbose, format json) {select}"
    ))
    .persistent(false)
    .fetch_one(&mut *conn)
    .await?
    .0;
    let Some((schema, relation)) = explained
        .get(0)
        .and_then(|e| e.get("Plan"))
        .and_then(single_scan)
    else {
        return Ok(KeyProof::Unproven);
    };
    let row = sqlx::query(&index_query(table, &attributes))
        .persistent(false)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(KeyProof::Unproven);
    };
    let (found_schema, found_relation, index): (String, String, Option<String>) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    Ok(match index {
        Some(index) if found_schema == schema && found_relation == relation => {
            KeyProof::UniqueIndex {
                relation: format!("{schema}.{relation}"),
                index,
            }
        }
        _ => KeyProof::Unproven,
    })
}

/// The relation's schema and name (plain tables and materialized views only) and a unique
/// index proving the key, if any. Only integers are inlined.
pub(crate) fn index_query(table: u32, attributes: &[i16]) -> String {
    let attributes: Vec<String> = attributes.iter().map(i16::to_string).collect();
    format!(
        "select n.nspname::text, c.relname::text, \
           (select i.indexrelid::regclass::text from pg_catalog.pg_index i \
            where i.indrelid = c.oid and i.indisunique and i.indisvalid and i.indisready \
              and i.indimmediate and i.indpred is null and i.indexprs is null \
              and i.indnkeyatts > 0 \
              and (i.indkey::int2[])[0:i.indnkeyatts - 1] <@ array[{}]::int2[] \
            order by i.indexrelid limit 1) \
         from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
         where c.oid = {table} and c.relkind in ('r', 'm')",
        attributes.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::super::types::{plan_column, TypeFacts};
    use super::*;
    use serde_json::json;

    fn scan(kind: &str) -> Value {
        json!({"Node Type": kind, "Schema": "public", "Relation Name": "t", "Output": ["t.id"]})
    }

    fn over(kind: &str, inputs: Vec<Value>) -> Value {
        json!({"Node Type": kind, "Plans": inputs})
    }

    fn public_t() -> Option<(String, String)> {
        Some(("public".into(), "t".into()))
    }

    #[test]
    fn one_scan_under_row_preserving_nodes_is_a_single_scan() {
        assert_eq!(single_scan(&scan("Seq Scan")), public_t());
        assert_eq!(
            single_scan(&over("Limit", vec![over("Sort", vec![scan("Index Scan")])])),
            public_t()
        );
        let mut with_init = scan("Index Only Scan");
        with_init["Plans"] = json!([{"Node Type": "Result", "Parent Relationship": "InitPlan"}]);
        assert_eq!(single_scan(&with_init), public_t());
        let mut bitmap = scan("Bitmap Heap Scan");
        bitmap["Plans"] = json!([{"Node Type": "BitmapOr", "Parent Relationship": "Outer"}]);
        assert_eq!(single_scan(&bitmap), public_t());
    }

    #[test]
    fn anything_that_may_repeat_a_tuple_is_not() {
        for plan in [
            over("Append", vec![scan("Seq Scan"), scan("Seq Scan")]),
            over("Nested Loop", vec![scan("Seq Scan"), scan("Seq Scan")]),
            over("Hash Join", vec![scan("Seq Scan"), scan("Seq Scan")]),
            over("ProjectSet", vec![scan("Seq Scan")]),
            over("Limit", vec![over("Append", vec![scan("Seq Scan")])]),
            over("Result", vec![]),
            json!({"Node Type": "Function Scan", "Schema": "public", "Relation Name": "t"}),
            json!({"Node Type": "Values Scan"}),
            json!({"Node Type": "CTE Scan", "Plans": [scan("Seq Scan")]}),
        ] {
            assert_eq!(single_scan(&plan), None, "{plan}");
        }
        let mut seq_with_input = scan("Seq Scan");
        seq_with_input["Plans"] = json!([scan("Seq Scan")]);
        assert_eq!(single_scan(&seq_with_input), None);
    }

    fn plan(name: &str, type_oid: u32, origin: Option<(u32, i16)>) -> ColumnPlan {
        let mut plan = plan_column(
            name,
            String::new(),
            false,
            TypeFacts {
                oid: type_oid,
                typmod: -1,
                name: "",
                is_array: false,
                is_composite: false,
            },
        );
        plan.origin = origin;
        plan
    }

    #[test]
    fn the_key_must_be_plain_columns_of_one_relation() {
        let key = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let plans = vec![
            plan("id", oid::INT8, Some((100, 1))),
            plan("email", oid::TEXT, Some((100, 2))),
            plan("other", oid::INT4, Some((200, 1))),
            plan("computed", oid::INT8, None),
            plan("ratio", oid::FLOAT8, Some((100, 4))),
            plan("at", 1186, Some((100, 5))),
        ];
        assert_eq!(key_origin(&plans, &key(&["id"])), Some((100, vec![1])));
        assert_eq!(
            key_origin(&plans, &key(&["email", "id"])),
            Some((100, vec![2, 1]))
        );
        for bad in [
            &["id", "other"][..],
            &["computed"],
            &["ratio"],
            &["at"],
            &["missing"],
            &[],
        ] {
            assert_eq!(key_origin(&plans, &key(bad)), None, "{bad:?}");
        }
        let twice = vec![
            plan("id", oid::INT8, Some((100, 1))),
            plan("id", oid::INT8, Some((100, 2))),
        ];
        assert_eq!(key_origin(&twice, &key(&["id"])), None);
    }

    #[test]
    fn the_index_query_inlines_only_integers() {
        let q = index_query(16384, &[2, 1]);
        assert!(
            q.contains("where c.oid = 16384 and c.relkind in ('r', 'm')"),
            "{q}"
        );
        assert!(q.contains("<@ array[2, 1]::int2[]"), "{q}");
    }
}
