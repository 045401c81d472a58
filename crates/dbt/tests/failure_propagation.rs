//! What dbt reports downstream of a node that fails to compile (issue 8, class 10), and a
//! project config value that fails to render (class 6): fresh parses and incremental edits.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

use backflow_dbt::catalog::CompileStatus;
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

const BROKEN_EPH: &str = "{{ config(materialized='ephemeral') }}\nselect 1 as id{% if execute %}, {{ exceptions.raise_compiler_error('no') }}{% endif %}";
const FINE_EPH: &str = "{{ config(materialized='ephemeral') }}\nselect 1 as id";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "dbt_project.yml",
        "name: p\nversion: '1'\nconfig-version: 2\n",
    );
    write(d, "models/eph.sql", BROKEN_EPH);
    write(d, "models/uses_eph.sql", "select * from {{ ref('eph') }}");
    write(d, "models/below.sql", "select * from {{ ref('uses_eph') }}");
    write(
        d,
        "models/table_broken.sql",
        "select {% if execute %}{{ nope() }}{% endif %}1 as id",
    );
    write(
        d,
        "models/after_table.sql",
        "select * from {{ ref('table_broken') }}",
    );
    write(d, "models/fine.sql", "select 2 as id");
    write(
        d,
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: uses_eph\n    columns:\n      - name: id\n        tests: [not_null]\n",
    );
    dir
}

fn opts() -> ParseOptions {
    ParseOptions {
        target_schema: "s".into(),
        ..ParseOptions::default()
    }
}

const REASON: &str = "Compilation Error in model.p.uses_eph, caused by compilation error in referenced ephemeral model model.p.eph";

#[test]
fn descendants_of_a_failed_node_are_skipped_as_dbt_reports_them() {
    let dir = project();
    let cat = parse_project(dir.path(), &opts()).unwrap();
    let n = |id: &str| &cat.nodes[id];
    assert_eq!(n("model.p.eph").compile_status, CompileStatus::Error);
    // downstream of a failed ephemeral: skipped with dbt's reason, no SQL without the CTE
    let uses = n("model.p.uses_eph");
    assert_eq!(uses.compile_status, CompileStatus::Skipped);
    assert_eq!(uses.compile_error.as_deref(), Some(REASON));
    assert_eq!(uses.compiled_code, None);
    assert!(cat.errors.iter().any(|e| e.message == REASON));
    assert_eq!(n("model.p.below").compile_status, CompileStatus::Skipped);
    let test = cat
        .nodes
        .values()
        .find(|t| t.name == "not_null_uses_eph_id")
        .unwrap();
    assert_eq!(test.compile_status, CompileStatus::Skipped);
    assert_eq!(
        test.depends_on.macros,
        vec!["macro.dbt.test_not_null".to_string()]
    );
    // downstream of a failed table: skipped without a reason; refs stay in depends_on
    let after = n("model.p.after_table");
    assert_eq!(after.compile_status, CompileStatus::Skipped);
    assert_eq!(after.compile_error, None);
    assert_eq!(
        after.depends_on.nodes,
        vec!["model.p.table_broken".to_string()]
    );
    assert_eq!(n("model.p.fine").compile_status, CompileStatus::Success);
}

#[test]
fn incremental_edits_follow_the_failure_and_its_fix() {
    let dir = project();
    let d = dir.path();
    let mut engine = Engine::new(opts());
    let same = |engine: &mut Engine, step: &str| {
        let got = serde_json::to_value(engine.parse(d).unwrap()).unwrap();
        let want = serde_json::to_value(parse_project(d, &opts()).unwrap()).unwrap();
        assert_eq!(got, want, "{step}: engine differs from a fresh parse");
        got
    };
    same(&mut engine, "first parse");
    write(d, "models/eph.sql", FINE_EPH);
    let fixed = same(&mut engine, "ephemeral fixed");
    assert_eq!(
        fixed["nodes"]["model.p.uses_eph"]["compile_status"],
        "success"
    );
    write(d, "models/uses_eph.sql", "select id from {{ ref('eph') }}");
    same(&mut engine, "downstream edited");
    write(d, "models/eph.sql", BROKEN_EPH);
    let broken = same(&mut engine, "ephemeral broken again");
    assert_eq!(
        broken["nodes"]["model.p.uses_eph"]["compile_status"],
        "skipped"
    );
}

#[test]
fn a_project_config_value_that_fails_to_render_is_a_node_error_not_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "dbt_project.yml",
        "name: p\nversion: '1'\nconfig-version: 2\nmodels:\n  p:\n    marts:\n      +schema: \"{{ modules.datetime.nope(1) }}\"\n",
    );
    write(d, "models/marts/m.sql", "select 1 as id");
    write(d, "models/other.sql", "select 1 as id");
    let cat = parse_project(d, &opts()).unwrap();
    let m = &cat.nodes["model.p.m"];
    assert_eq!(m.compile_status, CompileStatus::Error);
    assert!(m
        .compile_error
        .as_deref()
        .unwrap()
        .contains("could not render `+schema`"));
    assert!(
        !m.schema.contains("{{"),
        "raw Jinja used as a schema: {}",
        m.schema
    );
    assert!(!m.relation_name.clone().unwrap_or_default().contains("{{"));
    assert!(!m.config.contains_key("__bf_render_error"));
    assert_eq!(
        cat.nodes["model.p.other"].compile_status,
        CompileStatus::Success
    );
}
