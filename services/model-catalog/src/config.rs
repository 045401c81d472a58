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
    /// `[model_catalog.preview]`: timeouts of warehouse reads and the preview cache.
    #[serde(default)]
    pub preview: PreviewConfig,
}

/// Warehouse reads of the catalog (preview, describe, key checks).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PreviewConfig {
    /// Statement timeout of previews and describes (seconds).
    pub statement_timeout_seconds: u64,
    /// Statement timeout of primary-key checks, which scan the whole model (seconds).
    pub key_check_timeout_seconds: u64,
    /// How long a preview is served from memory for the same source, query and limit.
    pub cache_ttl_seconds: u64,
    /// At most this many previews are kept in memory.
    pub cache_entries: usize,
}

impl Default for PreviewConfig {
    fn default() -> Self {
        Self {
            statement_timeout_seconds: 30,
            key_check_timeout_seconds: 300,
            cache_ttl_seconds: 60,
            cache_entries: 256,
        }
    }
}

impl PreviewConfig {
    /// The settings of the gRPC edge.
    pub fn settings(&self) -> crate::grpc::preview::PreviewSettings {
        use std::time::Duration;
        crate::grpc::preview::PreviewSettings {
            statement_timeout: Duration::from_secs(self.statement_timeout_seconds.max(1)),
            key_check_timeout: Duration::from_secs(self.key_check_timeout_seconds.max(1)),
            cache_ttl: Duration::from_secs(self.cache_ttl_seconds),
            cache_entries: self.cache_entries,
        }
    }
}

fn default_credentials_url() -> String {
    "http://127.0.0.1:50051".into()
}

fn default_git_sync_url() -> String {
    "http://127.0.0.1:50052".into()
}
