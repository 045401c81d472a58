//! One small project compiled under each of the five adapters: relation rendering and
//! quoting, `adapter.quote`, `target.type`, type labels and the adapter's own cross-database
//! macros. The expected SQL is dbt-core 1.7.20's with each dbt-<adapter> 1.7.x, run offline
//! (conformance/dbt_offline.py); `make conformance` covers the same at project scale.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

use backflow_dbt::{parse_project, Adapter, ParseOptions};
use std::fs;
use std::path::Path;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, text).unwrap();
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "dbt_project.yml",
        "name: ut\nversion: '1.0'\nprofile: ut\nconfig-version: 2\n",
    );
    write(dir.path(), "models/a.sql", "select 1 as id\n");
    write(
        dir.path(),
        "models/b.sql",
        "select {{ dbt.current_timestamp() }} as ts, cast(id as {{ dbt.type_string() }}) as s, \
         {{ dbt.dateadd('day', 1, 'ts') }} as d, {{ adapter.quote('x') }} as q, \
         '{{ target.type }}' as t\n\
         from {{ ref('a') }} join {{ source('raw', 'events') }} using (id)\n",
    );
    write(
        dir.path(),
        "models/schema.yml",
        "version: 2\nsources:\n  - name: raw\n    schema: raw_data\n    tables:\n      - name: events\n",
    );
    dir
}

fn compiled(adapter: Adapter) -> (String, String) {
    let dir = project();
    let opts = ParseOptions {
        adapter,
        ..ParseOptions::default()
    };
    let catalog = parse_project(dir.path(), &opts).unwrap();
    let b = &catalog.nodes["model.ut.b"];
    (
        b.relation_name.clone().unwrap_or_default(),
        b.compiled_code.clone().unwrap_or_default(),
    )
}

const FROM_QUOTED: &str =
    "from \"warehouse\".\"analytics\".\"a\" join \"warehouse\".\"raw_data\".\"events\" using (id)";
const FROM_BACKTICKS: &str =
    "from `warehouse`.`analytics`.`a` join `warehouse`.`raw_data`.`events` using (id)";

#[test]
fn postgres() {
    let (rel, sql) = compiled(Adapter::Postgres);
    assert_eq!(rel, "\"warehouse\".\"analytics\".\"b\"");
    assert_eq!(
        sql,
        format!(
            "select now() as ts, cast(id as TEXT) as s, \n\n    ts + ((interval '1 day') * (1))\n\n \
             as d, \"x\" as q, 'postgres' as t\n{FROM_QUOTED}"
        )
    );
}

#[test]
fn redshift_uses_its_own_macros_and_postgres_quoting() {
    let (rel, sql) = compiled(Adapter::Redshift);
    assert_eq!(rel, "\"warehouse\".\"analytics\".\"b\"");
    assert_eq!(
        sql,
        format!(
            "select getdate() as ts, cast(id as TEXT) as s, \n\n    dateadd(\n        day,\n        1,\n        ts\n        )\n\n \
             as d, \"x\" as q, 'redshift' as t\n{FROM_QUOTED}"
        )
    );
}

#[test]
fn snowflake_renders_relations_unquoted() {
    let (rel, sql) = compiled(Adapter::Snowflake);
    assert_eq!(rel, "warehouse.analytics.b");
    assert_eq!(
        sql,
        "select convert_timezone('UTC', current_timestamp()) as ts, cast(id as TEXT) as s, \n\n    \
         dateadd(\n        day,\n        1,\n        ts\n        )\n\n as d, \"x\" as q, 'snowflake' as t\n\
         from warehouse.analytics.a join warehouse.raw_data.events using (id)"
    );
}

#[test]
fn bigquery_uses_backticks_and_its_types() {
    let (rel, sql) = compiled(Adapter::Bigquery);
    assert_eq!(rel, "`warehouse`.`analytics`.`b`");
    assert_eq!(
        sql,
        format!(
            "select current_timestamp() as ts, cast(id as string) as s, \n\n        datetime_add(\n            \
             cast( ts as datetime),\n        interval 1 day\n        )\n\n as d, `x` as q, 'bigquery' as t\n{FROM_BACKTICKS}"
        )
    );
}

#[test]
fn databricks_uses_catalog_backticks_and_spark_parents() {
    let (rel, sql) = compiled(Adapter::Databricks);
    assert_eq!(rel, "`warehouse`.`analytics`.`b`");
    assert_eq!(
        sql,
        format!(
            "select current_timestamp() as ts, cast(id as string) as s, timestampadd(day, 1, ts) as d, \
             `x` as q, 'databricks' as t\n{FROM_BACKTICKS}"
        )
    );
}

#[test]
fn typed_relation_longer_than_the_warehouse_allows_is_a_node_error() {
    let dir = project();
    let long = "x".repeat(70);
    write(
        dir.path(),
        "models/typed.sql",
        &format!(
            "{{% set r = api.Relation.create(database='d', schema='s', identifier='{long}', type='table') %}}\
             select '{{{{ r }}}}' as r\n"
        ),
    );
    let errors = |adapter: Adapter| {
        let opts = ParseOptions {
            adapter,
            ..ParseOptions::default()
        };
        parse_project(dir.path(), &opts).unwrap().errors
    };
    // dbt-postgres: "Relation name '...' is longer than 63 characters"
    let pg = errors(Adapter::Postgres);
    assert_eq!(pg.len(), 1, "{pg:?}");
    assert_eq!(pg[0].unique_id.as_deref(), Some("model.ut.typed"));
    assert!(
        pg[0].message.contains(&format!(
            "Relation name '{long}' is longer than 63 characters"
        )),
        "{}",
        pg[0].message
    );
    // redshift allows 127, snowflake has no limit in dbt
    assert_eq!(errors(Adapter::Redshift), vec![]);
    assert_eq!(errors(Adapter::Snowflake), vec![]);
}
