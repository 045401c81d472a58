//! Settings of the dbt Cloud listener (section `[dbt_cloud_listener]`).

use serde::Deserialize;

/// Embedded defaults: an embedded SQLite database under `./data`.
pub const DEFAULTS: &str = r#"
[dbt_cloud_listener]
database_url = "sqlite://data/dbt-cloud-listener.db"
grpc_listen = "127.0.0.1:50054"
http_listen = "127.0.0.1:8084"
credentials_url = "http://127.0.0.1:50051"
service_token = ""
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub grpc_listen: String,
    /// dbt Cloud webhooks (`POST /webhooks/dbt-cloud/{subscription}`) and dbt Core
    /// notifications (`POST /dbt-core/run-results`).
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
    /// Where the credentials service answers gRPC (callers' tokens are verified there).
    #[serde(default = "default_credentials_url")]
    pub credentials_url: String,
    /// This service's own service token, accepted by credentials (`credentials.service_tokens`).
    #[serde(default)]
    pub service_token: secrecy::SecretString,
    /// `[dbt_cloud_listener.tls]`: certificate and key turn TLS on for the gRPC listener.
    #[serde(default)]
    pub tls: backflow_platform::tls::TlsConfig,
}

fn default_credentials_url() -> String {
    "http://127.0.0.1:50051".into()
}

fn default_http_listen() -> String {
    "127.0.0.1:8084".into()
}
