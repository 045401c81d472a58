//! Settings of the dbt Cloud listener (section `[dbt_cloud_listener]`).

use serde::Deserialize;

/// Embedded defaults: an embedded SQLite database under `./data`.
pub const DEFAULTS: &str = r#"
[dbt_cloud_listener]
database_url = "sqlite://data/dbt-cloud-listener.db"
grpc_listen = "127.0.0.1:50054"
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub grpc_listen: String,
}
