//! dbt manifest (schema v11) shaped JSON for a catalog, so dbt tooling and the conformance
//! suite can compare node by node. Field names follow dbt's; extra Backflow facts
//! (compile status, warehouse needs) are namespaced under `backflow`.

use crate::ir::catalog::{columns_json, Catalog, ColumnDef, CompileStatus, Node, Source};
use crate::jinja::context::RefCall;
use rayon::prelude::*;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// dbt's config dict: hooks as `pre-hook`/`post-hook` lists of `{sql, transaction, index}`
/// (dbt leaves `index` null for hooks from configs).
struct ConfigOut<'a>(&'a Map<String, Value>);

impl Serialize for ConfigOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            match v {
                Value::Array(items) if k == "pre-hook" || k == "post-hook" => {
                    m.serialize_entry(k, &Hooks(items))?
                }
                _ => m.serialize_entry(k, v)?,
            }
        }
        m.end()
    }
}

struct Hooks<'a>(&'a [Value]);

impl Serialize for Hooks<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut seq = ser.serialize_seq(Some(self.0.len()))?;
        for h in self.0 {
            match h {
                Value::String(sql) => seq.serialize_element(&Hook {
                    sql,
                    transaction: (),
                    index: None,
                })?,
                other => seq.serialize_element(other)?,
            }
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Hook<'a> {
    sql: &'a str,
    #[serde(serialize_with = "always_true")]
    transaction: (),
    index: Option<()>,
}

/// A node's `docs`: its config's `docs` over dbt's defaults (`show`, `node_color` first).
struct DocsOut<'a>(Option<&'a Map<String, Value>>);

impl Serialize for DocsOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        let given = |k: &str| self.0.and_then(|d| d.get(k));
        m.serialize_entry("show", given("show").unwrap_or(&Value::Bool(true)))?;
        m.serialize_entry("node_color", given("node_color").unwrap_or(&Value::Null))?;
        for (k, v) in self.0.into_iter().flatten() {
            if k != "show" && k != "node_color" {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// Columns as a mapping by name; a name given twice keeps its first place and its last
/// definition (as inserting into dbt's dict does).
struct ColumnsOut<'a>(&'a [ColumnDef]);

impl Serialize for ColumnsOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let cols = self.0;
        let mut m = ser.serialize_map(None)?;
        for (i, c) in cols.iter().enumerate() {
            if cols[..i].iter().any(|p| p.name == c.name) {
                continue;
            }
            let last = cols.iter().rev().find(|p| p.name == c.name).unwrap_or(c);
            m.serialize_entry(&c.name, &ColumnOut(last))?;
        }
        m.end()
    }
}

struct ColumnOut<'a>(&'a ColumnDef);

impl Serialize for ColumnOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut m = ser.serialize_map(Some(7))?;
        m.serialize_entry("name", &c.name)?;
        m.serialize_entry("description", &c.description)?;
        m.serialize_entry("meta", &c.meta)?;
        m.serialize_entry("data_type", &c.data_type)?;
        m.serialize_entry("constraints", &c.constraints)?;
        m.serialize_entry("quote", &c.quote)?;
        m.serialize_entry("tags", &c.tags)?;
        m.end()
    }
}

struct RefsOut<'a>(&'a [RefCall]);

impl Serialize for RefsOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut seq = ser.serialize_seq(Some(self.0.len()))?;
        for r in self.0 {
            seq.serialize_element(&RefOut {
                name: &r.name,
                package: &r.package,
                version: r.version.as_deref().map(VersionOut),
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct RefOut<'a> {
    name: &'a str,
    package: &'a Option<String>,
    version: Option<VersionOut<'a>>,
}

/// `version=1` is recorded as given; we keep numbers numeric.
struct VersionOut<'a>(&'a str);

impl Serialize for VersionOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self.0.parse::<i64>() {
            Ok(n) => ser.serialize_i64(n),
            Err(_) => ser.serialize_str(self.0),
        }
    }
}

fn always_true<S: Serializer>(_: &(), ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_bool(true)
}

#[derive(Serialize)]
struct Checksum<'a> {
    name: &'a str,
    checksum: &'a str,
}

#[derive(Serialize)]
struct BackflowOut<'a> {
    compile_status: CompileStatus,
    compile_error: &'a Option<String>,
    needs_warehouse: &'a Option<String>,
    tests: &'a [String],
}

#[derive(Serialize)]
struct Contract {
    enforced: bool,
    #[serde(serialize_with = "always_true")]
    alias_types: (),
    checksum: Option<()>,
}

/// One node in the manifest's shape, serialised straight from the catalog (no JSON tree
/// is built: the 3,000-model manifest is tens of megabytes of mostly borrowed text).
struct NodeOut<'a>(&'a Node);

impl Serialize for NodeOut<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        let test = n.resource_type == "test";
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("unique_id", &n.unique_id)?;
        m.serialize_entry("resource_type", &n.resource_type)?;
        m.serialize_entry("name", &n.name)?;
        m.serialize_entry("package_name", &n.package_name)?;
        m.serialize_entry("path", &n.path)?;
        m.serialize_entry("original_file_path", &n.original_file_path)?;
        m.serialize_entry("patch_path", &n.patch_path)?;
        m.serialize_entry("fqn", &n.fqn)?;
        m.serialize_entry("language", &n.language)?;
        m.serialize_entry("database", &n.database)?;
        m.serialize_entry("schema", &n.schema)?;
        m.serialize_entry("alias", &n.alias)?;
        m.serialize_entry("relation_name", &n.relation_name)?;
        m.serialize_entry("config", &ConfigOut(&n.config))?;
        m.serialize_entry("tags", &n.tags)?;
        m.serialize_entry("meta", &n.meta)?;
        m.serialize_entry("description", &n.description)?;
        m.serialize_entry("columns", &ColumnsOut(&n.columns))?;
        m.serialize_entry("refs", &RefsOut(&n.refs))?;
        m.serialize_entry("sources", &n.sources)?;
        m.serialize_entry("depends_on", &n.depends_on)?;
        m.serialize_entry("raw_code", &n.raw_code)?;
        let checksum = if test {
            Checksum {
                name: "none",
                checksum: "",
            }
        } else {
            Checksum {
                name: "sha256",
                checksum: &n.checksum,
            }
        };
        m.serialize_entry("checksum", &checksum)?;
        let docs = match n.config.get("docs") {
            Some(Value::Object(d)) => Some(d),
            _ => None,
        };
        m.serialize_entry("docs", &DocsOut(docs))?;
        m.serialize_entry(
            "backflow",
            &BackflowOut {
                compile_status: n.compile_status,
                compile_error: &n.compile_error,
                needs_warehouse: &n.needs_warehouse,
                tests: &n.tests,
            },
        )?;
        if n.resource_type == "model" {
            m.serialize_entry("version", n.version.as_ref().unwrap_or(&Value::Null))?;
            m.serialize_entry(
                "latest_version",
                n.latest_version.as_ref().unwrap_or(&Value::Null),
            )?;
            m.serialize_entry("access", &n.access)?;
            m.serialize_entry("group", &n.group)?;
            m.serialize_entry(
                "contract",
                &Contract {
                    enforced: n.contract_enforced,
                    alias_types: (),
                    checksum: None,
                },
            )?;
            m.serialize_entry("constraints", &[(); 0])?;
        }
        if n.resource_type != "seed" {
            let compiled = n.compiled_code.is_some();
            m.serialize_entry("compiled", &compiled)?;
            m.serialize_entry("compiled_code", &n.compiled_code)?;
            m.serialize_entry("extra_ctes_injected", &compiled)?;
        }
        if test {
            m.serialize_entry(
                "test_metadata",
                n.test_metadata.as_ref().unwrap_or(&Value::Null),
            )?;
            m.serialize_entry("column_name", &n.column_name)?;
            m.serialize_entry("attached_node", &n.attached_node)?;
        }
        m.end()
    }
}

fn node_json(n: &Node) -> Value {
    serde_json::to_value(NodeOut(n)).unwrap_or(Value::Null)
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

/// Nodes serialised per parallel task.
const CHUNK: usize = 256;

/// Streams the same document as [`manifest_json`] node by node, without building the whole
/// JSON tree in memory (a 3,000-model manifest is tens of megabytes).
pub fn write_manifest<W: std::io::Write>(catalog: &Catalog, out: &mut W) -> std::io::Result<()> {
    let head = manifest_parts(catalog, false);
    out.write_all(b"{\"metadata\":")?;
    serde_json::to_writer(&mut *out, &head["metadata"])?;
    out.write_all(b",\"nodes\":{")?;
    let nodes: Vec<(&String, &Node)> = catalog.nodes.iter().collect();
    // nodes are serialised in parallel, in chunks, and written in order, a window of chunks
    // at a time (so the whole document is never in memory)
    let mut first = true;
    for window in nodes.chunks(CHUNK * 16) {
        let chunks: Vec<std::io::Result<Vec<u8>>> = window
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut buf = Vec::with_capacity(chunk.len() * 4096);
                for (id, n) in chunk {
                    serde_json::to_writer(&mut buf, id)?;
                    buf.push(b':');
                    serde_json::to_writer(&mut buf, &NodeOut(n))?;
                    buf.push(b',');
                }
                Ok(buf)
            })
            .collect();
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
