//! Memoised per-node results between parses. Expensive per-node work (parse-time render,
//! relation naming, compile-time render) is kept under keys that capture everything the
//! result depends on: the node's own text, a fingerprint of all project-wide inputs (macros,
//! YAML, project files, options), and for compilation the relations of the node's
//! dependencies. A rebuild after one model changes therefore re-renders only that model (and
//! dependents whose inputs moved). The result types belong to their stages (`parse::render`,
//! `parse::relations`, `compile::render`); this module only holds them.

use crate::compile::Compiled;
use crate::ir::catalog::Node;
use crate::parse::descriptions::Descriptions;
use crate::parse::relations::Naming;
use crate::parse::render::ParseRender;
use crate::parse::Workspace;
use std::collections::HashMap;
use std::sync::Arc;

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
    pub compile: HashMap<u64, Compiled>,
    pub descriptions: Descriptions,
    /// generic test nodes by (workspace, tested nodes)
    pub tests: Option<Tests>,
    /// a cache for one parse only (`parse_project`, the CLI): per-node results are moved
    /// into the catalog instead of being copied and kept for a next pass
    pub one_shot: bool,
}

impl Cache {
    /// A cache that keeps nothing for a next pass (see [`Cache::one_shot`]).
    pub fn one_shot() -> Self {
        Cache {
            one_shot: true,
            ..Cache::default()
        }
    }
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
