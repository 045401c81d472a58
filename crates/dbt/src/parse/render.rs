//! The parse-time render (execute = false): records each node's refs, sources, `config()`
//! calls and macros, and settles its config and tags. Memoised per node under a key of the
//! workspace fingerprint and the node's text.

use crate::ir::fingerprint::fingerprint;
use crate::ir::options::ParseOptions;
use crate::jinja::context::{NodeFacts, Recording, RenderCtx};
use crate::jinja::relation::Relation;
use crate::jinja::{has_jinja, render, render_node, NodeTemplates};
use crate::parse::node_config::{model_dict, node_config};
use crate::parse::properties::NodePatch;
use crate::parse::{ParsedNode, Workspace};
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Outcome of a parse-time render, with the config and tags it produced.
#[derive(Debug, Clone)]
pub struct ParseRender {
    pub rec: Recording,
    pub error: Option<(Option<usize>, String)>,
    pub config: Map<String, Value>,
    pub tags: Vec<String>,
}

/// Renders every node with execute = false to record refs, sources, config calls and macros.
/// Results are taken from `previous` when the node text and the workspace are unchanged;
/// returns this pass's results, the `previous` of the next one (nothing unless `keep`).
pub fn parse_render(
    ws: &Workspace,
    nodes: &mut [ParsedNode],
    opts: &ParseOptions,
    previous: &HashMap<u64, ParseRender>,
    (keep, templates): (bool, Option<&NodeTemplates<'_>>),
) -> HashMap<u64, ParseRender> {
    let fresh: Vec<Option<(u64, ParseRender)>> = nodes
        .par_iter_mut()
        .map(|node| parse_node(ws, node, opts, previous, (keep, templates)))
        .collect();
    fresh.into_iter().flatten().collect()
}

/// The parse-time render of one node (taken from `previous` when its key is there); the
/// result under its key when `keep` (else it is only moved into the node).
pub fn parse_node(
    ws: &Workspace,
    node: &mut ParsedNode,
    opts: &ParseOptions,
    previous: &HashMap<u64, ParseRender>,
    (keep, templates): (bool, Option<&NodeTemplates<'_>>),
) -> Option<(u64, ParseRender)> {
    if node.resource_type == "seed" {
        node.config = node_config(ws, node, &[], true);
        take_render_error(node);
        return None;
    }
    let key = fingerprint(&(
        ws.fingerprint,
        &node.unique_id,
        &node.file.checksum,
        &node.raw_code,
        // which patch applies can depend on other nodes (`foreign_patch`)
        node.patch.as_ref().map(|p| (&p.package, &p.file)),
    ));
    node.parse_key = key;
    let result = match previous.get(&key) {
        Some(hit) => hit.clone(),
        None => render_for_parse(ws, node, opts, templates),
    };
    let kept = keep.then(|| (key, result.clone()));
    node.rec = result.rec;
    node.parse_error = result.error;
    node.config = result.config;
    take_render_error(node);
    node.tags = result.tags;
    kept
}

/// A project config value that failed to render (see `project_render`) is the node's error.
fn take_render_error(node: &mut ParsedNode) {
    if let Some(msg) = node
        .config
        .remove(crate::parse::project_render::RENDER_ERROR_KEY)
    {
        let msg = msg.as_str().map_or_else(|| msg.to_string(), str::to_string);
        node.parse_error.get_or_insert((None, msg));
    }
}

fn render_for_parse(
    ws: &Workspace,
    node: &ParsedNode,
    opts: &ParseOptions,
    templates: Option<&NodeTemplates<'_>>,
) -> ParseRender {
    let pre = node_config(ws, node, &[], true);
    let facts = NodeFacts {
        unique_id: node.unique_id.clone(),
        name: node.name.clone(),
        package: node.package.clone(),
        this: Some(Relation::table(
            opts.adapter,
            &opts.target_database,
            &opts.target_schema,
            &node.name,
            opts.adapter.spec().quote_policy,
        )),
        model: model_dict(node, &pre),
        config: pre,
    };
    let rc = RenderCtx::new(ws.scope.clone(), facts, false);
    let result = render_node(
        &ws.env,
        templates,
        &rc,
        (
            &node.unique_id,
            &node.file.original_file_path,
            &node.raw_code,
        ),
    );
    let mut rec = rc.take_recording();
    if result.is_err() {
        crate::parse::static_refs::complete(&node.raw_code, &mut rec.refs, &mut rec.sources);
    }
    let pre_tags = tags_of(&node_config(ws, node, &rec.config_calls, false));
    let config = node_config(ws, node, &rec.config_calls, true);
    let tags = merge_tags(pre_tags, &config, node.patch.as_ref());
    if result.is_ok() {
        hook_macros(ws, node, &rc, &config, &mut rec);
    }
    ParseRender {
        rec,
        error: result.err().map(|e| (e.line, e.message)),
        config,
        tags,
    }
}

/// dbt renders a node's hooks at parse time (`capture_macros=True`): the macros they call
/// become depends_on.macros of the node.
fn hook_macros(
    ws: &Workspace,
    node: &ParsedNode,
    rc: &Arc<RenderCtx>,
    config: &Map<String, Value>,
    rec: &mut Recording,
) {
    for key in ["pre-hook", "post-hook"] {
        let Some(Value::Array(hooks)) = config.get(key) else {
            continue;
        };
        for h in hooks {
            let sql = match h {
                Value::String(s) => s.as_str(),
                Value::Object(m) => m.get("sql").and_then(Value::as_str).unwrap_or_default(),
                _ => "",
            };
            if !has_jinja(sql) {
                continue;
            }
            // the hook's output and errors do not matter here, only the calls it makes
            let _ = render(&ws.env, rc, &node.file.original_file_path, sql);
            for m in rc.take_recording().macros {
                if !rec.macros.contains(&m) {
                    rec.macros.push(m);
                }
            }
        }
    }
}

fn tags_of(config: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(Value::Array(items)) = config.get("tags") {
        for t in items.iter().filter_map(Value::as_str) {
            if !out.iter().any(|x| x == t) {
                out.push(t.to_string());
            }
        }
    }
    out
}

/// Node tags grow like dbt's: tags known at SQL parse time first, then the config's tags. A
/// `tags:` key at the top of a model, seed or snapshot entry in YAML is not a property dbt
/// reads (its node patches have none); only `config: tags:` counts there.
fn merge_tags(
    mut tags: Vec<String>,
    config: &Map<String, Value>,
    _patch: Option<&NodePatch>,
) -> Vec<String> {
    for t in tags_of(config) {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags
}
