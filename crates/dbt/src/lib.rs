//! Backflow's dbt project engine: reads a dbt Core 1.7 project (YAML, config precedence, Jinja
//! macros, packages) the way dbt-core 1.7 does and produces a catalog and a dbt-shaped manifest,
//! without a warehouse or network.
//!
//! Stages run one way: `ir` (shared types) → `load` → `parse` → `compile` → `data_tests` →
//! `output`, with `incremental` (the long-lived engine) on top; `adapters`, `yaml` and `jinja`
//! are the libraries they share.

pub mod adapters;
pub mod cli;
pub mod compile;
pub mod data_tests;
pub mod incremental;
pub mod ir;
pub mod jinja;
pub mod load;
pub mod output;
pub mod parse;
pub mod yaml;

pub use adapters::Adapter;
pub use incremental::engine::{Engine, ParsePath};
pub use ir::catalog::{self, Catalog};
pub use ir::error::{NodeError, ProjectError};
pub use ir::options::ParseOptions;
pub use load::safe_fs;
pub use output::manifest::manifest_json;

use std::path::Path;

/// Parses and compiles the dbt project in `dir`. Only whole-project problems are errors;
/// per-file and per-node problems are in `Catalog::errors` and on the nodes.
pub fn parse_project(dir: &Path, opts: &ParseOptions) -> Result<Catalog, ProjectError> {
    let (_, loaded) = load::load(dir)?;
    Ok(compile::build_catalog(&loaded, opts))
}
