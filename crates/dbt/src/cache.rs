//! Incremental re-parse support. Expensive per-node work (parse-time render, relation naming,
//! compile-time render) is memoised under keys that capture everything the result depends on:
//! the node's own text, a fingerprint of all project-wide inputs (macros, YAML, project files,
//! options), and for compilation the relations of the node's dependencies. A re-parse after
//! one model changes therefore re-renders only that model (and dependents whose inputs moved).

use crate::jinja::context::Recording;
use crate::jinja::RenderError;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// A 64-bit fingerprint of anything hashable.
pub fn fingerprint<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Outcome of a parse-time render.
#[derive(Debug, Clone)]
pub struct ParseRender {
    pub rec: Recording,
    pub error: Option<(Option<usize>, String)>,
}

/// Outcome of relation naming: (database, schema, alias).
pub type Naming = Result<(String, String, String), RenderError>;

/// Outcome of a compile-time render.
#[derive(Debug, Clone)]
pub struct CompileRender {
    pub sql: Result<String, String>,
    pub ctes: Vec<String>,
    pub warehouse: Vec<String>,
}

/// Memoised per-node results; each pass replaces the maps so stale entries do not pile up.
#[derive(Debug, Default)]
pub struct Cache {
    pub parse: HashMap<u64, ParseRender>,
    pub naming: HashMap<u64, Naming>,
    pub compile: HashMap<u64, CompileRender>,
}
