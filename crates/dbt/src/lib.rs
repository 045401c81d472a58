//! Backflow's dbt project engine: reads a dbt Core 1.7 project (YAML, config precedence, Jinja
//! macros, packages) the way dbt-core 1.7 does and produces a catalog and a dbt-shaped manifest,
//! without a warehouse or network.

pub mod adapters;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod compile;
pub mod config;
pub mod engine;
pub mod error;
pub mod graph;
pub mod incremental;
pub mod jinja;
pub mod loader;
pub mod manifest;
pub mod naming;
pub mod options;
pub mod parser;
pub mod pipeline;
pub mod project;
pub mod project_render;
pub(crate) mod propagate;
pub mod properties;
pub mod safe_fs;
pub mod static_refs;
pub mod test_macro_config;
pub mod tests_compile;
pub mod tests_gen;
pub mod yaml;

pub use adapters::Adapter;
pub use catalog::Catalog;
pub use engine::{Engine, ParsePath};
pub use error::{NodeError, ProjectError};
pub use manifest::manifest_json;
pub use options::ParseOptions;

use std::path::Path;

/// Parses and compiles the dbt project in `dir`. Only whole-project problems are errors;
/// per-file and per-node problems are in `Catalog::errors` and on the nodes.
pub fn parse_project(dir: &Path, opts: &ParseOptions) -> Result<Catalog, ProjectError> {
    let (_, loaded) = loader::load(dir)?;
    Ok(pipeline::build_catalog(&loaded, opts))
}
