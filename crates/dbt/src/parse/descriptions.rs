//! Descriptions with Jinja in them (`{{ doc(...) }}`, macros) rendered the way dbt renders
//! them, memoised by (workspace, package, text) with the macros they called, so a macro edit
//! can tell whether a description depends on it.

use crate::ir::fingerprint::fingerprint;
use crate::jinja::context::{NodeFacts, RenderCtx};
use crate::jinja::{has_jinja, render};
use crate::parse::Workspace;
use std::collections::{BTreeSet, HashMap};

/// Rendered descriptions by (workspace, package, text), and every macro any of them called.
#[derive(Debug, Default)]
pub struct Descriptions {
    pub rendered: HashMap<u64, String>,
    pub invoked: BTreeSet<String>,
}

/// Renders `{{ doc(...) }}` (and other Jinja) inside a description, memoised in `memo`.
pub fn render_description(
    ws: &Workspace,
    package: &str,
    text: &str,
    memo: &mut Descriptions,
) -> String {
    if !has_jinja(text) {
        return text.to_string();
    }
    let key = fingerprint(&(ws.fingerprint, package, text));
    if let Some(hit) = memo.rendered.get(&key) {
        return hit.clone();
    }
    let facts = NodeFacts {
        package: package.to_string(),
        ..NodeFacts::default()
    };
    let rc = RenderCtx::new(ws.scope.clone(), facts, false);
    let rendered = render(&ws.env, &rc, "description", text).unwrap_or_else(|_| text.to_string());
    memo.invoked.extend(rc.take_recording().invoked);
    memo.rendered.insert(key, rendered.clone());
    rendered
}
