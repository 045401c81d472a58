//! Compiled SQL for generic tests: the test macro called with the test's kwargs the way
//! dbt's `add_rendered_test_kwargs` prepares them (`model` is
//! `get_where_subquery(ref(...))`, strings that look like `ref(...)`, `source(...)`,
//! `var(...)`, `env_var(...)` or `doc(...)` are evaluated, other values stay literals).
//! The ephemeral models the SQL refs are recorded in `extra_ctes`; their CTEs are injected
//! afterwards (`pipeline::inject_test_ctes`), like a model's.

use crate::ir::catalog::{CompileStatus, Node};
use crate::jinja::context::{NodeFacts, RenderCtx};
use crate::jinja::scope::Scope;
use crate::jinja::{has_jinja, render};
use crate::parse::Workspace;
use rayon::prelude::*;
use serde_json::Value;
use std::sync::Arc;

/// Compiles every generic test in `tests` in place; returns the macros each one called.
pub fn compile_tests(ws: &Workspace, scope: &Arc<Scope>, tests: &mut [Node]) -> Vec<Vec<String>> {
    tests
        .par_iter_mut()
        .map(|t| compile_test(ws, scope, t))
        .collect()
}

/// Compiles one generic test node (singular tests are compiled like models); returns the
/// macros the compilation called.
pub fn compile_test(ws: &Workspace, scope: &Arc<Scope>, t: &mut Node) -> Vec<String> {
    // a test of a disabled node is never selected, so never compiled
    if !t.enabled {
        return Vec::new();
    }
    let Some(source) = call_source(t) else {
        return Vec::new();
    };
    let facts = NodeFacts {
        unique_id: t.unique_id.clone(),
        name: t.name.clone(),
        package: t.package_name.clone(),
        this: None,
        model: Value::Null,
        config: t.config.clone(),
    };
    let rc = RenderCtx::new(scope.clone(), facts, true);
    let result = render(&ws.env, &rc, &t.original_file_path, &source);
    let rec = rc.take_recording();
    t.extra_ctes = rec.ctes;
    match result {
        Ok(sql) => {
            t.compiled_code = Some(sql);
            t.compile_status = CompileStatus::Success;
            t.compile_error = None;
        }
        Err(e) => {
            t.compiled_code = None;
            t.compile_status = CompileStatus::Error;
            t.compile_error = Some(e.message);
        }
    }
    rec.invoked
}

/// `{{ pkg.test_name(model=..., column_name='c', ...) }}` for a generic test.
fn call_source(t: &Node) -> Option<String> {
    let meta = t.test_metadata.as_ref()?;
    let name = meta.get("name")?.as_str()?;
    let macro_id = t
        .depends_on
        .macros
        .iter()
        .find(|m| m.ends_with(&format!(".test_{name}")))?;
    let callee = macro_id.strip_prefix("macro.")?;
    let kwargs = meta.get("kwargs")?.as_object()?;
    let mut prelude = String::new();
    let args: Vec<String> = kwargs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| match argument(k, v) {
            Arg::Expr(e) => format!("{k}={e}"),
            Arg::Template(text) => {
                // rendered first, as dbt renders every string kwarg before the call
                prelude.push_str(&format!(
                    "{{% set __bf_test_arg_{i} %}}{text}{{% endset %}}"
                ));
                format!("{k}=__bf_test_arg_{i}")
            }
        })
        .collect();
    Some(format!("{prelude}{{{{ {callee}({}) }}}}", args.join(", ")))
}

/// How one test kwarg is handed to the test macro.
#[derive(Debug, PartialEq)]
enum Arg {
    /// a Jinja expression (a literal, or the inside of a `{{ ... }}` argument)
    Expr(String),
    /// text with Jinja inside (`"x in {{ var('codes') }}"`), rendered to a string first
    Template(String),
}

fn argument(key: &str, v: &Value) -> Arg {
    match v {
        Value::String(s) if key == "column_name" => Arg::Expr(literal(&Value::String(s.clone()))),
        Value::String(s) => {
            let inner = s
                .trim()
                .strip_prefix("{{")
                .and_then(|x| x.strip_suffix("}}"))
                .map(str::trim)
                .filter(|e| !e.contains("}}") && !e.contains("{{"));
            match inner {
                Some(expr) => Arg::Expr(expr.to_string()),
                None if looks_like_call(s) => Arg::Expr(s.trim().to_string()),
                None if has_jinja(s) => Arg::Template(s.clone()),
                None => Arg::Expr(literal(v)),
            }
        }
        other => Arg::Expr(literal(other)),
    }
}

fn looks_like_call(s: &str) -> bool {
    let s = s.trim();
    ["env_var(", "ref(", "var(", "source(", "doc("]
        .iter()
        .any(|p| s.starts_with(p))
        && s.ends_with(')')
}

/// A Jinja literal for a JSON value.
fn literal(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(literal).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", literal(&Value::String(k.clone())), literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_like_dbt() {
        let expr = |s: &str| Arg::Expr(s.to_string());
        assert_eq!(
            argument("to", &json!("ref('customers')")),
            expr("ref('customers')")
        );
        assert_eq!(
            argument("model", &json!("{{ get_where_subquery(ref('x')) }}")),
            expr("get_where_subquery(ref('x'))")
        );
        assert_eq!(argument("column_name", &json!("id")), expr("\"id\""));
        assert_eq!(
            argument("values", &json!(["a", 1, true, null])),
            expr("[\"a\", 1, true, none]")
        );
        assert_eq!(
            argument("expression", &json!("sku in {{ var('skus') }}")),
            Arg::Template("sku in {{ var('skus') }}".into())
        );
        assert_eq!(
            argument("expression", &json!("{{ a }} = {{ b }}")),
            Arg::Template("{{ a }} = {{ b }}".into())
        );
    }
}
