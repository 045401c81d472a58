//! dbt's compile-time `graph` context variable: every enabled model, seed, snapshot and
//! singular test and every enabled source as dicts with dbt's field names. It is built only
//! when some macro or node mentions `graph` (it costs a pass over every node otherwise).

use crate::compile::Deps;
use crate::ir::catalog::{columns_json, Source};
use crate::load::{FileKind, Loaded};
use crate::parse::{self, ParsedNode};
use serde_json::{json, Map, Value};

/// Whether any macro or node source mentions `graph`.
pub fn wanted(loaded: &Loaded) -> bool {
    loaded.files.iter().any(|f| {
        matches!(
            f.kind,
            FileKind::Macro | FileKind::Model | FileKind::Snapshot | FileKind::Test
        ) && f.text.contains("graph")
    })
}

/// The `graph` value: `nodes` and `sources` keyed by unique id.
pub fn build(nodes: &[ParsedNode], deps: &[Deps], sources: &[Source]) -> minijinja::Value {
    let mut by_id = Map::new();
    for (n, d) in nodes.iter().zip(deps) {
        by_id.insert(n.unique_id.clone(), node_entry(n, d));
    }
    let mut source_map = Map::new();
    for s in sources.iter().filter(|s| s.enabled) {
        source_map.insert(s.unique_id.clone(), source_entry(s));
    }
    minijinja::Value::from_serialize(json!({
        "nodes": by_id, "sources": source_map, "macros": {}, "exposures": {},
        "metrics": {}, "groups": {}, "semantic_models": {}, "saved_queries": {}
    }))
}

fn node_entry(n: &ParsedNode, deps: &Deps) -> Value {
    let mut meta = n
        .config
        .get("meta")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(p) = &n.patch {
        meta.extend(p.meta.clone());
    }
    json!({
        // macros read per-column metadata (`meta`, `data_type`, tags) from the graph
        "columns": columns_json(&n.columns),
        "meta": meta,
        "description": n.patch.as_ref().map(|p| p.description.as_str()).unwrap_or_default(),
        "patch_path": n.patch.as_ref().map(|p| format!("{}://{}", p.package, p.file)),
        "unique_id": n.unique_id,
        "name": n.name,
        "resource_type": n.resource_type,
        "package_name": n.package,
        "path": n.file.path,
        "original_file_path": n.file.original_file_path,
        "fqn": n.fqn,
        "database": n.database,
        "schema": n.schema,
        "alias": n.alias,
        "config": n.config,
        "tags": n.tags,
        "raw_code": n.raw_code,
        "version": n.version.as_ref().map(parse::version_key),
        "refs": n.rec.refs,
        "sources": n.rec.sources,
        "depends_on": {
            "nodes": deps.clone().unwrap_or_default(),
            "macros": n.rec.macros,
        },
        "relation_name": n.relation.as_ref().map(|r| r.render()),
    })
}

fn source_entry(s: &Source) -> Value {
    json!({
        "unique_id": s.unique_id,
        "name": s.name,
        "source_name": s.source_name,
        "resource_type": "source",
        "package_name": s.package_name,
        "original_file_path": s.original_file_path,
        "fqn": s.fqn,
        "database": s.database,
        "schema": s.schema,
        "identifier": s.identifier,
        "relation_name": s.relation_name,
        "loader": s.loader,
        "tags": s.tags,
        "meta": s.meta,
        "config": s.config,
        "description": s.description,
        "columns": columns_json(&s.columns),
    })
}
