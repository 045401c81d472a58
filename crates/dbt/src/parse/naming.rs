//! Relation naming: database, schema and alias of a node through `generate_database_name`,
//! `generate_schema_name` and `generate_alias_name`. dbt picks the root project's override,
//! then the node's own package's override, then its built-in default.

use crate::jinja::context::{NodeFacts, RenderCtx};
use crate::jinja::scope::{MacroDef, Scope, DBT_PACKAGE};
use crate::jinja::{render, RenderError};
use minijinja::Environment;
use serde_json::Value;
use std::sync::Arc;

/// The generate macro dbt would call for a node of `package`.
pub fn generate_macro<'a>(
    scope: &'a Scope,
    component: &str,
    package: &str,
) -> Option<&'a Arc<MacroDef>> {
    let name = format!("generate_{component}_name");
    scope
        .macros
        .get(&scope.root_package, &name)
        .or_else(|| scope.macros.get(package, &name))
        .or_else(|| scope.macros.get(DBT_PACKAGE, &name))
}

/// dbt's built-in `default__generate_<component>_name`, computed without rendering. Used when
/// neither the project nor its packages override the macro (directly or through dispatch).
fn builtin_name(
    scope: &Scope,
    facts: &NodeFacts,
    component: &str,
    custom: &Value,
) -> Option<String> {
    let top = generate_macro(scope, component, &facts.package)?;
    if top.package != DBT_PACKAGE {
        return None;
    }
    let name = format!("generate_{component}_name");
    let dispatched = scope.dispatch_macro(&name, Some(DBT_PACKAGE), &facts.package, None)?;
    if dispatched.package != DBT_PACKAGE {
        return None;
    }
    let target = |k: &str| {
        scope
            .target
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let custom_text = match custom {
        Value::Null => None,
        Value::String(s) => Some(s.trim().to_string()),
        other => Some(other.to_string().trim().to_string()),
    };
    Some(match component {
        "schema" => match custom_text {
            None => target("schema"),
            Some(c) => format!("{}_{c}", target("schema")),
        },
        "database" => custom_text.unwrap_or_else(|| target("database")),
        _ => match custom_text.filter(|c| !c.is_empty() && custom != &Value::Bool(false)) {
            Some(c) => c,
            None => match facts.model.get("version").filter(|v| !v.is_null()) {
                Some(v) => format!(
                    "{}_v{}",
                    facts.name,
                    v.as_str()
                        .map_or(v.to_string(), str::to_string)
                        .replace('.', "_")
                ),
                None => facts.name.clone(),
            },
        },
    })
}

/// Calls `generate_<component>_name(custom, node)` and returns the stripped result.
pub fn generate(
    env: &Environment<'static>,
    scope: &Arc<Scope>,
    facts: &NodeFacts,
    component: &str,
    custom: &Value,
) -> Result<String, RenderError> {
    if let Some(name) = builtin_name(scope, facts, component, custom) {
        return Ok(name);
    }
    let Some(m) = generate_macro(scope, component, &facts.package) else {
        return Err(RenderError {
            line: None,
            message: format!("no generate_{component}_name macro found"),
        });
    };
    let custom_literal = match custom {
        Value::Null => "none".to_string(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        other => serde_json::to_string(&other.to_string()).unwrap_or_default(),
    };
    let call = format!(
        "{{{{ {}.{}({custom_literal}, model) }}}}",
        m.package, m.name
    );
    let rc = RenderCtx::new(scope.clone(), facts.clone(), false);
    render(env, &rc, &format!("generate_{component}_name"), &call).map(|s| s.trim().to_string())
}
