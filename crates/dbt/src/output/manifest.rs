//! dbt manifest (schema v11) shaped JSON for a catalog, so dbt tooling and the conformance
//! suite can compare node by node. Field names follow dbt's; extra Backflow facts
//! (compile status, warehouse needs) are namespaced under `backflow`.

use crate::ir::catalog::{columns_json, Catalog, Node, Source};
use rayon::prelude::*;
use serde_json::{json, Map, Value};

/// dbt's config dict: hooks as `pre-hook`/`post-hook` lists of `{sql, transaction, index}`
/// (dbt leaves `index` null for hooks from configs).
fn config_json(cfg: &Map<String, Value>) -> Value {
    let mut out = cfg.clone();
    for key in ["pre-hook", "post-hook"] {
        if let Some(Value::Array(items)) = cfg.get(key) {
            let hooks: Vec<Value> = items
                .iter()
                .map(|h| match h {
                    Value::String(sql) => json!({"sql": sql, "transaction": true, "index": null}),
                    other => other.clone(),
                })
                .collect();
            out.insert(key.to_string(), Value::Array(hooks));
        }
    }
    Value::Object(out)
}

/// A node's `docs`: its config's `docs` over dbt's defaults.
fn node_docs(cfg: &Map<String, Value>) -> Value {
    let mut docs = json!({"show": true, "node_color": null});
    if let (Value::Object(d), Some(Value::Object(c))) = (&mut docs, cfg.get("docs")) {
        for (k, v) in c {
            d.insert(k.clone(), v.clone());
        }
    }
    docs
}

fn node_json(n: &Node) -> Value {
    let refs: Vec<Value> = n
        .refs
        .iter()
        .map(|r| json!({"name": r.name, "package": r.package, "version": r.version.as_ref().map(|v| version_value(v))}))
        .collect();
    let sources: Vec<Value> = n.sources.iter().map(|(s, t)| json!([s, t])).collect();
    let mut v = json!({
        "unique_id": n.unique_id,
        "resource_type": n.resource_type,
        "name": n.name,
        "package_name": n.package_name,
        "path": n.path,
        "original_file_path": n.original_file_path,
        "patch_path": n.patch_path,
        "fqn": n.fqn,
        "language": n.language,
        "database": n.database,
        "schema": n.schema,
        "alias": n.alias,
        "relation_name": n.relation_name,
        "config": config_json(&n.config),
        "tags": n.tags,
        "meta": n.meta,
        "description": n.description,
        "columns": columns_json(&n.columns),
        "refs": refs,
        "sources": sources,
        "depends_on": {"nodes": n.depends_on.nodes, "macros": n.depends_on.macros},
        "raw_code": n.raw_code,
        "checksum": {"name": "sha256", "checksum": n.checksum},
        "docs": node_docs(&n.config),
        "backflow": {
            "compile_status": n.compile_status,
            "compile_error": n.compile_error,
            "needs_warehouse": n.needs_warehouse,
            "tests": n.tests,
        },
    });
    let Value::Object(m) = &mut v else { return v };
    if n.resource_type == "model" {
        m.insert("version".into(), n.version.clone().unwrap_or(Value::Null));
        m.insert(
            "latest_version".into(),
            n.latest_version.clone().unwrap_or(Value::Null),
        );
        m.insert("access".into(), Value::from(n.access.clone()));
        m.insert(
            "group".into(),
            n.group.clone().map_or(Value::Null, Value::from),
        );
        m.insert(
            "contract".into(),
            json!({"enforced": n.contract_enforced, "alias_types": true, "checksum": null}),
        );
        m.insert("constraints".into(), json!([]));
    }
    if n.resource_type != "seed" {
        m.insert("compiled".into(), Value::from(n.compiled_code.is_some()));
        m.insert(
            "compiled_code".into(),
            n.compiled_code.clone().map_or(Value::Null, Value::from),
        );
        m.insert(
            "extra_ctes_injected".into(),
            Value::from(n.compiled_code.is_some()),
        );
    }
    if n.resource_type == "test" {
        m.insert("checksum".into(), json!({"name": "none", "checksum": ""}));
        m.insert(
            "test_metadata".into(),
            n.test_metadata.clone().unwrap_or(Value::Null),
        );
        m.insert(
            "column_name".into(),
            n.column_name.clone().map_or(Value::Null, Value::from),
        );
        m.insert(
            "attached_node".into(),
            n.attached_node.clone().map_or(Value::Null, Value::from),
        );
    }
    v
}

/// `version=1` is recorded as given; we keep numbers numeric.
fn version_value(v: &str) -> Value {
    v.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(v))
}

fn source_json(s: &Source) -> Value {
    json!({
        "unique_id": s.unique_id,
        "resource_type": "source",
        "package_name": s.package_name,
        "source_name": s.source_name,
        "name": s.name,
        "identifier": s.identifier,
        "database": s.database,
        "schema": s.schema,
        "relation_name": s.relation_name,
        "loader": s.loader,
        "loaded_at_field": s.loaded_at_field,
        "tags": s.tags,
        "meta": s.meta,
        "source_meta": s.source_meta,
        "source_description": s.source_description,
        "description": s.description,
        "original_file_path": s.original_file_path,
        "path": s.original_file_path,
        "fqn": s.fqn,
        "columns": columns_json(&s.columns),
        "quoting": s.quoting,
        "config": s.config,
    })
}

/// Streams the same document as [`manifest_json`] node by node, without building the whole
/// JSON tree in memory (a 3,000-model manifest is tens of megabytes).
pub fn write_manifest<W: std::io::Write>(catalog: &Catalog, out: &mut W) -> std::io::Result<()> {
    let head = manifest_parts(catalog, false);
    out.write_all(b"{\"metadata\":")?;
    serde_json::to_writer(&mut *out, &head["metadata"])?;
    out.write_all(b",\"nodes\":{")?;
    let nodes: Vec<(&String, &Node)> = catalog.nodes.iter().collect();
    // nodes are serialised in parallel, in chunks, and written in order
    let chunks: Vec<std::io::Result<Vec<u8>>> = nodes
        .par_chunks(256)
        .map(|chunk| {
            let mut buf = Vec::with_capacity(chunk.len() * 2048);
            for (id, n) in chunk {
                serde_json::to_writer(&mut buf, id)?;
                buf.push(b':');
                serde_json::to_writer(&mut buf, &node_json(n))?;
                buf.push(b',');
            }
            Ok(buf)
        })
        .collect();
    let mut first = true;
    for chunk in chunks {
        let chunk = chunk?;
        let body = chunk.strip_suffix(b",").unwrap_or(&chunk);
        if body.is_empty() {
            continue;
        }
        if !first {
            out.write_all(b",")?;
        }
        out.write_all(body)?;
        first = false;
    }
    out.write_all(b"}")?;
    for key in ["sources", "macros", "disabled", "errors"] {
        write!(out, ",\"{key}\":")?;
        serde_json::to_writer(&mut *out, &head[key])?;
    }
    out.write_all(b"}")
}

/// The catalog as a dbt manifest: `metadata`, `nodes`, `sources`, `macros`, `disabled`, plus
/// `errors` with every per-file problem.
pub fn manifest_json(catalog: &Catalog) -> Value {
    manifest_parts(catalog, true)
}

fn manifest_parts(catalog: &Catalog, with_nodes: bool) -> Value {
    let nodes: Map<String, Value> = if with_nodes {
        catalog
            .nodes
            .iter()
            .map(|(k, n)| (k.clone(), node_json(n)))
            .collect()
    } else {
        Map::new()
    };
    let sources: Map<String, Value> = catalog
        .sources
        .iter()
        .map(|(k, s)| (k.clone(), source_json(s)))
        .collect();
    let macros: Map<String, Value> = catalog
        .macros
        .iter()
        .map(|(k, m)| {
            (
                k.clone(),
                json!({
                    "unique_id": m.unique_id, "name": m.name, "package_name": m.package_name,
                    "original_file_path": m.original_file_path, "resource_type": "macro"
                }),
            )
        })
        .collect();
    let mut disabled = Map::new();
    for d in &catalog.disabled {
        disabled.insert(
            d.unique_id.clone(),
            json!([{"unique_id": d.unique_id, "resource_type": d.resource_type, "original_file_path": d.original_file_path}]),
        );
    }
    json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v11.json",
            "dbt_version": "1.7.20",
            "generator": "backflow-dbt",
            "project_name": catalog.project_name,
            "adapter_type": catalog.target.target_type,
            "target": catalog.target,
        },
        "nodes": nodes,
        "sources": sources,
        "macros": macros,
        "disabled": disabled,
        "errors": catalog.errors,
    })
}
