//! Every SQL text the Postgres and Redshift connectors send, built in one place so the
//! Redshift variants (no `COPY TO STDOUT`, cursors, `svv_columns`, `varchar(max)`,
//! `json_serialize`) are unit-tested without a Redshift cluster.

use std::time::Duration;

use super::types::{ColumnPlan, Select};
use super::Flavor;

pub(crate) const CURSOR: &str = "backflow_c";

/// Opens the read-only transaction with a statement timeout (and, when given, a
/// transaction-local `work_mem` in KiB, clamped to what PostgreSQL accepts), and asks for
/// the backend pid (to cancel it from another connection). One round trip.
pub(crate) fn begin_read_only(timeout: Duration, work_mem_kib: Option<u64>) -> String {
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
    let work_mem = work_mem_kib
        .map(|kib| {
            format!(
                " SET LOCAL work_mem = '{}kB';",
                kib.clamp(64, i32::MAX as u64)
            )
        })
        .unwrap_or_default();
    format!(
        "BEGIN READ ONLY; SET LOCAL statement_timeout = {ms};{work_mem} SELECT pg_backend_pid()"
    )
}

/// The query as a subquery, for describing its columns (prepared, never executed).
pub(crate) fn describe_wrapper(sql: &str) -> String {
    format!("select * from (\n{sql}\n) as backflow_q")
}

/// The select that streams: `*` when every column is read as is, else the columns
/// renamed positionally and cast where they have no binary decoder.
pub(crate) fn streaming_select(
    flavor: Flavor,
    sql: &str,
    plans: &[ColumnPlan],
    max_rows: Option<u64>,
) -> String {
    let limit = max_rows.map(|n| format!(" limit {n}")).unwrap_or_default();
    if plans.iter().all(|p| p.select == Select::AsIs) {
        return format!("select * from (\n{sql}\n) as backflow_q{limit}");
    }
    let aliases: Vec<String> = (1..=plans.len()).map(|i| format!("backflow_{i}")).collect();
    let projection: Vec<String> = plans
        .iter()
        .zip(&aliases)
        .map(|(p, a)| match (p.select, flavor) {
            (Select::AsIs, _) => a.clone(),
            (Select::Text, Flavor::Postgres) => format!("{a}::text"),
            (Select::Text, Flavor::Redshift) => format!("{a}::varchar(max)"),
            (Select::ToJson, _) => format!("to_json({a})::text"),
            (Select::JsonSerialize, _) => format!("json_serialize({a})"),
        })
        .collect();
    format!(
        "select {} from (\n{sql}\n) as backflow_q({}){limit}",
        projection.join(", "),
        aliases.join(", ")
    )
}

pub(crate) fn copy_out(select: &str) -> String {
    format!("COPY ({select}) TO STDOUT (FORMAT binary)")
}

pub(crate) fn declare_cursor(select: &str) -> String {
    format!("DECLARE {CURSOR} CURSOR FOR {select}")
}

pub(crate) fn fetch_forward(rows: usize) -> String {
    format!("FETCH FORWARD {rows} FROM {CURSOR}")
}

/// Typmods, nullability and full type names of the columns a prepared query reads
/// straight from tables (`(relation oid, attnum)` pairs), plus the names of `types`.
/// Only integers are inlined (Redshift binds no arrays).
pub(crate) fn column_facts(pairs: &[(u32, i16)], types: &[u32]) -> String {
    let mut parts = Vec::new();
    if !pairs.is_empty() {
        let cond: Vec<String> = pairs
            .iter()
            .map(|(rel, att)| format!("(a.attrelid = {rel} and a.attnum = {att})"))
            .collect();
        parts.push(format!(
            "select 'a'::text as k, a.attrelid::int8 as id, a.attnum::int4 as n, a.atttypid::int8 as t, \
             a.atttypmod::int4 as m, a.attnotnull as nn, format_type(a.atttypid, a.atttypmod)::text as f \
             from pg_catalog.pg_attribute a where {}",
            cond.join(" or ")
        ));
    }
    if !types.is_empty() {
        let list: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        parts.push(format!(
            "select 't'::text as k, t.oid::int8 as id, 0::int4 as n, t.oid::int8 as t, -1::int4 as m, \
             false as nn, format_type(t.oid, null)::text as f from pg_catalog.pg_type t where t.oid in ({})",
            list.join(", ")
        ));
    }
    parts.join(" union all ")
}

/// A relation's columns from PostgreSQL's catalog (domains resolved to their base type).
pub(crate) const DESCRIBE_RELATION_CATALOG: &str = "\
select a.attname::text, format_type(a.atttypid, a.atttypmod)::text, \
       (case when t.typtype = 'd' then t.typbasetype else a.atttypid end)::int8, \
       (case when t.typtype = 'd' then t.typtypmod else a.atttypmod end)::int4, \
       a.attnotnull, bt.typname::text, (bt.typcategory = 'A'), (bt.typtype = 'c'), \
       has_table_privilege(c.oid, 'SELECT') \
from pg_catalog.pg_attribute a \
join pg_catalog.pg_class c on c.oid = a.attrelid \
join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
join pg_catalog.pg_type t on t.oid = a.atttypid \
join pg_catalog.pg_type bt on bt.oid = (case when t.typtype = 'd' then t.typbasetype else a.atttypid end) \
where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped \
order by a.attnum";

/// A relation's columns from an `information_schema.columns`-shaped view: Redshift's
/// `svv_columns` (local, external and late-binding objects), or PostgreSQL's own
/// `information_schema.columns` (to test this path locally).
pub(crate) fn describe_relation_view(view: &str) -> String {
    format!(
        "select column_name::text, data_type::text, character_maximum_length::int4, \
         numeric_precision::int4, numeric_scale::int4, (is_nullable = 'YES') \
         from {view} where table_schema = $1 and table_name = $2 order by ordinal_position"
    )
}

pub(crate) const CURRENT_DATABASE: &str = "select current_database()::text";

/// `test(schema)`: whether the schema exists and whether the user may use it.
pub(crate) const SCHEMA_USAGE: &str = "\
select n.oid is not null, coalesce(has_schema_privilege(n.oid, 'USAGE'), false) \
from (select 1) one left join pg_catalog.pg_namespace n on n.nspname = $1";

pub(crate) fn cancel_backend(pid: i32) -> String {
    format!("select pg_cancel_backend({pid})")
}

#[cfg(test)]
mod tests {
    use super::super::types::{plan_column, TypeFacts};
    use super::*;

    fn plan(oid: u32, name: &str) -> ColumnPlan {
        plan_column(
            "c",
            name.into(),
            true,
            TypeFacts {
                oid,
                typmod: -1,
                name,
                is_array: false,
                is_composite: false,
            },
        )
    }

    #[test]
    fn plain_columns_stream_with_star() {
        let plans = [plan(23, "int4"), plan(25, "text")];
        assert_eq!(
            streaming_select(Flavor::Postgres, "select a, b from t", &plans, Some(10)),
            "select * from (\nselect a, b from t\n) as backflow_q limit 10"
        );
    }

    #[test]
    fn casts_differ_per_flavor() {
        let plans = [
            plan(23, "int4"),
            plan(1186, "interval"),
            plan(4000, "super"),
        ];
        assert_eq!(
            streaming_select(Flavor::Postgres, "q", &plans, None),
            "select backflow_1, backflow_2::text, json_serialize(backflow_3) from (\nq\n) as backflow_q(backflow_1, backflow_2, backflow_3)"
        );
        assert_eq!(
            streaming_select(Flavor::Redshift, "q", &plans, Some(5)),
            "select backflow_1, backflow_2::varchar(max), json_serialize(backflow_3) from (\nq\n) as backflow_q(backflow_1, backflow_2, backflow_3) limit 5"
        );
    }

    #[test]
    fn redshift_reads_through_a_cursor_in_a_read_only_transaction() {
        assert_eq!(
            begin_read_only(Duration::from_millis(300), None),
            "BEGIN READ ONLY; SET LOCAL statement_timeout = 300; SELECT pg_backend_pid()"
        );
        assert_eq!(
            begin_read_only(Duration::ZERO, None),
            "BEGIN READ ONLY; SET LOCAL statement_timeout = 1; SELECT pg_backend_pid()"
        );
        assert_eq!(
            begin_read_only(Duration::from_secs(1), Some(262_144)),
            "BEGIN READ ONLY; SET LOCAL statement_timeout = 1000; SET LOCAL work_mem = '262144kB'; SELECT pg_backend_pid()"
        );
        assert!(begin_read_only(Duration::from_secs(1), Some(1)).contains("work_mem = '64kB'"));
        assert_eq!(
            declare_cursor("select 1"),
            "DECLARE backflow_c CURSOR FOR select 1"
        );
        assert_eq!(fetch_forward(1000), "FETCH FORWARD 1000 FROM backflow_c");
        assert_eq!(
            copy_out("select 1"),
            "COPY (select 1) TO STDOUT (FORMAT binary)"
        );
    }

    #[test]
    fn redshift_describes_from_svv_columns() {
        let q = describe_relation_view("svv_columns");
        assert!(q.contains("from svv_columns where table_schema = $1 and table_name = $2 order by ordinal_position"), "{q}");
    }

    #[test]
    fn column_facts_inlines_only_integers() {
        let q = column_facts(&[(16384, 2)], &[23]);
        assert!(q.contains("(a.attrelid = 16384 and a.attnum = 2)"), "{q}");
        assert!(q.contains("where t.oid in (23)"), "{q}");
        assert_eq!(column_facts(&[], &[]), "");
    }
}
