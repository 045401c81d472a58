//! Generic tests on ephemeral models (or whose `to:` model is ephemeral) get the ephemeral
//! CTEs injected into their compiled SQL, exactly as dbt 1.7's compiler does for models:
//! prepended as a new `with` when the test SQL does not start with one, merged into the
//! test's own `with` (relationships) when it does; nested ephemerals come first.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

use backflow_dbt::{parse_project, Engine, ParseOptions};
use std::fs;
use std::path::Path;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, text).unwrap();
}

const SCHEMA_YML: &str = "version: 2
models:
  - name: e
    columns:
      - name: id
        tests: [not_null]
  - name: m
    columns:
      - name: id
        tests:
          - relationships:
              to: ref('e_outer')
              field: id
";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "dbt_project.yml",
        "name: p\nversion: '1'\nconfig-version: 2\nmodels:\n  p:\n    +materialized: table\n",
    );
    write(d, "models/raw.sql", "select 1 as id");
    write(
        d,
        "models/e.sql",
        "{{ config(materialized='ephemeral') }}select id from {{ ref('raw') }}",
    );
    write(
        d,
        "models/e_outer.sql",
        "{{ config(materialized='ephemeral') }}select id from {{ ref('e') }}",
    );
    write(d, "models/m.sql", "select id from {{ ref('raw') }}");
    write(d, "models/schema.yml", SCHEMA_YML);
    dir
}

fn opts() -> ParseOptions {
    ParseOptions {
        target_schema: "s".into(),
        ..ParseOptions::default()
    }
}

fn test_sql(catalog: &backflow_dbt::catalog::Catalog, prefix: &str) -> String {
    let (_, node) = catalog
        .nodes
        .iter()
        .find(|(id, _)| id.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}*"));
    node.compiled_code.clone().expect("compiled")
}

const RAW: &str = "\"warehouse\".\"s\".\"raw\"";

#[test]
fn test_on_an_ephemeral_model_gets_its_cte() {
    let dir = project();
    let catalog = parse_project(dir.path(), &opts()).unwrap();
    let sql = test_sql(&catalog, "test.p.not_null_e_id.");
    let want = format!(
        "with __dbt__cte__e as (\nselect id from {RAW}\n) select id\nfrom __dbt__cte__e\nwhere id is null"
    );
    assert!(
        sql.trim().ends_with(&want) && sql.trim().starts_with("with __dbt__cte__e as ("),
        "{sql:?}"
    );
}

#[test]
fn relationships_to_a_nested_ephemeral_merges_into_its_with() {
    let dir = project();
    let catalog = parse_project(dir.path(), &opts()).unwrap();
    let sql = test_sql(&catalog, "test.p.relationships_m_id__id__ref_e_outer_.");
    let want = format!(
        "with  __dbt__cte__e as (\nselect id from {RAW}\n),  __dbt__cte__e_outer as (\n\
         select id from __dbt__cte__e\n), child as ("
    );
    assert!(sql.trim_start().starts_with(&want), "{sql:?}");
    assert!(sql.contains("from __dbt__cte__e_outer\n"), "{sql:?}");
}

#[test]
fn engine_reinjects_test_ctes_when_the_ephemeral_changes() {
    let dir = project();
    let d = dir.path();
    let mut engine = Engine::new(opts());
    let check = |engine: &mut Engine, step: &str| {
        let got = serde_json::to_value(engine.parse(d).unwrap()).unwrap();
        let want = serde_json::to_value(parse_project(d, &opts()).unwrap()).unwrap();
        assert_eq!(got, want, "{step}");
    };
    check(&mut engine, "first parse");
    write(
        d,
        "models/e.sql",
        "{{ config(materialized='ephemeral') }}select id, 2 as x from {{ ref('raw') }}",
    );
    check(&mut engine, "ephemeral body");
    let catalog = engine.parse(d).unwrap();
    assert!(test_sql(catalog, "test.p.not_null_e_id.").contains("select id, 2 as x from"));
    write(
        d,
        "models/e_outer.sql",
        "{{ config(materialized='view') }}select id from {{ ref('e') }}",
    );
    check(&mut engine, "ephemeral becomes a view");
    let catalog = engine.parse(d).unwrap();
    let sql = test_sql(catalog, "test.p.relationships_m_id__id__ref_e_outer_.");
    assert!(!sql.contains("__dbt__cte__e_outer"), "{sql:?}");
    write(
        d,
        "models/e_outer.sql",
        "{{ config(materialized='ephemeral') }}select id from {{ ref('e') }}",
    );
    check(&mut engine, "a view becomes ephemeral");
}
