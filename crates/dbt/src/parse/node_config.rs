//! A node's config by dbt's precedence (project trees, YAML patch, `config()` calls; see
//! `config`) and the `model` dict the Jinja context exposes for it.

use crate::parse::config::{self, ConfigSources};
use crate::parse::{version_key, ParsedNode, Workspace};
use serde_json::{json, Map, Value};

/// Config tree key for a resource type.
fn tree_key(resource_type: &str) -> &'static str {
    match resource_type {
        "seed" => "seeds",
        "snapshot" => "snapshots",
        "test" => "tests",
        _ => "models",
    }
}

fn default_materialized(resource_type: &str) -> &'static str {
    match resource_type {
        "seed" => "seed",
        "snapshot" => "snapshot",
        _ => "view",
    }
}

/// The node's config from project trees, YAML patch and (optionally) SQL `config()` calls.
pub fn node_config(
    ws: &Workspace,
    node: &ParsedNode,
    sql_calls: &[Map<String, Value>],
    include_patch: bool,
) -> Map<String, Value> {
    let key = tree_key(node.resource_type);
    let own = ws.projects.get(node.project_idx);
    let root = ws.projects.first();
    let own_tree = own.and_then(|p| p.trees.get(key)).unwrap_or(&Value::Null);
    let root_tree = if node.project_idx != 0 {
        root.and_then(|p| p.trees.get(key))
    } else {
        None
    };
    let mut patch = Map::new();
    if include_patch {
        if let Some(p) = &node.patch {
            patch = p.config.clone();
            // a property file's top-level `meta:` lands in config.meta too (under its `config:` meta)
            if !p.meta.is_empty() {
                let mut meta = p.meta.clone();
                if let Some(Value::Object(m)) = patch.get("meta") {
                    meta.extend(m.clone());
                }
                patch.insert("meta".into(), Value::Object(meta));
            }
        }
        config::merge_into(&mut patch, &node.version_config);
    }
    let defaults = if node.resource_type == "test" {
        config::test_defaults()
    } else {
        config::model_defaults(default_materialized(node.resource_type))
    };
    // a singular test's severity stays as written (dbt upper-cases only the YAML severity of
    // its own not_null / unique tests)
    config::calculate(
        defaults,
        &ConfigSources {
            own_tree,
            root_tree,
            fqn: &node.fqn,
            patch: Some(&patch),
            sql_calls,
        },
    )
}

/// The `model` dict the Jinja context exposes for a node.
pub fn model_dict(node: &ParsedNode, config: &Map<String, Value>) -> Value {
    json!({
        "name": node.name,
        "unique_id": node.unique_id,
        "package_name": node.package,
        "resource_type": node.resource_type,
        "original_file_path": node.file.original_file_path,
        "path": node.file.path,
        "fqn": node.fqn,
        "version": node.version.as_ref().map(version_key),
        "latest_version": node.latest_version.as_ref().map(version_key),
        "config": config,
        "tags": config.get("tags").cloned().unwrap_or(json!([])),
        "raw_code": node.raw_code,
        "language": "sql",
        "database": node.database,
        "schema": node.schema,
        "alias": node.alias,
    })
}
