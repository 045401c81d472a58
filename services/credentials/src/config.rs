//! Settings of the credentials service (section `[credentials]`).

use backflow_platform::tls::TlsConfig;
use serde::Deserialize;

/// Embedded defaults: the embedded SQLite database and a dev master key under `./data`.
pub const DEFAULTS: &str = r#"
[credentials]
database_url = "sqlite://data/credentials.db"
grpc_listen = "127.0.0.1:50051"
master_key_file = "data/master.key"
create_master_key_if_missing = false
service_tokens = []
github_http_timeout_ms = 10000
github_token_refresh_margin_s = 300
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub grpc_listen: String,
    /// 32 random bytes, base64 or hex encoded, or raw. Mounted from a Secret in production.
    pub master_key_file: String,
    /// Base64 master key given directly (e.g. `BACKFLOW_CREDENTIALS__MASTER_KEY`); wins over the file.
    #[serde(default)]
    pub master_key: secrecy::SecretString,
    /// Development only: generate the key file if it does not exist.
    #[serde(default)]
    pub create_master_key_if_missing: bool,
    /// Bearer tokens of services allowed to call ResolveSecret.
    #[serde(default)]
    pub service_tokens: Vec<secrecy::SecretString>,
    /// Bound on each GitHub installation-token exchange (connect and response).
    #[serde(default = "default_github_http_timeout_ms")]
    pub github_http_timeout_ms: u64,
    /// Installation tokens are reissued this long before they expire.
    #[serde(default = "default_github_token_refresh_margin_s")]
    pub github_token_refresh_margin_s: u64,
    /// `[credentials.tls]`: certificate and key turn TLS on for its gRPC listener.
    #[serde(default)]
    pub tls: TlsConfig,
}

fn default_github_http_timeout_ms() -> u64 {
    10_000
}

fn default_github_token_refresh_margin_s() -> u64 {
    300
}
