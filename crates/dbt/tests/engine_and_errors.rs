//! Incremental re-parse correctness and per-node error reporting on small generated projects.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

use backflow_dbt::{parse_project, Engine, ParseOptions, ProjectError};
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
        "name: p\nversion: '1'\nconfig-version: 2\nmodels:\n  p:\n    +materialized: table\n",
    );
    write(dir.path(), "models/a.sql", "select 1 as id");
    write(dir.path(), "models/b.sql", "select * from {{ ref('a') }}");
    write(
        dir.path(),
        "macros/m.sql",
        "{% macro twice(x) %}{{ x }} * 2{% endmacro %}",
    );
    dir
}

fn opts() -> ParseOptions {
    ParseOptions {
        target_schema: "s".into(),
        ..ParseOptions::default()
    }
}

#[test]
fn engine_picks_up_changes() {
    let dir = project();
    let mut engine = Engine::new(opts());
    let first = engine.parse(dir.path()).unwrap();
    assert_eq!(
        first.nodes["model.p.b"].compiled_code.as_deref(),
        Some("select * from \"warehouse\".\"s\".\"a\"")
    );
    // change a's alias: b must recompile against the new relation
    write(
        dir.path(),
        "models/a.sql",
        "{{ config(alias='a2') }}select {{ twice(1) }} as id, 'longer text' as t",
    );
    let second = engine.parse(dir.path()).unwrap();
    assert_eq!(
        second.nodes["model.p.b"].compiled_code.as_deref(),
        Some("select * from \"warehouse\".\"s\".\"a2\"")
    );
    assert_eq!(
        second.nodes["model.p.a"].compiled_code.as_deref(),
        Some("select 1 * 2 as id, 'longer text' as t")
    );
    assert_eq!(
        second.nodes["model.p.a"].depends_on.macros,
        vec!["macro.p.twice".to_string()]
    );
}

#[test]
fn broken_model_is_a_node_error_and_the_rest_loads() {
    let dir = project();
    write(
        dir.path(),
        "models/broken.sql",
        "select 1\nfrom {{ ref('a' }}\n",
    );
    let cat = parse_project(dir.path(), &opts()).unwrap();
    let broken = &cat.nodes["model.p.broken"];
    assert!(broken.compile_error.is_some());
    let err = cat
        .errors
        .iter()
        .find(|e| e.file == "models/broken.sql")
        .unwrap();
    assert_eq!(err.line, Some(2));
    assert!(cat.nodes["model.p.b"].compiled_code.is_some());
}

#[test]
fn broken_yaml_reports_file_and_line() {
    let dir = project();
    write(
        dir.path(),
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: a\n    columns: [\n",
    );
    let cat = parse_project(dir.path(), &opts()).unwrap();
    let err = cat
        .errors
        .iter()
        .find(|e| e.file == "models/schema.yml")
        .unwrap();
    assert!(err.line.unwrap_or(0) >= 4, "{err:?}");
    assert!(cat.nodes.contains_key("model.p.a"));
}

#[test]
fn broken_macro_reports_file_and_line() {
    let dir = project();
    write(
        dir.path(),
        "macros/bad.sql",
        "\n\n{% macro bad() %}{{ oops( }}{% endmacro %}",
    );
    let cat = parse_project(dir.path(), &opts()).unwrap();
    let err = cat
        .errors
        .iter()
        .find(|e| e.file == "macros/bad.sql")
        .unwrap();
    assert_eq!(err.line, Some(3));
    assert!(cat.nodes["model.p.b"].compiled_code.is_some());
}

#[test]
fn missing_ref_and_env_var_are_node_errors() {
    let dir = project();
    write(
        dir.path(),
        "models/c.sql",
        "select * from {{ ref('nope') }}",
    );
    write(
        dir.path(),
        "models/d.sql",
        "select '{{ env_var('BF_SURELY_UNSET_VAR') }}'",
    );
    let cat = parse_project(dir.path(), &opts()).unwrap();
    assert!(cat.nodes["model.p.c"]
        .compile_error
        .as_deref()
        .unwrap_or("")
        .contains("nope"));
    assert!(cat.nodes["model.p.d"]
        .compile_error
        .as_deref()
        .unwrap_or("")
        .contains("BF_SURELY_UNSET_VAR"));
}

#[test]
fn warehouse_dependent_model_is_marked() {
    let dir = project();
    write(
        dir.path(),
        "models/w.sql",
        "{% set rows = run_query('select 1') %}{% if execute %}select {{ rows.columns[0].values()[0] }}{% endif %}",
    );
    let cat = parse_project(dir.path(), &opts()).unwrap();
    let w = &cat.nodes["model.p.w"];
    assert!(
        w.needs_warehouse
            .as_deref()
            .unwrap_or("")
            .contains("run_query"),
        "{w:?}"
    );
}

#[test]
fn not_a_dbt_project_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        parse_project(dir.path(), &opts()),
        Err(ProjectError::NotADbtProject(_))
    ));
}

#[test]
fn package_path_escape_is_refused() {
    let dir = project();
    write(
        dir.path(),
        "dbt_project.yml",
        "name: p\nversion: '1'\nmodel-paths: ['../outside']\n",
    );
    let cat = parse_project(dir.path(), &opts()).unwrap();
    assert!(cat
        .errors
        .iter()
        .any(|e| e.message.contains("leaves the project checkout")));
}

#[test]
fn disabled_and_mutable_jinja() {
    let dir = project();
    write(
        dir.path(),
        "models/e.sql",
        "{{ config(enabled=false) }}select 1",
    );
    write(
        dir.path(),
        "models/f.sql",
        "{% set cols = [] %}{% do cols.append('a') %}{% set d = {} %}{% do d.update({'k': 'v'}) %}select {{ cols | join(',') }}, '{{ d['k'] }}', {{ none }}, {{ true }}",
    );
    let cat = parse_project(dir.path(), &opts()).unwrap();
    assert!(cat.disabled.iter().any(|d| d.unique_id == "model.p.e"));
    assert_eq!(
        cat.nodes["model.p.f"].compiled_code.as_deref(),
        Some("select a, 'v', None, True")
    );
}
