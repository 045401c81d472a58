//! The parse stages, in the order a build runs them: `workspace` (macros, docs, YAML, the
//! Jinja environment), `discover` (the nodes each file defines), `render` (the parse-time
//! render that records refs, sources and `config()` calls; config precedence in
//! `node_config`), `relations` (database, schema, alias via `naming`), `sources` and
//! `descriptions`. Produces `ParsedNode`s ready for compilation.

pub mod config;
pub mod descriptions;
pub mod discover;
pub mod foreign_patch;
pub mod naming;
pub mod node_config;
pub mod project_render;
pub mod properties;
pub mod relations;
pub mod render;
pub mod sources;
pub mod static_refs;
pub mod test_macro_config;
pub mod workspace;

pub use workspace::Workspace;

use crate::ir::catalog::ColumnDef;
use crate::jinja::context::Recording;
use crate::jinja::relation::Relation;
use crate::load::SourceFile;
use crate::parse::properties::NodePatch;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A node after the parse-time render, before compilation.
#[derive(Debug, Clone)]
pub struct ParsedNode {
    /// fingerprint of everything the parse-time result depends on
    pub parse_key: u64,
    pub unique_id: String,
    pub resource_type: &'static str,
    pub name: String,
    pub package: String,
    pub project_idx: usize,
    pub file: Arc<SourceFile>,
    pub raw_code: String,
    pub fqn: Vec<String>,
    pub version: Option<Value>,
    pub latest_version: Option<Value>,
    pub patch: Option<NodePatch>,
    pub version_config: Map<String, Value>,
    pub columns: Vec<ColumnDef>,
    pub config: Map<String, Value>,
    pub tags: Vec<String>,
    pub rec: Recording,
    pub parse_error: Option<(Option<usize>, String)>,
    pub relation: Option<Relation>,
    pub database: Option<String>,
    pub schema: String,
    pub alias: String,
}

impl ParsedNode {
    /// Whether the node's config leaves it enabled (the default).
    pub fn is_enabled(&self) -> bool {
        self.config
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }
}

/// `1` → "1", `1.5` → "1.5", `"a"` → "a": how dbt prints a version in ids and names.
pub fn version_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
