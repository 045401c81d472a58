//! The incremental `Engine` must produce exactly what a fresh `parse_project` produces after
//! every kind of edit: model bodies, a ref target's alias, ephemeral chains, added and removed
//! models, macros, property files, project files, and same-size edits within one mtime tick.

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
  - name: raw
    columns:
      - name: id
        tests: [not_null]
  - name: orders
    description: '{{ doc(\"orders_doc\") }}'
    columns:
      - name: id
        tests: [unique, not_null]
  - name: customers
    columns:
      - name: id
        tests:
          - relationships:
              to: ref('orders')
              field: id
";

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "dbt_project.yml",
        "name: p\nversion: '1'\nconfig-version: 2\nmodels:\n  p:\n    +materialized: table\n    eph:\n      +materialized: ephemeral\n",
    );
    write(d, "models/raw.sql", "select 1 as id");
    write(d, "models/eph/e1.sql", "select * from {{ ref('raw') }}");
    write(d, "models/eph/e2.sql", "select id from {{ ref('e1') }}");
    write(
        d,
        "models/orders.sql",
        "select {{ twice('id') }} as id from {{ ref('e2') }}",
    );
    write(
        d,
        "models/customers.sql",
        "select * from {{ ref('orders') }} join {{ ref('raw') }} using (id)",
    );
    write(d, "models/schema.yml", SCHEMA_YML);
    write(
        d,
        "models/docs.md",
        "{% docs orders_doc %}All orders.{% enddocs %}",
    );
    write(
        d,
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

fn assert_same(engine: &mut Engine, dir: &Path, step: &str) {
    let got = serde_json::to_value(engine.parse(dir).unwrap()).unwrap();
    let want = serde_json::to_value(parse_project(dir, &opts()).unwrap()).unwrap();
    if got != want {
        let (g, w) = (
            got["nodes"].as_object().unwrap(),
            want["nodes"].as_object().unwrap(),
        );
        for (id, node) in w {
            assert_eq!(g.get(id), Some(node), "{step}: node {id} differs");
        }
        assert_eq!(got, want, "{step}: catalog differs");
    }
}

#[test]
fn engine_output_equals_a_fresh_parse_after_each_edit() {
    let dir = project();
    let d = dir.path();
    let mut engine = Engine::new(opts());
    assert_same(&mut engine, d, "first parse");
    assert_same(&mut engine, d, "no change");

    write(
        d,
        "models/orders.sql",
        "select {{ twice('id') }} as id from {{ ref('e2') }} -- edited",
    );
    assert_same(&mut engine, d, "model body");
    // same size, written right after the previous parse (same mtime tick possible)
    write(
        d,
        "models/orders.sql",
        "select {{ twice('id') }} as id from {{ ref('e2') }} -- EDITED",
    );
    assert_same(&mut engine, d, "same-size edit");

    write(
        d,
        "models/raw.sql",
        "{{ config(alias='raw_v2') }}select 1 as id",
    );
    assert_same(&mut engine, d, "ref target alias");
    write(
        d,
        "models/raw.sql",
        "{{ config(schema='other') }}select 2 as id",
    );
    assert_same(&mut engine, d, "ref target schema");

    write(
        d,
        "models/eph/e1.sql",
        "select id, 1 as x from {{ ref('raw') }}",
    );
    assert_same(&mut engine, d, "ephemeral body");
    write(
        d,
        "models/eph/e2.sql",
        "{{ config(materialized='view') }}select id from {{ ref('e1') }}",
    );
    assert_same(&mut engine, d, "ephemeral becomes a view");

    write(d, "models/broken.sql", "select {{ ref('nope') }}");
    assert_same(&mut engine, d, "add a broken model");
    write(d, "models/broken.sql", "select {{ oops( }}");
    assert_same(&mut engine, d, "broken model syntax");
    fs::remove_file(d.join("models/broken.sql")).unwrap();
    assert_same(&mut engine, d, "remove a model");

    write(
        d,
        "models/customers.sql",
        "{{ config(enabled=false) }}select 1 as id",
    );
    assert_same(&mut engine, d, "disable a model");
    write(
        d,
        "models/customers.sql",
        "select * from {{ ref('orders') }}",
    );
    assert_same(&mut engine, d, "re-enable a model");

    write(
        d,
        "macros/m.sql",
        "{% macro twice(x) %}({{ x }} + {{ x }}){% endmacro %}",
    );
    assert_same(&mut engine, d, "macro");

    write(
        d,
        "models/schema.yml",
        &SCHEMA_YML.replace("unique, not_null", "not_null"),
    );
    assert_same(&mut engine, d, "schema.yml");

    write(
        d,
        "models/docs.md",
        "{% docs orders_doc %}Every order.{% enddocs %}",
    );
    assert_same(&mut engine, d, "docs");

    write(
        d,
        "dbt_project.yml",
        "name: p\nversion: '1'\nconfig-version: 2\nmodels:\n  p:\n    +materialized: view\n    eph:\n      +materialized: ephemeral\n",
    );
    assert_same(&mut engine, d, "dbt_project.yml");
}

#[test]
fn graph_readers_follow_edits_of_other_models() {
    let dir = project();
    let d = dir.path();
    write(
        d,
        "models/inventory.sql",
        "select {% for n in graph.nodes.values() | sort(attribute='unique_id') %}'{{ n.name }}:{{ n.config.materialized }}' as c{{ loop.index }}{{ ',' if not loop.last }} {% endfor %}",
    );
    let mut engine = Engine::new(opts());
    assert_same(&mut engine, d, "first parse");
    write(
        d,
        "models/raw.sql",
        "{{ config(materialized='view') }}select 1 as id",
    );
    assert_same(&mut engine, d, "materialization of a graph member");
    let inventory = &engine.parse(d).unwrap().nodes["model.p.inventory"];
    assert!(
        inventory
            .compiled_code
            .as_deref()
            .unwrap_or_default()
            .contains("'raw:view'"),
        "{inventory:?}"
    );
}

#[test]
fn engine_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
}
