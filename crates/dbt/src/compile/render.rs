//! The compile-time render (execute = true) of each enabled node: its SQL, the ephemeral
//! models it inlines, the warehouse calls it made and the macros it invoked. Memoised per node
//! under a key of everything the render reads (`compile_key`).

use crate::compile::Deps;
use crate::ir::fingerprint::fingerprint;
use crate::jinja::context::{NodeFacts, RenderCtx};
use crate::jinja::scope::Scope;
use crate::jinja::{render_node, NodeTemplates};
use crate::parse::node_config::model_dict;
use crate::parse::{ParsedNode, Workspace};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Outcome of a compile-time render.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub sql: Result<String, String>,
    pub ctes: Vec<String>,
    pub warehouse: Vec<String>,
    /// the render read `graph`, so it depends on every node (never reused)
    pub uses_graph: bool,
    /// every macro the render called (at any depth)
    pub invoked: Vec<String>,
    /// macros called at depth 0 while compiling: dbt adds them to depends_on.macros too
    pub top_macros: Vec<String>,
}

/// Compiles every node (with its resolved `deps`), taking unchanged renders from `previous`;
/// returns the results in node order and (when `keep`) keyed for the next pass.
pub fn compile_all(
    ws: &Workspace,
    scope: &Arc<Scope>,
    nodes: &[ParsedNode],
    deps: &[Deps],
    previous: &HashMap<u64, Compiled>,
    (keep, templates): (bool, Option<&NodeTemplates<'_>>),
) -> (Vec<Compiled>, HashMap<u64, Compiled>) {
    if !keep && previous.is_empty() {
        let compiled = nodes
            .par_iter()
            .zip(deps.par_iter())
            .map(|(n, d)| compile_node(ws, scope, n, d, templates))
            .collect();
        return (compiled, HashMap::new());
    }
    let keyed: Vec<(u64, Compiled)> = nodes
        .par_iter()
        .zip(deps.par_iter())
        .map(|(n, d)| {
            let key = compile_key(ws, scope, n, d);
            let hit = previous.get(&key).filter(|c| !c.uses_graph).cloned();
            (
                key,
                hit.unwrap_or_else(|| compile_node(ws, scope, n, d, templates)),
            )
        })
        .collect();
    if !keep {
        return (keyed.into_iter().map(|(_, c)| c).collect(), HashMap::new());
    }
    let compiled = keyed.iter().map(|(_, c)| c.clone()).collect();
    (compiled, keyed.into_iter().collect())
}

/// Everything a compile-time render depends on: the workspace, the node's text and config,
/// and what each of its refs and sources resolves to.
fn compile_key(
    ws: &Workspace,
    scope: &Scope,
    n: &ParsedNode,
    deps: &Result<Vec<String>, String>,
) -> u64 {
    let refs: Vec<(String, Option<String>, bool)> = n
        .rec
        .refs
        .iter()
        .filter_map(|r| {
            scope.resolve_ref(
                &r.name,
                r.package.as_deref(),
                r.version.as_deref(),
                &n.package,
            )
        })
        .map(|t| {
            (
                t.unique_id.clone(),
                t.relation.as_ref().map(|r| r.render()),
                t.ephemeral,
            )
        })
        .collect();
    let this = n.relation.as_ref().map(|r| r.render());
    // the parse key covers the node's text and (with the workspace) its whole config
    fingerprint(&(
        ws.fingerprint,
        &n.unique_id,
        n.parse_key,
        &n.raw_code,
        this,
        refs,
        deps.is_ok(),
        &n.parse_error,
    ))
}

pub(crate) fn compile_node(
    ws: &Workspace,
    scope: &Arc<Scope>,
    n: &ParsedNode,
    deps: &Result<Vec<String>, String>,
    templates: Option<&NodeTemplates<'_>>,
) -> Compiled {
    let skipped = |msg: String| Compiled {
        sql: Err(msg),
        ctes: Vec::new(),
        warehouse: Vec::new(),
        uses_graph: false,
        invoked: Vec::new(),
        top_macros: Vec::new(),
    };
    if n.resource_type == "seed" {
        return Compiled {
            sql: Ok(String::new()),
            ctes: Vec::new(),
            warehouse: Vec::new(),
            uses_graph: false,
            invoked: Vec::new(),
            top_macros: Vec::new(),
        };
    }
    if let Some((_, msg)) = &n.parse_error {
        return skipped(msg.clone());
    }
    if let Err(e) = deps {
        return skipped(e.clone());
    }
    let facts = NodeFacts {
        unique_id: n.unique_id.clone(),
        name: n.name.clone(),
        package: n.package.clone(),
        this: n.relation.clone(),
        model: model_dict(n, &n.config),
        config: n.config.clone(),
    };
    let rc = RenderCtx::new(scope.clone(), facts, true);
    let result = render_node(
        &ws.env,
        templates,
        &rc,
        (&n.unique_id, &n.file.original_file_path, &n.raw_code),
    );
    let rec = rc.take_recording();
    Compiled {
        sql: result.map_err(|e| match e.line {
            Some(l) => format!("line {l}: {}", e.message),
            None => e.message,
        }),
        ctes: rec.ctes,
        warehouse: rec.warehouse_calls,
        uses_graph: rec.uses_graph,
        invoked: rec.invoked,
        top_macros: rec.macros,
    }
}
