//! Config precedence, as dbt 1.7's ContextConfig computes it: the node's own project config by
//! fqn depth, then YAML `config:` patches, then `config()` calls in SQL, then (for package nodes)
//! the root project's config on top. Merge rules follow dbt's MergeBehavior per key.

use serde_json::{Map, Value};

/// The config dicts that apply at each fqn level of a project config tree, root first.
/// Keys starting with `+` are configs; non-dict values are configs; dicts are sub-paths.
pub fn fqn_levels(tree: &Value, fqn: &[String]) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    let Value::Object(root) = tree else {
        return out;
    };
    let mut current: &Map<String, Value> = root;
    out.push(level_config(current));
    for part in fqn {
        match current.get(part) {
            Some(Value::Object(next)) => {
                out.push(level_config(next));
                current = next;
            }
            _ => break,
        }
    }
    out
}

fn level_config(level: &Map<String, Value>) -> Map<String, Value> {
    let mut result = Map::new();
    for (key, value) in level {
        if let Some(stripped) = key.strip_prefix('+') {
            result.insert(normalize_key(stripped.trim()), value.clone());
        } else if !value.is_object() {
            result.insert(normalize_key(key), value.clone());
        }
    }
    result
}

/// dbt spells hooks with dashes in stored config.
pub fn normalize_key(key: &str) -> String {
    match key {
        "pre_hook" => "pre-hook".into(),
        "post_hook" => "post-hook".into(),
        other => other.to_string(),
    }
}

enum Merge {
    Clobber,
    Append,
    Update,
    DictKeyAppend,
}

fn merge_behavior(key: &str) -> Merge {
    match key {
        "tags" | "pre-hook" | "post-hook" => Merge::Append,
        "meta" | "persist_docs" | "quoting" | "column_types" | "docs" | "contract" => Merge::Update,
        "grants" => Merge::DictKeyAppend,
        _ => Merge::Clobber,
    }
}

fn listify(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Applies `partial` on top of `result` with dbt's per-key merge behavior.
pub fn merge_into(result: &mut Map<String, Value>, partial: &Map<String, Value>) {
    for (raw_key, value) in partial {
        let key = normalize_key(raw_key);
        let merged = match (merge_behavior(&key), result.get(&key)) {
            (Merge::Append, Some(old)) => {
                let mut items = listify(old);
                items.extend(listify(value));
                Value::Array(items)
            }
            (Merge::Append, None) => Value::Array(listify(value)),
            (Merge::Update, Some(Value::Object(old))) => match value {
                Value::Object(new) => {
                    let mut m = old.clone();
                    for (k, v) in new {
                        m.insert(k.clone(), v.clone());
                    }
                    Value::Object(m)
                }
                other => other.clone(),
            },
            (Merge::DictKeyAppend, Some(Value::Object(old))) => dict_key_append(old, value),
            _ => value.clone(),
        };
        result.insert(key, merged);
    }
}

fn dict_key_append(old: &Map<String, Value>, new: &Value) -> Value {
    let Value::Object(new) = new else {
        return new.clone();
    };
    let mut m = old.clone();
    for (k, v) in new {
        if let Some(rest) = k.strip_prefix('+') {
            let mut items = m.get(rest).map(listify).unwrap_or_default();
            items.extend(listify(v));
            m.insert(rest.to_string(), Value::Array(items));
        } else {
            m.insert(k.clone(), v.clone());
        }
    }
    Value::Object(m)
}

/// The inputs of one node's config calculation.
pub struct ConfigSources<'a> {
    /// config tree of the node's own project for its resource type
    pub own_tree: &'a Value,
    /// the root project's tree, when the node comes from a package
    pub root_tree: Option<&'a Value>,
    pub fqn: &'a [String],
    pub patch: Option<&'a Map<String, Value>>,
    pub sql_calls: &'a [Map<String, Value>],
}

/// Computes the final config dict for a node, starting from `base` defaults.
pub fn calculate(base: Map<String, Value>, src: &ConfigSources<'_>) -> Map<String, Value> {
    let mut result = base;
    for level in fqn_levels(src.own_tree, src.fqn) {
        merge_into(&mut result, &level);
    }
    if let Some(patch) = src.patch {
        merge_into(&mut result, patch);
    }
    for call in src.sql_calls {
        merge_into(&mut result, call);
    }
    if let Some(root) = src.root_tree {
        for level in fqn_levels(root, src.fqn) {
            merge_into(&mut result, &level);
        }
    }
    result
}

/// dbt's default model config (NodeConfig defaults) in dbt's key order.
pub fn model_defaults(materialized: &str) -> Map<String, Value> {
    let v = serde_json::json!({
        "enabled": true,
        "alias": null,
        "schema": null,
        "database": null,
        "tags": [],
        "meta": {},
        "group": null,
        "materialized": materialized,
        "incremental_strategy": null,
        "persist_docs": {},
        "post-hook": [],
        "pre-hook": [],
        "quoting": {},
        "column_types": {},
        "full_refresh": null,
        "unique_key": null,
        "on_schema_change": "ignore",
        "on_configuration_change": "apply",
        "grants": {},
        "packages": [],
        "docs": {"show": true, "node_color": null},
        "contract": {"enforced": false, "alias_types": true},
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// dbt's default config of a data test.
pub fn test_defaults() -> Map<String, Value> {
    let v = serde_json::json!({
        "enabled": true, "alias": null, "schema": "dbt_test__audit", "database": null,
        "tags": [], "meta": {}, "group": null, "materialized": "test", "severity": "ERROR",
        "store_failures": null, "store_failures_as": null, "where": null, "limit": null,
        "fail_calc": "count(*)", "warn_if": "!= 0", "error_if": "!= 0"
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fqn(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn deeper_paths_win_and_tags_append() {
        let tree = json!({
            "+tags": ["all"],
            "proj": {
                "+materialized": "view",
                "marts": {"+materialized": "table", "+tags": "marts", "schema": "plain"},
            }
        });
        let f = fqn(&["proj", "marts", "m"]);
        let cfg = calculate(
            Map::new(),
            &ConfigSources {
                own_tree: &tree,
                root_tree: None,
                fqn: &f,
                patch: None,
                sql_calls: &[],
            },
        );
        assert_eq!(cfg["materialized"], json!("table"));
        assert_eq!(cfg["tags"], json!(["all", "marts"]));
        assert_eq!(cfg["schema"], json!("plain"));
    }

    #[test]
    fn sql_config_beats_yaml_patch_and_root_beats_package() {
        let pkg_tree = json!({"pkg": {"+schema": "pkg_schema"}});
        let root_tree = json!({"pkg": {"+schema": "from_root", "m": {"+materialized": "table"}}});
        let f = fqn(&["pkg", "m"]);
        let patch = json!({"materialized": "incremental", "meta": {"a": 1}});
        let call = json!({"materialized": "view", "meta": {"b": 2}});
        let cfg = calculate(
            Map::new(),
            &ConfigSources {
                own_tree: &pkg_tree,
                root_tree: Some(&root_tree),
                fqn: &f,
                patch: patch.as_object(),
                sql_calls: &[call.as_object().cloned().unwrap_or_default()],
            },
        );
        assert_eq!(cfg["schema"], json!("from_root"));
        assert_eq!(cfg["materialized"], json!("table"));
        assert_eq!(cfg["meta"], json!({"a": 1, "b": 2}));
    }

    #[test]
    fn grants_append_with_plus_keys() {
        let mut base = Map::new();
        merge_into(
            &mut base,
            json!({"grants": {"select": ["a"]}}).as_object().unwrap(),
        );
        merge_into(
            &mut base,
            json!({"grants": {"+select": ["b"]}}).as_object().unwrap(),
        );
        assert_eq!(base["grants"], json!({"select": ["a", "b"]}));
    }
}
