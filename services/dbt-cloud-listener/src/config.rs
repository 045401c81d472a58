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
public_url = ""
reconcile_interval_secs = 300
reconcile_lookback_secs = 86400
allowed_access_urls = []
artifact_fetch_retry_ms = [1000, 5000, 15000, 60000, 300000, 900000]
artifact_fetch_not_found_attempts = 3
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
    /// The address dbt Cloud reaches `http_listen` at from the internet, e.g.
    /// `https://backflow.example.com`: webhook subscriptions point at
    /// `<public_url>/webhooks/dbt-cloud/<id>`. Empty: no subscription is created (each
    /// one waiting says so in `backflow dbt-cloud subscriptions`), and only
    /// reconciliation by polling triggers syncs.
    #[serde(default)]
    pub public_url: String,
    /// How often the runs of jobs that syncs wait on are polled for successful runs whose
    /// webhook never arrived, and subscriptions are checked against dbt Cloud. 0 = never.
    #[serde(default = "default_reconcile_interval_secs")]
    pub reconcile_interval_secs: u64,
    /// How far back reconciliation looks for a missed run (never before the job was
    /// first waited on).
    #[serde(default = "default_reconcile_lookback_secs")]
    pub reconcile_lookback_secs: u64,
    /// Access URLs accepted besides dbt's own domains, each an exact origin such as
    /// `https://dbt.internal.example.com` (a single-tenant or proxied dbt Cloud). A
    /// list, or one comma-separated string (`BACKFLOW_DBT_CLOUD_LISTENER__ALLOWED_ACCESS_URLS`).
    #[serde(default, deserialize_with = "list_or_commas")]
    pub allowed_access_urls: Vec<String>,
    /// Delays between attempts at a dbt Cloud run's `run_results.json` (one fewer than
    /// the attempts); after the last, the run's node results are announced as unknown.
    #[serde(default = "default_artifact_fetch_retry_ms")]
    pub artifact_fetch_retry_ms: Vec<u64>,
    /// Attempts answered 404 (no artifact) before giving up.
    #[serde(default = "default_artifact_fetch_not_found_attempts")]
    pub artifact_fetch_not_found_attempts: i64,
}

impl Config {
    /// A configuration for tests and embedding: the given database and credentials,
    /// ports chosen by the OS, defaults everywhere else.
    pub fn new(database_url: &str, credentials_url: &str, service_token: &str) -> Self {
        Self {
            database_url: database_url.to_string(),
            grpc_listen: "127.0.0.1:0".into(),
            http_listen: "127.0.0.1:0".into(),
            credentials_url: credentials_url.to_string(),
            service_token: service_token.to_string().into(),
            tls: Default::default(),
            public_url: String::new(),
            reconcile_interval_secs: default_reconcile_interval_secs(),
            reconcile_lookback_secs: default_reconcile_lookback_secs(),
            allowed_access_urls: Vec::new(),
            artifact_fetch_retry_ms: default_artifact_fetch_retry_ms(),
            artifact_fetch_not_found_attempts: default_artifact_fetch_not_found_attempts(),
        }
    }

    /// The artifact fetch's retry schedule.
    pub fn artifact_fetch_schedule(&self) -> crate::artifact_fetch::RetrySchedule {
        crate::artifact_fetch::RetrySchedule {
            delays: self
                .artifact_fetch_retry_ms
                .iter()
                .map(|ms| std::time::Duration::from_millis(*ms))
                .collect(),
            not_found_attempts: self.artifact_fetch_not_found_attempts.max(1),
        }
    }
}

fn default_artifact_fetch_retry_ms() -> Vec<u64> {
    crate::artifact_fetch::RetrySchedule::default()
        .delays
        .iter()
        .map(|delay| u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
        .collect()
}

fn default_artifact_fetch_not_found_attempts() -> i64 {
    crate::artifact_fetch::RetrySchedule::default().not_found_attempts
}

fn default_credentials_url() -> String {
    "http://127.0.0.1:50051".into()
}

fn default_http_listen() -> String {
    "127.0.0.1:8084".into()
}

fn default_reconcile_interval_secs() -> u64 {
    300
}

fn default_reconcile_lookback_secs() -> u64 {
    86_400
}

/// A list of strings, or one string of comma-separated entries (as environment
/// variables give it); empty entries are dropped.
fn list_or_commas<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    let entries = match ListOrText::deserialize(deserializer)? {
        ListOrText::List(list) => list,
        ListOrText::Text(text) => text.split(',').map(str::to_string).collect(),
    };
    Ok(entries
        .into_iter()
        .map(|entry| entry.trim().to_string())
        .filter(|entry| !entry.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Allowed {
        #[serde(deserialize_with = "list_or_commas")]
        urls: Vec<String>,
    }

    #[test]
    fn allowed_access_urls_come_as_a_list_or_comma_separated() {
        let list: Allowed = serde_json::from_str(r#"{"urls": ["https://a.example", " "]}"#)
            .unwrap_or(Allowed { urls: vec![] });
        assert_eq!(list.urls, vec!["https://a.example".to_string()]);
        let text: Allowed =
            serde_json::from_str(r#"{"urls": "https://a.example, http://127.0.0.1:9,"}"#)
                .unwrap_or(Allowed { urls: vec![] });
        assert_eq!(
            text.urls,
            vec![
                "https://a.example".to_string(),
                "http://127.0.0.1:9".to_string()
            ]
        );
    }
}
