//! The whole configuration of a Backflow process: shared sections (telemetry, NATS)
//! plus one section per service, each service's embedded defaults included.

use backflow_platform::config::{ConfigError, NatsConfig};
use backflow_platform::telemetry::TelemetryConfig;
use serde::Deserialize;
use std::path::Path;

const SHARED_DEFAULTS: &str = r#"
[telemetry]
format = "pretty"
level = "info,sqlx=warn,async_nats=warn"
otlp_endpoint = ""
metrics_listen = "127.0.0.1:9464"

[front_door]
listen = "127.0.0.1:50050"

[nats]
url = "nats://127.0.0.1:4222"
namespace = ""
connect_timeout_ms = 5000
"#;

#[derive(Debug, Clone, Deserialize)]
pub struct BackflowConfig {
    pub telemetry: TelemetryConfig,
    pub nats: NatsConfig,
    /// `backflow dev` only: one gRPC address serving every service.
    pub front_door: FrontDoorConfig,
    pub credentials: backflow_credentials::Config,
    pub git_sync: backflow_git_sync::Config,
    pub model_catalog: backflow_model_catalog::Config,
    pub dbt_cloud_listener: backflow_dbt_cloud_listener::Config,
    pub retl_scheduler: backflow_retl_scheduler::Config,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FrontDoorConfig {
    pub listen: String,
    /// `[front_door.tls]`: certificate and key turn TLS on for the front door.
    #[serde(default)]
    pub tls: backflow_platform::tls::TlsConfig,
}

fn defaults(dev: bool) -> String {
    let mut text = String::from(SHARED_DEFAULTS);
    for section in [
        backflow_credentials::config::DEFAULTS,
        backflow_git_sync::config::DEFAULTS,
        backflow_model_catalog::config::DEFAULTS,
        backflow_dbt_cloud_listener::config::DEFAULTS,
        backflow_retl_scheduler::config::DEFAULTS,
    ] {
        text.push_str(section);
    }
    if dev {
        // `backflow dev` generates its master key under ./data, and a service token
        // for this process only so git-sync may resolve credentials. TOML forbids
        // repeating a table, so the defaults are switched in place.
        let token = format!("dev-{}", backflow_platform::new_id());
        text = text
            .replace(
                "create_master_key_if_missing = false",
                "create_master_key_if_missing = true",
            )
            .replace(
                "service_tokens = []",
                &format!("service_tokens = [\"{token}\"]"),
            )
            .replace(
                "service_token = \"\"",
                &format!("service_token = \"{token}\""),
            );
    }
    text
}

impl BackflowConfig {
    pub fn load(file: Option<&Path>, dev: bool) -> Result<Self, ConfigError> {
        backflow_platform::config::load(&defaults(dev), file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn embedded_defaults_load() {
        let config: BackflowConfig =
            backflow_platform::config::load_with_env(&defaults(true), None, []).expect("defaults");
        assert!(config.credentials.create_master_key_if_missing);
        let accepted: Vec<&str> = config
            .credentials
            .service_tokens
            .iter()
            .map(|token| token.expose_secret())
            .collect();
        assert_eq!(
            accepted,
            vec![config.git_sync.service_token.expose_secret()]
        );
        assert!(!config.git_sync.service_token.expose_secret().is_empty());
        assert_eq!(config.git_sync.grpc_listen, "127.0.0.1:50052");
        let production: BackflowConfig =
            backflow_platform::config::load_with_env(&defaults(false), None, []).expect("defaults");
        assert!(!production.credentials.create_master_key_if_missing);
    }
}
