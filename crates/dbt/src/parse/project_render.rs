//! Renders Jinja inside dbt_project.yml config trees (`+enabled: "{{ var('x', true) }}"`) the
//! way dbt's project renderer does: only CLI vars, env_var and target are available, hooks stay
//! unrendered, and results are converted back to native types.

use crate::ir::options::ParseOptions;
use crate::jinja::context::{NodeFacts, RenderCtx};
use crate::jinja::pyfuncs::native_from_str;
use crate::jinja::scope::{MacroIndex, Scope};
use crate::jinja::{build_env, has_jinja, render};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Config key under which a value that failed to render is reported: nodes under that
/// path get it in their config, and parsing turns it into the node's error.
pub const RENDER_ERROR_KEY: &str = "__bf_render_error";

/// Renders every templated string of `tree` (except hooks). A value that fails to render is
/// dropped (its raw Jinja text must never become a name) and replaced, at the config level
/// that held it, by `+__bf_render_error` with the message ([`RENDER_ERROR_KEY`]).
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
    let f = |s: &str| match render(&env, &rc, "dbt_project.yml", s) {
        Ok(out) => Ok(json_native(&out)),
        Err(e) => Err(e.message),
    };
    walk_project(tree, &f, false).0
}

/// Renders a project config tree; returns the value and, inside a config value
/// (`in_config`), the failures to report at the enclosing config level.
fn walk_project(
    v: &Value,
    f: &dyn Fn(&str) -> Result<Value, String>,
    in_config: bool,
) -> (Value, Vec<String>) {
    match v {
        Value::String(s) if has_jinja(s) => match f(s) {
            Ok(v) => (v, Vec::new()),
            Err(e) => (Value::Null, vec![e]),
        },
        Value::Array(items) => {
            let mut errs = Vec::new();
            let out = items
                .iter()
                .map(|i| {
                    let (v, e) = walk_project(i, f, true);
                    errs.extend(e);
                    v
                })
                .collect();
            (Value::Array(out), errs)
        }
        Value::Object(m) => {
            let mut out = Map::new();
            let mut failed = Vec::new();
            for (k, val) in m {
                if is_hook(k) {
                    out.insert(k.clone(), val.clone());
                    continue;
                }
                let config_value = in_config || k.starts_with('+') || !val.is_object();
                let (rendered, errs) = walk_project(val, f, config_value);
                if errs.is_empty() {
                    out.insert(k.clone(), rendered);
                } else {
                    failed.extend(
                        errs.into_iter()
                            .map(|e| format!("could not render `{k}` in dbt_project.yml: {e}")),
                    );
                }
            }
            if in_config || failed.is_empty() {
                return (Value::Object(out), failed);
            }
            out.insert(
                format!("+{RENDER_ERROR_KEY}"),
                Value::String(failed.join("; ")),
            );
            (Value::Object(out), Vec::new())
        }
        other => (other.clone(), Vec::new()),
    }
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
        Value::String(s) => has_jinja(s),
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

/// Renders templated strings of `v` with `f`, except under keys `skip` accepts.
fn walk_filtered(v: &Value, f: &dyn Fn(&str) -> Value, skip: &dyn Fn(&str) -> bool) -> Value {
    match v {
        Value::String(s) if has_jinja(s) => f(s),
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

    #[test]
    fn a_value_that_fails_to_render_is_reported_not_kept() {
        let tree = json!({
            "pkg": {"marts": {
                "+schema": "{{ modules.nope.thing() }}",
                "+meta": {"a": "{{ 1 + }}", "b": "ok"},
                "+materialized": "table"
            }}
        });
        let out = render_tree(&tree, &ParseOptions::default(), "pkg");
        let marts = &out["pkg"]["marts"];
        assert!(marts.get("+schema").is_none(), "raw Jinja kept: {marts}");
        assert!(marts.get("+meta").is_none(), "raw Jinja kept: {marts}");
        assert_eq!(marts["+materialized"], json!("table"));
        let err = marts[format!("+{RENDER_ERROR_KEY}")]
            .as_str()
            .unwrap_or_default();
        assert!(err.contains("could not render `+schema`"), "{err}");
        assert!(err.contains("could not render `+meta`"), "{err}");
    }
}
