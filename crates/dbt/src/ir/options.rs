//! Inputs of a parse that do not come from the project: adapter, target, CLI vars, environment.

use crate::adapters::Adapter;
use serde_json::Value;
use std::collections::BTreeMap;

/// How to parse: what dbt would take from profiles.yml, `--vars` and the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseOptions {
    pub target_schema: String,
    pub target_name: String,
    /// the warehouse adapter (the profile's `type`), postgres by default
    pub adapter: Adapter,
    /// the target's database (BigQuery: project, Databricks: catalog)
    pub target_database: String,
    pub vars: BTreeMap<String, Value>,
    pub env: BTreeMap<String, String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            target_schema: "analytics".into(),
            target_name: "dev".into(),
            adapter: Adapter::Postgres,
            target_database: "warehouse".into(),
            vars: BTreeMap::new(),
            env: BTreeMap::new(),
        }
    }
}

impl ParseOptions {
    /// The `target` object of the Jinja context.
    pub fn target_map(&self) -> serde_json::Map<String, Value> {
        self.adapter.target_map(
            &self.target_name,
            &self.target_database,
            &self.target_schema,
        )
    }
}
