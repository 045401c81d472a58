//! Settings of the git-sync service (section `[git_sync]`).

use serde::Deserialize;

pub const DEFAULTS: &str = r#"
[git_sync]
database_url = "sqlite://data/git-sync.db"
grpc_listen = "127.0.0.1:50052"
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub grpc_listen: String,
}
