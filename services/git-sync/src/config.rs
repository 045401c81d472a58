//! Settings of the git-sync service (section `[git_sync]`).

use serde::Deserialize;

pub const DEFAULTS: &str = r#"
[git_sync]
database_url = "sqlite://data/git-sync.db"
grpc_listen = "127.0.0.1:50052"
http_listen = "127.0.0.1:8082"
credentials_url = "http://127.0.0.1:50051"
service_token = ""
work_dir = "data/git-sync/work"
fetch_timeout_seconds = 120
poll_interval_seconds = 300
validate_access_on_save = true
run_lease_ms = 30000
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub grpc_listen: String,
    /// Push webhooks: `POST /webhooks/git/{connection_id}`.
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
    /// Where the credentials service answers gRPC.
    #[serde(default = "default_credentials_url")]
    pub credentials_url: String,
    /// This service's own service token, accepted by credentials (ResolveSecret, and
    /// verifying callers' tokens).
    #[serde(default)]
    pub service_token: secrecy::SecretString,
    /// One working copy per connection lives below this directory.
    #[serde(default = "default_work_dir")]
    pub work_dir: String,
    /// Upper bound on each network step of a fetch.
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout_seconds: u64,
    /// Remote head check when webhooks are missed; 0 disables polling.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_seconds: u64,
    /// Check credential, host key, repository and branch before saving settings.
    #[serde(default = "default_true")]
    pub validate_access_on_save: bool,
    /// A running sync's lease: renewed every third of it; a run whose lease lapsed
    /// (its process died) is failed as interrupted and queued again.
    #[serde(default = "default_run_lease_ms")]
    pub run_lease_ms: u64,
    /// `[git_sync.tls]`: certificate and key turn TLS on for the gRPC and webhook listeners.
    #[serde(default)]
    pub tls: backflow_platform::tls::TlsConfig,
}

fn default_run_lease_ms() -> u64 {
    30_000
}

fn default_true() -> bool {
    true
}

fn default_http_listen() -> String {
    "127.0.0.1:8082".into()
}
fn default_credentials_url() -> String {
    "http://127.0.0.1:50051".into()
}
fn default_work_dir() -> String {
    "data/git-sync/work".into()
}
fn default_fetch_timeout() -> u64 {
    120
}
fn default_poll_interval() -> u64 {
    300
}
