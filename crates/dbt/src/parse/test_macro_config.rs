//! `config(...)` calls written inside generic test macros (`{% test is_empty(model) %}
//! {{ config(severity='warn') }} ...`). dbt renders the test at parse time, so such a call sets
//! the test node's config (under the YAML test config). Backflow builds test nodes without
//! rendering them; instead each test macro's `config(...)` calls are evaluated once, on their
//! own, with the parse-time context (vars, target, env).

use crate::jinja::context::{NodeFacts, RenderCtx};
use crate::jinja::render;
use crate::jinja::scope::Scope;
use minijinja::Environment;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

#[allow(clippy::expect_used)] // a constant pattern: it compiles or every test fails
fn config_call_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\bconfig\s*\(").expect("static regex"))
}

/// Config of every generic test macro that calls `config(...)`, by macro unique id.
pub fn collect(env: &Environment<'static>, scope: &Scope) -> HashMap<String, Map<String, Value>> {
    let ctx_scope = Arc::new(Scope {
        root_package: scope.root_package.clone(),
        packages: scope.packages.clone(),
        target: scope.target.clone(),
        adapter: scope.adapter,
        cli_vars: scope.cli_vars.clone(),
        project_vars: scope.project_vars.clone(),
        env: scope.env.clone(),
        ..Scope::default()
    });
    let mut out = HashMap::new();
    for m in scope.macros.all() {
        if !m.name.starts_with("test_") || !m.source.contains("config") {
            continue;
        }
        let calls = config_calls(&m.source);
        if calls.is_empty() {
            continue;
        }
        let facts = NodeFacts {
            package: m.package.clone(),
            ..NodeFacts::default()
        };
        let rc = RenderCtx::new(ctx_scope.clone(), facts, false);
        let template: String = calls.iter().map(|c| format!("{{{{ {c} }}}}")).collect();
        if render(env, &rc, "test config", &template).is_err() {
            continue;
        }
        let mut config = Map::new();
        for call in rc.take_recording().config_calls {
            crate::parse::config::merge_into(&mut config, &call);
        }
        if !config.is_empty() {
            out.insert(m.unique_id.clone(), config);
        }
    }
    out
}

/// The text of each `config(...)` call (balanced parentheses, strings skipped).
fn config_calls(source: &str) -> Vec<&str> {
    let b = source.as_bytes();
    let mut out = Vec::new();
    for m in config_call_re().find_iter(source) {
        // `.config(` is a method call on something else
        if m.start() > 0 && b[m.start() - 1] == b'.' {
            continue;
        }
        let mut depth = 0usize;
        let mut i = m.end() - 1;
        let mut quote: Option<u8> = None;
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(_) if c == b'\\' => i += 1,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    b'\'' | b'"' => quote = Some(c),
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            out.push(&source[m.start()..=i]);
                            break;
                        }
                    }
                    _ => {}
                },
            }
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_balanced_config_calls() {
        let src = "{% test t(model) %}{{ config(severity='warn', fail_calc=\"n)\") }}\
                   {{ x.config(a=1) }}{% endtest %}";
        assert_eq!(
            config_calls(src),
            vec!["config(severity='warn', fail_calc=\"n)\")"]
        );
    }
}
