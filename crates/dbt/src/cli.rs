//! The `dbt parse` command: clap arguments and the function the `backflow` binary (and the
//! standalone `backflow-dbt` binary) call. Prints the dbt-manifest-shaped JSON.

use crate::adapters::Adapter;
use crate::incremental::build::build_state;
use crate::incremental::cache::Cache;
use crate::ir::error::ProjectError;
use crate::ir::options::ParseOptions;
use crate::output::manifest::{manifest_json, write_manifest};
use crate::yaml;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// `parse DIR --target-schema S [--var k=v] [--vars '{yaml}']`
#[derive(Debug, Clone, clap::Args)]
pub struct ParseCommand {
    /// dbt project directory (must contain dbt_project.yml)
    pub dir: PathBuf,
    /// dbt's target schema (the connection's default schema)
    #[arg(long)]
    pub target_schema: String,
    #[arg(long, default_value = "dev")]
    pub target_name: String,
    /// the warehouse adapter: postgres, redshift, snowflake, bigquery or databricks
    #[arg(long, alias = "target-type", default_value = "postgres")]
    pub adapter: Adapter,
    /// the target's database (BigQuery: project, Databricks: catalog)
    #[arg(long, default_value = "warehouse")]
    pub target_database: String,
    /// one variable, `key=value`; the value is read as YAML (repeatable)
    #[arg(long = "var")]
    pub var: Vec<String>,
    /// all variables as a YAML mapping, like dbt's `--vars`
    #[arg(long)]
    pub vars: Option<String>,
    /// pretty-print the JSON
    #[arg(long)]
    pub pretty: bool,
}

/// Builds parse options from the command and the process environment.
pub fn options_from(cmd: &ParseCommand) -> Result<ParseOptions, ProjectError> {
    let mut vars = BTreeMap::new();
    if let Some(text) = &cmd.vars {
        match yaml::load(text).map_err(|e| ProjectError::InvalidVars(e.to_string()))? {
            Value::Object(m) => vars.extend(m),
            Value::Null => {}
            _ => return Err(ProjectError::InvalidVars("--vars must be a mapping".into())),
        }
    }
    for kv in &cmd.var {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| ProjectError::InvalidVars(format!("expected key=value, got '{kv}'")))?;
        let value = yaml::load(v).map_err(|e| ProjectError::InvalidVars(format!("{k}: {e}")))?;
        vars.insert(k.trim().to_string(), value);
    }
    Ok(ParseOptions {
        target_schema: cmd.target_schema.clone(),
        target_name: cmd.target_name.clone(),
        adapter: cmd.adapter,
        target_database: cmd.target_database.clone(),
        vars,
        env: std::env::vars().collect(),
    })
}

/// Runs the parse and returns the manifest JSON text.
pub fn run_parse(cmd: &ParseCommand) -> Result<String, ProjectError> {
    let mut out = Vec::new();
    run_parse_to(cmd, &mut out)?;
    String::from_utf8(out).map_err(|e| ProjectError::Serialize(e.to_string()))
}

/// Runs the parse and writes the manifest JSON text to `out` as it is serialised. For a
/// process that exits right afterwards: what the parse built is never freed (tearing down
/// hundreds of thousands of small allocations would only cost time before the exit).
pub fn run_parse_to<W: Write>(cmd: &ParseCommand, out: &mut W) -> Result<(), ProjectError> {
    let opts = options_from(cmd)?;
    let (_, loaded) = crate::load::load(&cmd.dir)?;
    let mut cache = Cache::one_shot();
    let state = build_state(&loaded, &opts, &mut cache);
    let catalog = &state.catalog;
    let io = |source| ProjectError::Io {
        path: cmd.dir.clone(),
        source,
    };
    let written = if cmd.pretty {
        serde_json::to_writer_pretty(&mut *out, &manifest_json(catalog))
            .map_err(|e| ProjectError::Serialize(e.to_string()))
    } else {
        write_manifest(catalog, out).map_err(io)
    };
    std::mem::forget((loaded, cache, state));
    written
}
