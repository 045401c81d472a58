//! Acceptance: parsing the semantics_lab fixture matches dbt-core 1.7.20's output
//! (`expected.json`) for every model, source, seed, snapshot and disabled node.

use backflow_dbt::{manifest_json, parse_project, ParseOptions};
use serde_json::{json, Value};
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dbt/semantics_lab")
}

fn options() -> ParseOptions {
    let mut opts = ParseOptions {
        target_schema: "analytics".into(),
        ..ParseOptions::default()
    };
    opts.vars.insert("cli_var".into(), json!("from_cli"));
    opts.vars.insert("threshold".into(), json!(99));
    opts.env.insert("SEMLAB_SET".into(), "set_value".into());
    opts
}

fn trim_code(v: &Value) -> Option<String> {
    v.as_str().map(|s| {
        s.split('\n')
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string()
    })
}

fn load() -> Option<(Value, Value)> {
    let dir = fixture();
    let text = std::fs::read_to_string(dir.join("expected.json")).ok()?;
    let expected: Value = serde_json::from_str(&text).ok()?;
    let catalog = parse_project(&dir, &options()).ok()?;
    Some((manifest_json(&catalog), expected))
}

fn model_diffs(node: &Value, e: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |what: &str, got: &Value, want: &Value| {
        if got != want {
            diffs.push(format!("{what}: got {got}, want {want}"));
        }
    };
    for key in [
        "database",
        "schema",
        "alias",
        "relation_name",
        "tags",
        "fqn",
        "meta",
        "original_file_path",
        "patch_path",
        "description",
        "version",
        "latest_version",
        "refs",
        "depends_on",
    ] {
        check(key, &node[key], &e[key]);
    }
    check("checksum", &node["checksum"]["checksum"], &e["checksum"]);
    check(
        "materialized",
        &node["config"]["materialized"],
        &e["materialized"],
    );
    check("sources", &node["sources"], &e["sources"]);
    for key in [
        "enabled",
        "schema",
        "database",
        "alias",
        "tags",
        "meta",
        "unique_key",
        "on_schema_change",
        "incremental_strategy",
        "full_refresh",
    ] {
        check(
            &format!("config.{key}"),
            &node["config"][key],
            &e["config"][key],
        );
    }
    let cols: Vec<Value> = node["columns"]
        .as_object()
        .map(|m| {
            m.values()
                .map(|c| json!({"name": c["name"], "description": c["description"], "data_type": c["data_type"], "meta": c["meta"], "tags": c["tags"]}))
                .collect()
        })
        .unwrap_or_default();
    check("columns", &Value::from(cols), &e["columns"]);
    let (got, want) = (
        trim_code(&node["compiled_code"]),
        trim_code(&e["compiled_code"]),
    );
    if got != want {
        diffs.push(format!("compiled_code: got {got:?}, want {want:?}"));
    }
    diffs
}

#[test]
fn every_model_matches_dbt() {
    let Some((manifest, expected)) = load() else {
        panic!("fixture or parse failed: {}", fixture().display());
    };
    let models = expected["models"].as_array().cloned().unwrap_or_default();
    assert_eq!(models.len(), 17);
    let mut failures = Vec::new();
    for e in &models {
        let id = e["unique_id"].as_str().unwrap_or_default();
        let node = &manifest["nodes"][id];
        if node.is_null() {
            failures.push(format!("{id}: missing"));
            continue;
        }
        for d in model_diffs(node, e) {
            failures.push(format!("{id}: {d}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(manifest["errors"], json!([]));
}

#[test]
fn every_source_matches_dbt() {
    let Some((manifest, expected)) = load() else {
        panic!("fixture or parse failed");
    };
    for e in expected["sources"].as_array().cloned().unwrap_or_default() {
        let id = e["unique_id"].as_str().unwrap_or_default();
        let s = &manifest["sources"][id];
        for key in [
            "package_name",
            "source_name",
            "name",
            "identifier",
            "database",
            "schema",
            "relation_name",
            "loader",
            "loaded_at_field",
            "tags",
            "meta",
            "original_file_path",
        ] {
            assert_eq!(s[key], e[key], "{id}.{key}");
        }
        let cols: Vec<&String> = s["columns"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(json!(cols), e["columns"], "{id}.columns");
    }
}

#[test]
fn seeds_snapshots_and_disabled_match_dbt() {
    let Some((manifest, expected)) = load() else {
        panic!("fixture or parse failed");
    };
    for e in expected["other_nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let id = e["unique_id"].as_str().unwrap_or_default();
        let n = &manifest["nodes"][id];
        for key in ["database", "schema", "alias", "relation_name", "checksum"] {
            assert_eq!(n[key], e[key], "{id}.{key}");
        }
        assert_eq!(n["depends_on"]["nodes"], e["depends_on"], "{id}.depends_on");
    }
    let mut want: Vec<&str> = expected["disabled"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d["unique_id"].as_str()).collect())
        .unwrap_or_default();
    want.sort();
    let got: Vec<&str> = manifest["disabled"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(got, want);
}

#[test]
fn generic_tests_have_dbt_unique_ids() {
    let Some((manifest, _)) = load() else {
        panic!("fixture or parse failed");
    };
    for id in [
        "test.semantics_lab.unique_stg_orders_order_id.e3b841c71a",
        "test.semantics_lab.not_null_stg_orders_order_id.81cfe2fe64",
        "test.semantics_lab.accepted_values_stg_orders_status__placed__shipped__returned.b52273e597",
    ] {
        assert!(manifest["nodes"][id].is_object(), "missing {id}");
    }
}
