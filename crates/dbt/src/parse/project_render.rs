//! Renders Jinja inside dbt_project.yml config trees (`+enabled: "{{ var('x', true) }}"`) the
//! way dbt's project renderer does: only CLI vars, env_var and target are available, hooks stay
//! unrendered, and results are converted back to native types.

use crate::ir::options::ParseOptions;
use crate::jinja::context::{NodeFacts, RenderCtx};
use crate::jinja::pyfuncs::native_from_str;
use crate::jinja::scope::{MacroIndex, Scope};
use crate::jinja::{build_env, render};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Renders every templated string of `tree` (except hooks). Failures keep the raw string.
pub fn render_tree(tree: &Value, opts: &ParseOptions, root_package: &str) -> Value {
    if !contains_jinja(tree) {
        return tree.clone();
    }
    let scope = Arc::new(Scope {
        root_package: root_package.to_string(),
        target: opts.target_map(),
        adapter: opts.adapter,
        cli_vars: opts.vars.clone().into_iter().collect(),
        env: opts.env.clone(),
        ..Scope::default()
    });
    let (env, _) = build_env(&MacroIndex::default());
    let rc = RenderCtx::new(scope, NodeFacts::default(), false);
    walk(
        tree,
        &|s: &str| match render(&env, &rc, "dbt_project.yml", s) {
            Ok(out) => json_native(&out),
            Err(_) => Value::String(s.to_string()),
        },
    )
}

/// Renders a property file the way dbt's schema YAML renderer does: `var` (scoped to
/// `package`), `env_var` and `target` are available; descriptions, tests and hooks are left
/// for later. Failures keep the raw string.
pub fn render_properties(doc: &Value, scope: &Arc<Scope>, package: &str, file: &str) -> Value {
    if !contains_jinja(doc) {
        return doc.clone();
    }
    let (env, _) = build_env(&MacroIndex::default());
    let facts = NodeFacts {
        package: package.to_string(),
        ..NodeFacts::default()
    };
    let rc = RenderCtx::new(scope.clone(), facts, false);
    walk_filtered(
        doc,
        &|s: &str| match render(&env, &rc, file, s) {
            Ok(out) => json_native(&out),
            Err(_) => Value::String(s.to_string()),
        },
        &|k: &str| is_hook(k) || matches!(k, "description" | "tests" | "data_tests"),
    )
}

fn contains_jinja(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Array(items) => items.iter().any(contains_jinja),
        Value::Object(m) => m.values().any(contains_jinja),
        _ => false,
    }
}

fn is_hook(key: &str) -> bool {
    matches!(
        key.trim_start_matches('+'),
        "pre-hook" | "post-hook" | "pre_hook" | "post_hook"
    )
}

fn walk(v: &Value, f: &dyn Fn(&str) -> Value) -> Value {
    walk_filtered(v, f, &is_hook)
}

/// Renders templated strings of `v` with `f`, except under keys `skip` accepts.
fn walk_filtered(v: &Value, f: &dyn Fn(&str) -> Value, skip: &dyn Fn(&str) -> bool) -> Value {
    match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") => f(s),
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| walk_filtered(i, f, skip)).collect())
        }
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                let rendered = if skip(k) {
                    val.clone()
                } else {
                    walk_filtered(val, f, skip)
                };
                out.insert(k.clone(), rendered);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Converts a rendered string to a native JSON value like dbt's native Jinja rendering.
pub fn json_native(s: &str) -> Value {
    let v = native_from_str(s);
    serde_json::to_value(&v).unwrap_or(Value::String(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_vars_and_target_natively() {
        let mut opts = ParseOptions::default();
        opts.vars.insert("flag".into(), json!(false));
        let tree = json!({
            "a": {"+enabled": "{{ var('flag', true) }}", "+materialized": "{{ 'table' if target.name == 'dev' else 'view' }}"},
            "+post-hook": "{{ not_rendered() }}"
        });
        let out = render_tree(&tree, &opts, "root");
        assert_eq!(out["a"]["+enabled"], json!(false));
        assert_eq!(out["a"]["+materialized"], json!("table"));
        assert_eq!(out["+post-hook"], json!("{{ not_rendered() }}"));
    }
}
