//! One YAML test entry as dbt reads it: the test's name, namespace, arguments and config
//! (severity, where, tags given as arguments, ...), and the name and hash dbt 1.7 gives the
//! node (`synthesize_generic_test_names`, the md5 of its hashable metadata).

use crate::jinja::pyfuncs::local_md5;
use serde_json::{Map, Value};

/// One parsed test entry.
#[derive(Debug, Clone)]
pub(super) struct TestSpec {
    pub(super) name: String,
    /// an explicit `name:` argument, used instead of the synthesized name
    pub(super) custom_name: Option<String>,
    /// `tags:` given as a test argument
    pub(super) arg_tags: Vec<String>,
    pub(super) namespace: Option<String>,
    pub(super) args: Map<String, Value>,
    pub(super) config: Map<String, Value>,
    /// `severity` as written (argument or `config:`), before upper-casing
    pub(super) raw_severity: Option<Value>,
}

pub(super) fn parse_entry(entry: &Value) -> Option<TestSpec> {
    let (full, raw_args) = match entry {
        Value::String(s) => (s.clone(), Map::new()),
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            (k.clone(), v.as_object().cloned().unwrap_or_default())
        }
        _ => return None,
    };
    let (namespace, name) = match full.split_once('.') {
        Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
        None => (None, full),
    };
    let mut args = raw_args;
    let custom_name = args
        .remove("name")
        .and_then(|v| v.as_str().map(str::to_string));
    let mut config = args
        .remove("config")
        .and_then(|c| c.as_object().cloned())
        .unwrap_or_default();
    let raw_severity = args
        .get("severity")
        .or_else(|| config.get("severity"))
        .cloned();
    // `tags:` given as a test argument tags the node but is not part of its config
    let arg_tags = string_list(args.remove("tags"));
    for key in [
        "severity",
        "where",
        "limit",
        "warn_if",
        "error_if",
        "store_failures",
        "enabled",
        "meta",
    ] {
        if let Some(v) = args.remove(key) {
            config.insert(key.to_string(), v);
        }
    }
    normalize_severity(&mut config);
    if config.get("store_failures") == Some(&Value::Bool(true)) {
        config
            .entry("store_failures_as")
            .or_insert(Value::from("table"));
    }
    Some(TestSpec {
        raw_severity,
        name,
        arg_tags,
        custom_name,
        namespace,
        args,
        config,
    })
}

pub(super) fn string_list(v: Option<Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// dbt stores a test's severity upper-cased.
pub(super) fn normalize_severity(config: &mut Map<String, Value>) {
    if let Some(Value::String(s)) = config.get_mut("severity") {
        *s = s.to_uppercase();
    }
}

/// dbt's `synthesize_generic_test_names`: (short name for alias and path, full name).
pub(super) fn test_names(
    test_type: &str,
    target: &str,
    args: &Map<String, Value>,
) -> (String, String) {
    let mut keys: Vec<&String> = args.keys().filter(|k| k.as_str() != "model").collect();
    keys.sort();
    let mut flat: Vec<String> = Vec::new();
    for k in keys {
        match &args[k] {
            Value::Object(m) => flat.extend(m.values().map(py_str)),
            Value::Array(items) => flat.extend(items.iter().map(py_str)),
            other => flat.push(py_str(other)),
        }
    }
    let clean: Vec<String> = flat.iter().map(|a| clean_arg(a)).collect();
    let identifier = format!("{test_type}_{target}");
    let full = format!("{identifier}_{}", clean.join("__"));
    if full.len() >= 64 {
        let trunc: String = identifier.chars().take(30).collect();
        (format!("{trunc}_{}", local_md5(full.clone())), full)
    } else {
        (full.clone(), full)
    }
}

pub(super) fn clean_arg(s: &str) -> String {
    let mut out = String::new();
    let mut in_run = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

pub(super) fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Python `repr` of dbt's hashable metadata (dicts sorted, leaves as `str()`).
pub(super) fn hashable_repr(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("'{}': {}", k, hashable_repr(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(hashable_repr)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => py_quote(&py_str(other)),
    }
}

pub(super) fn py_quote(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_hashes_like_dbt() {
        let mut args = Map::new();
        args.insert("column_name".into(), Value::from("status"));
        args.insert("values".into(), json!(["placed", "shipped", "returned"]));
        assert_eq!(
            test_names("accepted_values", "stg_orders", &args).1,
            "accepted_values_stg_orders_status__placed__shipped__returned"
        );
        let md = json!({"name": "unique", "kwargs": {"column_name": "order_id", "model": "{{ get_where_subquery(ref('stg_orders')) }}"}, "namespace": null});
        let hash = local_md5(format!("unique_stg_orders_order_id{}", hashable_repr(&md)));
        assert!(hash.ends_with("e3b841c71a"));
    }
}
