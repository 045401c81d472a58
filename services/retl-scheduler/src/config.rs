//! Settings of the Reverse ETL scheduler (section `[retl_scheduler]`).

use serde::Deserialize;

/// Embedded defaults: an embedded SQLite database under `./data`.
pub const DEFAULTS: &str = r#"
[retl_scheduler]
database_url = "sqlite://data/retl-scheduler.db"
grpc_listen = "127.0.0.1:50055"
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub grpc_listen: String,
}
