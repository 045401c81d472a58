//! The incremental `Engine` must produce exactly what a fresh `parse_project` produces after
//! every kind of edit: model bodies, a ref target's alias, ephemeral chains, added and removed
//! models, macros, property files, project files, and same-size edits within one mtime tick;
//! and macro, seed and snapshot edits must take the in-place path (re-rendering only what
//! depends on them) and still equal a fresh parse.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

use backflow_dbt::{parse_project, Engine, ParseOptions, ParsePath};
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

/// A project with a macro chain behind `adapter.dispatch`, a macro only `config()` calls, a
/// custom generic test calling a helper macro, a seed and a snapshot with their dependents.
fn deep_project() -> tempfile::TempDir {
    let dir = project();
    let d = dir.path();
    write(
        d,
        "macros/keys.sql",
        "{% macro surrogate(cols) %}{{ return(adapter.dispatch('surrogate', 'p')(cols)) }}{% endmacro %}
{% macro default__surrogate(cols) %}md5({{ joined(cols) }}){% endmacro %}
{% macro joined(cols) %}{{ cols | join(\" || '-' || \") }}{% endmacro %}
{% macro unused() %}1{% endmacro %}
",
    );
    write(
        d,
        "macros/cfg.sql",
        "{% macro pick_tag() %}{{ return('daily') }}{% endmacro %}",
    );
    write(
        d,
        "macros/tests.sql",
        "{% test positive(model, column_name) %}select * from {{ model }} where {{ column_name }} {{ op() }} 0{% endtest %}
{% macro op() %}<{% endmacro %}
",
    );
    write(
        d,
        "models/keyed.sql",
        "{{ config(tags=[pick_tag()]) }}select {{ surrogate(['a', 'b']) }} as k, * from {{ ref('codes') }}",
    );
    write(d, "models/plain.sql", "select 1 as id");
    write(d, "models/snapped.sql", "select * from {{ ref('snap') }}");
    write(
        d,
        "models/more.yml",
        "version: 2\nmodels:\n  - name: plain\n    columns:\n      - name: id\n        tests: [positive]\n",
    );
    write(d, "seeds/codes.csv", "code,label\n1,one\n2,two\n");
    write(
        d,
        "snapshots/snap.sql",
        "{% snapshot snap %}{{ config(target_schema='snaps', unique_key='id', strategy='check', check_cols=['id']) }}select * from {{ ref('plain') }}{% endsnapshot %}",
    );
    dir
}

fn assert_in_place(engine: &mut Engine, dir: &Path, step: &str) {
    assert_same(engine, dir, step);
    assert_eq!(
        engine.last_path(),
        Some(ParsePath::InPlace),
        "{step}: expected the in-place path"
    );
}

#[test]
fn macro_seed_and_snapshot_edits_update_in_place_and_equal_a_fresh_parse() {
    let dir = deep_project();
    let d = dir.path();
    let mut engine = Engine::new(opts());
    assert_same(&mut engine, d, "first parse");
    assert_eq!(engine.last_path(), Some(ParsePath::Rebuilt));

    // the end of a dispatch chain: surrogate -> default__surrogate -> joined
    write(
        d,
        "macros/keys.sql",
        "{% macro surrogate(cols) %}{{ return(adapter.dispatch('surrogate', 'p')(cols)) }}{% endmacro %}
{% macro default__surrogate(cols) %}md5({{ joined(cols) }}){% endmacro %}
{% macro joined(cols) %}{{ cols | join(\" || '|' || \") }}{% endmacro %}
{% macro unused() %}1{% endmacro %}
",
    );
    assert_in_place(&mut engine, d, "macro at the end of a dispatch chain");
    let keyed = &engine.catalog().unwrap().nodes["model.p.keyed"];
    assert!(
        keyed
            .compiled_code
            .as_deref()
            .unwrap_or_default()
            .contains("'|'"),
        "{keyed:?}"
    );

    // a line added above the chain shifts every macro's line
    write(
        d,
        "macros/keys.sql",
        "-- keys
{% macro surrogate(cols) %}{{ return(adapter.dispatch('surrogate', 'p')(cols)) }}{% endmacro %}
{% macro default__surrogate(cols) %}md5({{ joined(cols) }}){% endmacro %}
{% macro joined(cols) %}{{ cols | join(\" || '|' || \") }}{% endmacro %}
{% macro unused() %}2{% endmacro %}
",
    );
    assert_in_place(&mut engine, d, "macro lines shift");

    // a macro only config() calls: tags change
    write(
        d,
        "macros/cfg.sql",
        "{% macro pick_tag() %}{{ return('hourly') }}{% endmacro %}",
    );
    assert_in_place(&mut engine, d, "macro called from config()");
    assert_eq!(
        engine.catalog().unwrap().nodes["model.p.keyed"].tags,
        vec!["hourly".to_string()]
    );

    // a helper of a generic test
    write(
        d,
        "macros/tests.sql",
        "{% test positive(model, column_name) %}select * from {{ model }} where {{ column_name }} {{ op() }} 0{% endtest %}
{% macro op() %}<={% endmacro %}
",
    );
    assert_in_place(&mut engine, d, "macro called by a generic test");

    // a macro that no longer compiles, then fixed
    write(
        d,
        "macros/keys.sql",
        "{% macro surrogate(cols) %}{{ return(adapter.dispatch('surrogate', 'p')(cols)) }}{% endmacro %}
{% macro default__surrogate(cols) %}md5({{ joined(cols }}){% endmacro %}
{% macro joined(cols) %}{{ cols | join(\" || '|' || \") }}{% endmacro %}
{% macro unused() %}1{% endmacro %}
",
    );
    assert_in_place(&mut engine, d, "broken macro");
    assert!(!engine.catalog().unwrap().errors.is_empty());
    write(
        d,
        "macros/keys.sql",
        "{% macro surrogate(cols) %}{{ return(adapter.dispatch('surrogate', 'p')(cols)) }}{% endmacro %}
{% macro default__surrogate(cols) %}md5({{ joined(cols) }}){% endmacro %}
{% macro joined(cols) %}{{ cols | join(\" || '-' || \") }}{% endmacro %}
{% macro unused() %}1{% endmacro %}
",
    );
    assert_in_place(&mut engine, d, "macro fixed");

    // a macro nothing calls
    write(
        d,
        "macros/m.sql",
        "{% macro twice(x) %}{{ x }} * 2{% endmacro %}{% macro spare() %}0{% endmacro %}",
    );
    assert_same(&mut engine, d, "macro added to a file (full rebuild)");
    write(
        d,
        "macros/m.sql",
        "{% macro twice(x) %}{{ x }} * 2{% endmacro %}{% macro spare() %}00{% endmacro %}",
    );
    assert_in_place(&mut engine, d, "uncalled macro");

    // seeds and snapshots
    write(d, "seeds/codes.csv", "code,label\n1,one\n2,two\n3,three\n");
    assert_in_place(&mut engine, d, "seed contents");
    write(
        d,
        "snapshots/snap.sql",
        "{% snapshot snap %}{{ config(target_schema='snaps', unique_key='id', strategy='check', check_cols=['id']) }}select id, 2 as v from {{ ref('plain') }}{% endsnapshot %}",
    );
    assert_in_place(&mut engine, d, "snapshot body");
    write(
        d,
        "snapshots/snap.sql",
        "{% snapshot snap %}{{ config(target_schema='snaps_v2', unique_key='id', strategy='check', check_cols=['id']) }}select id, 2 as v from {{ ref('plain') }}{% endsnapshot %}",
    );
    assert_in_place(
        &mut engine,
        d,
        "snapshot target schema (its dependents recompile)",
    );
    assert!(engine.catalog().unwrap().nodes["model.p.snapped"]
        .compiled_code
        .as_deref()
        .unwrap_or_default()
        .contains("snaps_v2"));

    // a structural change after in-place macro updates reuses the updated workspace
    write(d, "models/extra.sql", "select {{ surrogate(['x']) }} as k");
    assert_same(&mut engine, d, "model added after macro edits");
    write(
        d,
        "macros/keys.sql",
        "{% macro surrogate(cols) %}{{ return(adapter.dispatch('surrogate', 'p')(cols)) }}{% endmacro %}
{% macro default__surrogate(cols) %}sha({{ joined(cols) }}){% endmacro %}
{% macro joined(cols) %}{{ cols | join(\" || '-' || \") }}{% endmacro %}
{% macro unused() %}1{% endmacro %}
",
    );
    assert_in_place(&mut engine, d, "macro edit after a structural change");
}

#[test]
fn macro_edits_fall_back_when_naming_or_disabled_nodes_call_macros() {
    let dir = deep_project();
    let d = dir.path();
    write(
        d,
        "macros/naming.sql",
        "{% macro generate_schema_name(custom, node) %}{{ target.schema }}{{ suffix() }}{% endmacro %}
{% macro suffix() %}_x{% endmacro %}",
    );
    let mut engine = Engine::new(opts());
    assert_same(&mut engine, d, "first parse");
    write(
        d,
        "macros/naming.sql",
        "{% macro generate_schema_name(custom, node) %}{{ target.schema }}{{ suffix() }}{% endmacro %}
{% macro suffix() %}_y{% endmacro %}",
    );
    assert_same(&mut engine, d, "macro behind generate_schema_name");
    assert_eq!(engine.last_path(), Some(ParsePath::Rebuilt));

    fs::remove_file(d.join("macros/naming.sql")).unwrap();
    write(
        d,
        "models/off.sql",
        "{{ config(enabled=pick_tag() == 'on') }}select 1 as id",
    );
    assert_same(&mut engine, d, "disabled by a macro");
    write(
        d,
        "macros/cfg.sql",
        "{% macro pick_tag() %}{{ return('on') }}{% endmacro %}",
    );
    assert_same(&mut engine, d, "macro enables a node");
    assert!(engine.catalog().unwrap().nodes.contains_key("model.p.off"));
}

/// `parse_changed` after each edit, told the edited paths (as git-sync is, from a diff).
fn assert_same_changed(engine: &mut Engine, dir: &Path, changed: &[&str], step: &str) {
    let got = serde_json::to_value(engine.parse_changed(dir, changed).unwrap()).unwrap();
    let want = serde_json::to_value(parse_project(dir, &opts()).unwrap()).unwrap();
    assert_eq!(got, want, "{step}: catalog differs");
}

#[test]
fn parse_changed_equals_a_fresh_parse_after_each_edit() {
    let dir = project();
    let d = dir.path();
    let mut engine = Engine::new(opts());
    // no previous parse: a full one
    assert_same_changed(&mut engine, d, &["models/orders.sql"], "first parse");
    assert_eq!(engine.last_path(), Some(ParsePath::Rebuilt));
    assert_same_changed(&mut engine, d, &[], "nothing changed");

    write(
        d,
        "models/orders.sql",
        "select {{ twice('id') }} as id from {{ ref('e2') }} -- 1",
    );
    assert_same_changed(&mut engine, d, &["models/orders.sql"], "model body");
    assert_eq!(engine.last_path(), Some(ParsePath::InPlace), "model body");

    write(
        d,
        "macros/m.sql",
        "{% macro twice(x) %}({{ x }} * 2){% endmacro %}",
    );
    write(d, "README.md", "not part of the project");
    assert_same_changed(
        &mut engine,
        d,
        &["macros/m.sql", "README.md", "ci/x.yml"],
        "macro",
    );
    assert_eq!(engine.last_path(), Some(ParsePath::InPlace), "macro");

    write(
        d,
        "models/raw.sql",
        "{{ config(alias='raw_v2') }}select 1 as id",
    );
    assert_same_changed(&mut engine, d, &["models/raw.sql"], "ref target alias");

    write(d, "models/extra.sql", "select * from {{ ref('raw') }}");
    assert_same_changed(&mut engine, d, &["models/extra.sql"], "added model");
    assert_eq!(engine.last_path(), Some(ParsePath::Rebuilt), "added model");
    fs::remove_file(d.join("models/extra.sql")).unwrap();
    assert_same_changed(&mut engine, d, &["models/extra.sql"], "deleted model");

    write(
        d,
        "models/schema.yml",
        &SCHEMA_YML.replace("unique, not_null", "unique"),
    );
    assert_same_changed(&mut engine, d, &["models/schema.yml"], "schema.yml");

    write(
        d,
        "dbt_project.yml",
        "name: p\nversion: '1'\nconfig-version: 2\nmodels:\n  p:\n    +materialized: view\n",
    );
    assert_same_changed(&mut engine, d, &["dbt_project.yml"], "dbt_project.yml");
    assert_same_changed(
        &mut engine,
        d,
        &["../outside.sql", "/etc/passwd"],
        "paths outside",
    );
}

#[test]
fn parse_changed_reads_only_the_named_files() {
    let dir = project();
    let d = dir.path();
    let mut engine = Engine::new(opts());
    engine.parse(d).unwrap();
    write(d, "models/raw.sql", "select 2 as id");
    write(
        d,
        "models/orders.sql",
        "select {{ twice('id') }} as id from {{ ref('e2') }} -- 2",
    );
    let catalog = engine.parse_changed(d, &["models/orders.sql"]).unwrap();
    let raw = &catalog.nodes["model.p.raw"];
    assert_eq!(
        raw.raw_code, "select 1 as id",
        "an unnamed file is not read"
    );
    assert!(catalog.nodes["model.p.orders"].raw_code.ends_with("-- 2"));
    // a full parse sees both
    let catalog = engine.parse(d).unwrap();
    assert_eq!(catalog.nodes["model.p.raw"].raw_code, "select 2 as id");
}
