//! The naming stage: database, schema, alias and relation of every enabled node through the
//! `generate_*_name` macros (`naming`) and the quoting policy. Memoised per node.

use crate::ir::fingerprint::fingerprint;
use crate::ir::options::ParseOptions;
use crate::jinja::context::NodeFacts;
use crate::jinja::relation::Relation;
use crate::jinja::RenderError;
use crate::parse::naming;
use crate::parse::node_config::model_dict;
use crate::parse::{ParsedNode, Workspace};
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Outcome of relation naming: (database, schema, alias).
pub type Naming = Result<(String, String, String), RenderError>;

/// dbt's `create_from_node`: default policy, then the ROOT project's `quoting:` (the runtime
/// config's, for package models too), then the node's `quoting` config.
fn quote_policy(ws: &Workspace, node_cfg: &Map<String, Value>) -> [bool; 3] {
    let project = ws.projects.first().map(|p| &p.quoting);
    let default = ws.scope.adapter.spec().quote_policy;
    let get = |i: usize, k: &str| {
        node_cfg
            .get("quoting")
            .and_then(|q| q.get(k))
            .and_then(Value::as_bool)
            .or_else(|| project.and_then(|q| q.get(k)).and_then(Value::as_bool))
            .unwrap_or(default[i])
    };
    [get(0, "database"), get(1, "schema"), get(2, "identifier")]
}

/// Resolves database, schema and alias for every node via the generate_*_name macros,
/// reusing `previous` answers when the node's config and the workspace are unchanged;
/// returns this pass's answers.
pub fn name_relations(
    ws: &Workspace,
    nodes: &mut [ParsedNode],
    opts: &ParseOptions,
    previous: &HashMap<u64, Naming>,
) -> HashMap<u64, Naming> {
    nodes
        .par_iter_mut()
        .map(|node| name_node(ws, node, opts, previous))
        .collect()
}

/// Names one node (taken from `previous` when its key is there).
pub fn name_node(
    ws: &Workspace,
    node: &mut ParsedNode,
    opts: &ParseOptions,
    previous: &HashMap<u64, Naming>,
) -> (u64, Naming) {
    let key = fingerprint(&(ws.fingerprint, &node.unique_id, node.parse_key));
    let named = match previous.get(&key) {
        Some(hit) => hit.clone(),
        None => name_one(ws, node, opts),
    };
    apply_naming(ws, node, opts, &named);
    (key, named)
}

fn name_one(ws: &Workspace, node: &ParsedNode, opts: &ParseOptions) -> Naming {
    let cfg = &node.config;
    let get = |k: &str| cfg.get(k).cloned().unwrap_or(Value::Null);
    if node.resource_type == "snapshot" {
        let text =
            |k: &str, default: &str| get(k).as_str().map_or(default.to_string(), str::to_string);
        return Ok((
            text("target_database", &opts.target_database),
            text("target_schema", &opts.target_schema),
            text("alias", &node.name),
        ));
    }
    let mut facts = NodeFacts {
        unique_id: node.unique_id.clone(),
        name: node.name.clone(),
        package: node.package.clone(),
        this: None,
        model: model_dict(node, cfg),
        config: cfg.clone(),
    };
    name_via_macros(ws, &mut facts, &get)
}

fn apply_naming(ws: &Workspace, node: &mut ParsedNode, opts: &ParseOptions, named: &Naming) {
    match named {
        Ok((db, schema, alias)) => {
            let quote = quote_policy(ws, &node.config);
            node.relation = Some(Relation::table(ws.scope.adapter, db, schema, alias, quote));
            node.database = Some(db.clone());
            node.schema = schema.clone();
            node.alias = alias.clone();
        }
        Err(e) => {
            node.parse_error.get_or_insert((e.line, e.message.clone()));
            node.schema = opts.target_schema.clone();
            node.alias = node.name.clone();
            node.database = Some(opts.target_database.clone());
        }
    }
}

fn name_via_macros(
    ws: &Workspace,
    facts: &mut NodeFacts,
    get: &dyn Fn(&str) -> Value,
) -> Result<(String, String, String), RenderError> {
    let db = naming::generate(&ws.env, &ws.scope, facts, "database", &get("database"))?;
    set_model_field(facts, "database", &db);
    let schema = naming::generate(&ws.env, &ws.scope, facts, "schema", &get("schema"))?;
    set_model_field(facts, "schema", &schema);
    let alias = naming::generate(&ws.env, &ws.scope, facts, "alias", &get("alias"))?;
    Ok((db, schema, alias))
}

fn set_model_field(facts: &mut NodeFacts, key: &str, value: &str) {
    if let Value::Object(m) = &mut facts.model {
        m.insert(key.to_string(), Value::from(value));
    }
}
