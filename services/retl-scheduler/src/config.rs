//! Settings of the Reverse ETL scheduler (section `[retl_scheduler]`).

use serde::Deserialize;

/// Embedded defaults: an embedded SQLite database under `./data`.
pub const DEFAULTS: &str = r#"
[retl_scheduler]
database_url = "sqlite://data/retl-scheduler.db"
grpc_listen = "127.0.0.1:50055"
credentials_url = "http://127.0.0.1:50051"
catalog_url = "http://127.0.0.1:50053"
service_token = ""
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub grpc_listen: String,
    /// Where the credentials service answers gRPC (callers' tokens are verified there).
    #[serde(default = "default_credentials_url")]
    pub credentials_url: String,
    /// Where the model catalog answers gRPC (Reverse ETL models are checked there).
    #[serde(default = "default_catalog_url")]
    pub catalog_url: String,
    /// How often the ticker looks for due schedule ticks, in milliseconds.
    #[serde(default = "default_tick_poll_ms")]
    pub tick_poll_ms: u64,
    /// This service's own service token, accepted by credentials (`credentials.service_tokens`).
    #[serde(default)]
    pub service_token: secrecy::SecretString,
    /// `[retl_scheduler.tls]`: certificate and key turn TLS on for the gRPC listener.
    #[serde(default)]
    pub tls: backflow_platform::tls::TlsConfig,
}

fn default_credentials_url() -> String {
    "http://127.0.0.1:50051".into()
}

fn default_catalog_url() -> String {
    "http://127.0.0.1:50053".into()
}

fn default_tick_poll_ms() -> u64 {
    1000
}
