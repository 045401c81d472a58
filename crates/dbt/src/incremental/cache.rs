//! Incremental re-parse support. Expensive per-node work (parse-time render, relation naming,
//! compile-time render) is memoised under keys that capture everything the result depends on:
//! the node's own text, a fingerprint of all project-wide inputs (macros, YAML, project files,
//! options), and for compilation the relations of the node's dependencies. A re-parse after
//! one model changes therefore re-renders only that model (and dependents whose inputs moved).

use crate::ir::catalog::Node;
use crate::jinja::context::Recording;
use crate::jinja::RenderError;
use crate::parse::Workspace;
use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

/// A 64-bit fingerprint of anything hashable.
pub fn fingerprint<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Outcome of a parse-time render, with the config and tags it produced.
#[derive(Debug, Clone)]
pub struct ParseRender {
    pub rec: Recording,
    pub error: Option<(Option<usize>, String)>,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub tags: Vec<String>,
}

/// Outcome of relation naming: (database, schema, alias).
pub type Naming = Result<(String, String, String), RenderError>;

/// Outcome of a compile-time render.
#[derive(Debug, Clone)]
pub struct CompileRender {
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

/// Rendered descriptions by (workspace, package, text), and every macro any of them called.
#[derive(Debug, Default)]
pub struct Descriptions {
    pub rendered: HashMap<u64, String>,
    pub invoked: BTreeSet<String>,
}

/// Generic test nodes of a pass (before CTE injection), under the key they were built for,
/// with the macros each one's compilation called.
#[derive(Debug, Clone)]
pub struct Tests {
    pub key: u64,
    pub nodes: Vec<Node>,
    pub invoked: Vec<Vec<String>>,
}

/// Memoised per-node results; each pass replaces the maps so stale entries do not pile up.
#[derive(Default)]
pub struct Cache {
    /// the workspace (macros, YAML, environment) of the last pass, by fingerprint
    pub workspace: Option<Arc<Workspace>>,
    pub parse: HashMap<u64, ParseRender>,
    pub naming: HashMap<u64, Naming>,
    pub compile: HashMap<u64, CompileRender>,
    pub descriptions: Descriptions,
    /// generic test nodes by (workspace, tested nodes)
    pub tests: Option<Tests>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("parse", &self.parse.len())
            .field("naming", &self.naming.len())
            .field("compile", &self.compile.len())
            .finish()
    }
}
