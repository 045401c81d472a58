//! Compilation of the parsed nodes, in stage order: `deps` (refs and sources resolved),
//! `graph` (the `graph` context variable, when something reads it), `render` (the
//! compile-time render), `inject` (ephemeral CTEs; text operations in `ctes`) and `assemble`
//! (the catalog node).

pub mod assemble;
pub mod ctes;
pub mod deps;
pub mod graph;
pub mod inject;
pub mod render;

pub use render::Compiled;

/// depends_on.nodes of a node, or why its refs/sources do not resolve.
pub(crate) type Deps = Result<Vec<String>, String>;
