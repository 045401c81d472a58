//! Backflow's dbt project engine: reads a dbt Core 1.7 project (YAML, config precedence, Jinja
//! macros, packages) the way dbt-core 1.7 does and produces a catalog and a dbt-shaped manifest,
//! without a warehouse or network.

pub mod error;
pub mod safe_fs;
pub mod yaml;

pub use error::{NodeError, ProjectError};
