//! Inputs of a parse that do not come from the project: target, CLI vars, environment.

use serde_json::Value;
use std::collections::BTreeMap;

/// How to parse: what dbt would take from profiles.yml, `--vars` and the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseOptions {
    pub target_schema: String,
    pub target_name: String,
    pub target_type: String,
    pub target_database: String,
    pub vars: BTreeMap<String, Value>,
    pub env: BTreeMap<String, String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            target_schema: "analytics".into(),
            target_name: "dev".into(),
            target_type: "postgres".into(),
            target_database: "warehouse".into(),
            vars: BTreeMap::new(),
            env: BTreeMap::new(),
        }
    }
}

impl ParseOptions {
    /// The `target` object of the Jinja context.
    pub fn target_map(&self) -> serde_json::Map<String, Value> {
        let v = serde_json::json!({
            "name": self.target_name,
            "target_name": self.target_name,
            "type": self.target_type,
            "schema": self.target_schema,
            "database": self.target_database,
            "dbname": self.target_database,
            "profile_name": "default",
            "user": "dbt",
            "threads": 4,
        });
        match v {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }
}
