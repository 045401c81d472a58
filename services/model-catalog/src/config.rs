//! Settings of the model-catalog service (section `[model_catalog]`).

use serde::Deserialize;

pub const DEFAULTS: &str = r#"
[model_catalog]
database_url = "sqlite://data/model-catalog.db"
grpc_listen = "127.0.0.1:50053"
git_sync_url = "http://127.0.0.1:50052"
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub grpc_listen: String,
    /// git-sync's gRPC address, to fetch snapshots announced by reference.
    #[serde(default = "default_git_sync_url")]
    pub git_sync_url: String,
}

fn default_git_sync_url() -> String {
    "http://127.0.0.1:50052".into()
}
