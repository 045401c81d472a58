//! Settings of the model-catalog service (section `[model_catalog]`).

use serde::Deserialize;

pub const DEFAULTS: &str = r#"
[model_catalog]
database_url = "sqlite://data/model-catalog.db"
grpc_listen = "127.0.0.1:50053"
git_sync_url = "http://127.0.0.1:50052"
credentials_url = "http://127.0.0.1:50051"
service_token = ""
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub grpc_listen: String,
    /// git-sync's gRPC address, to fetch snapshots announced by reference.
    #[serde(default = "default_git_sync_url")]
    pub git_sync_url: String,
    /// Where the credentials service answers gRPC (callers' tokens are verified there).
    #[serde(default = "default_credentials_url")]
    pub credentials_url: String,
    /// This service's own service token, accepted by credentials (`credentials.service_tokens`).
    #[serde(default)]
    pub service_token: secrecy::SecretString,
    /// `[model_catalog.tls]`: certificate and key turn TLS on for the gRPC listener.
    #[serde(default)]
    pub tls: backflow_platform::tls::TlsConfig,
}

fn default_credentials_url() -> String {
    "http://127.0.0.1:50051".into()
}

fn default_git_sync_url() -> String {
    "http://127.0.0.1:50052".into()
}
