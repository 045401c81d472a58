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

[retl_scheduler.executor]
enabled = true
max_concurrent_runs = 4
run_lease_ms = 30000
batch_rows = 8192
statement_timeout_seconds = 3600
warehouse_diff_work_mem_mb = 256
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
    /// `[retl_scheduler.executor]`: the executor role (pulls runs from the work queue).
    #[serde(default)]
    pub executor: ExecutorConfig,
}

/// The executor role: turned off, a replica only schedules (executors scale apart).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ExecutorConfig {
    pub enabled: bool,
    /// Runs this replica executes at once (of different syncs).
    pub max_concurrent_runs: usize,
    /// A run's lease lives this long without renewal; a run whose executor died resumes
    /// elsewhere after about this long.
    pub run_lease_ms: u64,
    /// Rows per Arrow batch read from the warehouse.
    pub batch_rows: usize,
    pub statement_timeout_seconds: u64,
    /// Where extracts are spilled (the system's temporary directory when unset).
    pub spill_dir: Option<std::path::PathBuf>,
    /// `work_mem` (MiB) of the warehouse-side diff query's transaction on PostgreSQL
    /// (`SET LOCAL`); 0 keeps the server's setting.
    pub warehouse_diff_work_mem_mb: u64,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_concurrent_runs: 4,
            run_lease_ms: 30_000,
            batch_rows: 8192,
            statement_timeout_seconds: 3600,
            spill_dir: None,
            warehouse_diff_work_mem_mb: crate::warehouse_diff::sql::DEFAULT_WORK_MEM_MB,
        }
    }
}

fn default_catalog_url() -> String {
    "http://127.0.0.1:50053".into()
}

fn default_credentials_url() -> String {
    "http://127.0.0.1:50051".into()
}

fn default_tick_poll_ms() -> u64 {
    1000
}
