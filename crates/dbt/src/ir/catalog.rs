//! The engine's output: every node, source and macro of a project with dbt's fields, plus the
//! per-file errors. This is what callers store; `manifest` turns it into dbt's JSON shape.

use crate::ir::error::NodeError;
use crate::jinja::context::RefCall;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Result of compiling one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CompileStatus {
    Success,
    Error,
    Skipped,
}

/// Nodes and macros a node depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DependsOn {
    pub nodes: Vec<String>,
    pub macros: Vec<String>,
}

/// A model, seed, snapshot, analysis or test.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub unique_id: String,
    pub resource_type: String,
    pub name: String,
    pub package_name: String,
    pub path: String,
    pub original_file_path: String,
    pub patch_path: Option<String>,
    pub fqn: Vec<String>,
    pub language: String,
    pub database: Option<String>,
    pub schema: String,
    pub alias: String,
    pub relation_name: Option<String>,
    pub materialized: String,
    pub enabled: bool,
    pub config: Map<String, Value>,
    pub tags: Vec<String>,
    pub meta: Map<String, Value>,
    pub description: String,
    pub columns: Vec<ColumnDef>,
    pub refs: Vec<RefCall>,
    pub sources: Vec<(String, String)>,
    pub depends_on: DependsOn,
    pub raw_code: String,
    pub compiled_code: Option<String>,
    /// sha256 of the file text after Python's `str.strip()`
    pub checksum: String,
    pub version: Option<Value>,
    pub latest_version: Option<Value>,
    pub access: String,
    pub group: Option<String>,
    pub contract_enforced: bool,
    pub compile_status: CompileStatus,
    pub compile_error: Option<String>,
    /// set when the node only compiles against a live warehouse, with the reason
    pub needs_warehouse: Option<String>,
    /// generic tests attached to this node (unique ids)
    pub tests: Vec<String>,
    /// for generic tests: `{name, kwargs, namespace}`
    pub test_metadata: Option<Value>,
    pub column_name: Option<String>,
    pub attached_node: Option<String>,
    /// for generic tests: the ephemeral models (unique ids, in `ref()` order) whose CTEs are
    /// injected into `compiled_code`, as dbt's `extra_ctes`
    #[serde(skip)]
    pub extra_ctes: Vec<String>,
    /// macros only the compile step added to `depends_on.macros` (dropped when dbt would
    /// skip the node: a skipped node keeps what parsing captured)
    #[serde(skip)]
    pub compile_macros: Vec<String>,
    /// what the node compiled to on its own, when failure propagation replaced it
    #[serde(skip)]
    pub own_outcome: Option<Box<OwnOutcome>>,
}

/// A node's own compile result, kept while `propagate` marks it skipped.
#[derive(Debug, Clone)]
pub struct OwnOutcome {
    pub status: CompileStatus,
    pub error: Option<String>,
    pub compiled_code: Option<String>,
    pub macros: Vec<String>,
}

/// A column as declared in YAML.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ColumnDef {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
    pub meta: Map<String, Value>,
    pub tags: Vec<String>,
    pub quote: Option<bool>,
    /// column constraints with dbt's defaults filled in
    pub constraints: Vec<Value>,
    /// raw test entries (`unique`, `{accepted_values: {...}}`, ...)
    #[serde(skip)]
    pub tests: Vec<Value>,
}

/// Columns as dbt's manifest and `graph` show them: a mapping by column name.
pub fn columns_json(cols: &[ColumnDef]) -> Value {
    let mut m = Map::new();
    for c in cols {
        m.insert(
            c.name.clone(),
            json!({
                "name": c.name, "description": c.description, "meta": c.meta,
                "data_type": c.data_type, "constraints": c.constraints, "quote": c.quote, "tags": c.tags
            }),
        );
    }
    Value::Object(m)
}

/// A source table.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub unique_id: String,
    pub package_name: String,
    pub source_name: String,
    pub name: String,
    pub identifier: String,
    pub database: Option<String>,
    pub schema: String,
    pub relation_name: String,
    pub loader: String,
    pub loaded_at_field: Option<String>,
    pub tags: Vec<String>,
    pub meta: Map<String, Value>,
    pub source_meta: Map<String, Value>,
    pub source_description: String,
    pub description: String,
    pub enabled: bool,
    pub original_file_path: String,
    pub fqn: Vec<String>,
    pub columns: Vec<ColumnDef>,
    pub quoting: Map<String, Value>,
    pub config: Map<String, Value>,
}

/// A macro definition.
#[derive(Debug, Clone, Serialize)]
pub struct MacroInfo {
    pub unique_id: String,
    pub name: String,
    pub package_name: String,
    pub original_file_path: String,
    pub line: usize,
}

/// A disabled model or source.
#[derive(Debug, Clone, Serialize)]
pub struct Disabled {
    pub unique_id: String,
    pub resource_type: String,
    pub original_file_path: String,
}

/// The target the project was parsed for.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub name: String,
    pub target_type: String,
    pub database: String,
    pub schema: String,
}

/// Everything the engine knows about a project.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    pub project_name: String,
    pub target: TargetInfo,
    pub nodes: BTreeMap<String, Node>,
    pub sources: BTreeMap<String, Source>,
    pub macros: BTreeMap<String, MacroInfo>,
    pub disabled: Vec<Disabled>,
    pub errors: Vec<NodeError>,
}

impl Catalog {
    /// Models only (enabled), ordered by unique id.
    pub fn models(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values().filter(|n| n.resource_type == "model")
    }
}
