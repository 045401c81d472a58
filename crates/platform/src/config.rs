//! Layered configuration: embedded defaults, then an optional file, then
//! `BACKFLOW_<SECTION>__<KEY>` environment variables. Every error names the setting
//! that is wrong, because an operator reading one log line must be able to fix it.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Connection to NATS and the subject namespace (empty in production; tests set one
/// so that parallel runs don't share streams).
#[derive(Debug, Clone, Deserialize)]
pub struct NatsConfig {
    pub url: String,
    #[serde(default)]
    pub namespace: String,
    /// How long start-up waits for NATS before giving up, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

/// Loads `T` from the embedded TOML `defaults`, the optional `file`, and the environment.
pub fn load<T: DeserializeOwned>(defaults: &str, file: Option<&Path>) -> Result<T, ConfigError> {
    load_with_env(defaults, file, std::env::vars())
}

/// Same as [`load`] with an explicit environment, so tests need not touch the process env.
pub fn load_with_env<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.display().to_string(),
                message: "no such file".into(),
            });
        }
        builder = builder.add_source(config::File::from(path));
    }
    let env_map: config::Map<String, String> = env
        .into_iter()
        .filter(|(key, _)| key.starts_with("BACKFLOW_"))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix("BACKFLOW")
            .separator("__")
            .prefix_separator("_")
            .try_parsing(true)
            .source(Some(env_map)),
    );
    let merged = builder.build().map_err(|err| match file {
        Some(path) => ConfigError::File {
            path: path.display().to_string(),
            message: err.to_string(),
        },
        None => ConfigError::Invalid(err.to_string()),
    })?;
    merged
        .try_deserialize()
        .map_err(|err| ConfigError::Invalid(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        grpc: Grpc,
    }
    #[derive(Debug, Deserialize)]
    struct Grpc {
        port: u16,
        host: String,
    }

    const DEFAULTS: &str = "[grpc]\nport = 1\nhost = \"a\"\n";

    #[test]
    fn env_overrides_defaults() {
        let env = [("BACKFLOW_GRPC__PORT".to_string(), "7".to_string())];
        let sample: Sample = load_with_env(DEFAULTS, None, env).expect("loads");
        assert_eq!(sample.grpc.port, 7);
        assert_eq!(sample.grpc.host, "a");
    }

    #[test]
    fn malformed_value_names_the_setting() {
        let env = [("BACKFLOW_GRPC__PORT".to_string(), "seven".to_string())];
        let err = load_with_env::<Sample>(DEFAULTS, None, env).expect_err("must fail");
        assert!(err.to_string().contains("grpc.port"), "{err}");
    }

    #[test]
    fn missing_file_is_named() {
        let err = load_with_env::<Sample>(DEFAULTS, Some(Path::new("/nope.toml")), [])
            .expect_err("must fail");
        assert!(err.to_string().contains("/nope.toml"), "{err}");
    }
}
