//! Backflow's dbt project engine: reads a dbt Core 1.7 project (YAML, config precedence, Jinja
//! macros, packages) the way dbt-core 1.7 does and produces a catalog and a dbt-shaped manifest,
//! without a warehouse or network.
//!
//! Stages run one way: `ir` (shared types) → `load` → `parse` → `compile` → `data_tests` →
//! `output`, with `incremental` (the full build and the long-lived engine) on top; `yaml`,
//! `adapters` and `jinja` are the libraries below them all (`tests/layers.rs` keeps it so).
//!
//! The public API is narrow: the [`Engine`] and [`parse_project`], [`ParseOptions`] and
//! [`Adapter`], the [`catalog`] types, manifest output, the errors, and the `parse` command
//! ([`cli`]) the binaries share. Everything else is crate-private.

pub(crate) mod adapters;
pub mod cli;
pub(crate) mod compile;
pub(crate) mod data_tests;
pub(crate) mod incremental;
pub(crate) mod ir;
pub(crate) mod jinja;
pub(crate) mod load;
pub(crate) mod output;
pub(crate) mod parse;
pub(crate) mod yaml;

pub use adapters::Adapter;
pub use incremental::engine::{Engine, ParsePath};
pub use ir::catalog::{self, Catalog};
pub use ir::error::{NodeError, ProjectError};
pub use ir::options::ParseOptions;
pub use load::safe_fs::MAX_FILE_BYTES;
pub use output::manifest::{manifest_json, write_manifest};

use std::path::Path;

/// Parses and compiles the dbt project in `dir`. Only whole-project problems are errors;
/// per-file and per-node problems are in `Catalog::errors` and on the nodes.
pub fn parse_project(dir: &Path, opts: &ParseOptions) -> Result<Catalog, ProjectError> {
    let (_, loaded) = load::load(dir)?;
    Ok(incremental::build::build_catalog(&loaded, opts))
}
