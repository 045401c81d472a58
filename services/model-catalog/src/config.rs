//! Settings of the model-catalog service (section `[model_catalog]`).

use serde::Deserialize;

pub const DEFAULTS: &str = r#"
[model_catalog]
database_url = "sqlite://data/model-catalog.db"
grpc_listen = "127.0.0.1:50053"
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub grpc_listen: String,
}
