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
        if !m.name.starts_with("test_") {
            continue;
        }
        let mut calls = Vec::new();
        let mut seen = vec![m.unique_id.clone()];
        gather(scope, m, 0, &mut seen, &mut calls);
        if calls.is_empty() {
            continue;
        }
        let facts = NodeFacts {
            package: m.package.clone(),
            ..NodeFacts::default()
        };
        // each call on its own (after the `set`s it reads), so one that needs the test's
        // arguments does not lose the others
        let mut config = Map::new();
        for call in &calls {
            let rc = RenderCtx::new(ctx_scope.clone(), facts.clone(), false);
            if render(env, &rc, "test config", call).is_err() {
                continue;
            }
            for call in rc.take_recording().config_calls {
                crate::parse::config::merge_into(&mut config, &call);
            }
        }
        if !config.is_empty() {
            out.insert(m.unique_id.clone(), config);
        }
    }
    out
}

#[allow(clippy::expect_used)] // a constant pattern: it compiles or every test fails
fn dispatch_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"adapter\.dispatch\(\s*['"](\w+)['"]\s*(?:,\s*(?:macro_namespace\s*=\s*)?['"](\w+)['"])?"#,
        )
        .expect("static regex")
    })
}

#[allow(clippy::expect_used)] // a constant pattern: it compiles or every test fails
fn test_call_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\b(?:(\w+)\.)?(test_\w+)\s*\(").expect("static regex"))
}

/// The `config(...)` calls a test runs at parse time: the test macro's own, then those of
/// the implementation it dispatches to (`adapter.dispatch('test_x', 'pkg')` →
/// `default__test_x`) and of other test macros it calls (`pkg.test_table_anomalies(...)`),
/// in source order per macro. dbt renders the whole test at parse time, so each of them
/// sets the node's config (a `tags` list once per call).
fn gather(
    scope: &Scope,
    m: &crate::jinja::scope::MacroDef,
    depth: usize,
    seen: &mut Vec<String>,
    calls: &mut Vec<String>,
) {
    if m.source.contains("config") {
        for call in config_calls(&m.source) {
            calls.push(format!("{}{{{{ {call} }}}}", sets_read(&m.source, call)));
        }
    }
    if depth >= 4 {
        return;
    }
    let mut callees = Vec::new();
    for c in dispatch_re().captures_iter(&m.source) {
        let ns = c.get(2).map(|g| g.as_str());
        if let Some(d) = scope.dispatch_macro(&c[1], ns, &m.package, Some(&m.package)) {
            callees.push(d.clone());
        }
    }
    for c in test_call_re().captures_iter(&m.source) {
        let found = match c.get(1) {
            Some(pkg) => scope.macros.get(pkg.as_str(), &c[2]),
            None => scope.find_macro(&c[2], &m.package, Some(&m.package)),
        };
        if let Some(d) = found {
            callees.push(d.clone());
        }
    }
    for d in callees {
        if seen.contains(&d.unique_id) {
            continue;
        }
        seen.push(d.unique_id.clone());
        gather(scope, &d, depth + 1, seen, calls);
    }
}

#[allow(clippy::expect_used)] // a constant pattern: it compiles or every test fails
fn set_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?s)\{%-?\s*set\s+(\w+)\s*-?%\}.*?\{%-?\s*endset\s*-?%\}|\{%-?\s*set\s+(\w+)\s*=.*?-?%\}",
        )
        .expect("static regex")
    })
}

/// The `{% set x %}...{% endset %}` blocks and `{% set x = ... %}` statements of `source`
/// that assign a name `call` reads (dbt_utils' `equality` builds its `fail_calc` in a set
/// block), in source order, as a template prefix.
fn sets_read(source: &str, call: &str) -> String {
    let reads = |name: &str| {
        call.match_indices(name).any(|(i, _)| {
            let b = call.as_bytes();
            let before = i.checked_sub(1).map(|j| b[j]);
            let after = b.get(i + name.len()).copied();
            let ident = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
            !ident(before) && !ident(after) && before != Some(b'.')
        })
    };
    let mut out = String::new();
    for c in set_re().captures_iter(source) {
        let name = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
        if reads(name) {
            out.push_str(&c[0]);
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
    fn config_calls_take_the_sets_they_read() {
        let src = "{% set unused = 1 %}{% set diff %} count(*) + 1 {% endset %}\
                   {%- set sev = 'warn' -%}{{ config(fail_calc=diff, severity=sev) }}";
        let call = config_calls(src)[0];
        assert_eq!(
            sets_read(src, call),
            "{% set diff %} count(*) + 1 {% endset %}{%- set sev = 'warn' -%}"
        );
        assert_eq!(sets_read("{% set x = 1 %}", "config(a=y.x, b=xx)"), "");
    }

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
