//! Layered configuration: embedded defaults, then an optional file, then
//! `BACKFLOW_<SECTION>__<KEY>` environment variables. Every error names the setting
//! that is wrong, because an operator reading one log line must be able to fix it.
//!
//! Unknown settings are refused by name, whether misspelt in the file or in a
//! `BACKFLOW_` variable: a typo must not silently leave a default in force. The few
//! `BACKFLOW_` variables that are not settings (the CLI's and the tests') are listed in
//! [`NOT_SETTINGS`].

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("unknown setting {key}{origin}")]
    Unknown { key: String, origin: String },
}

/// `BACKFLOW_` variables that are not settings: the config file path, the CLI's
/// address/token/workspace (`BACKFLOW_ADDR_<SERVICE>` too), test overrides and the
/// conformance scripts' dbt binary.
pub const NOT_SETTINGS: &[&str] = &[
    "BACKFLOW_CONFIG",
    "BACKFLOW_ADDR",
    "BACKFLOW_ADDR_*",
    "BACKFLOW_TOKEN",
    "BACKFLOW_WORKSPACE",
    "BACKFLOW_CLI_CONFIG",
    "BACKFLOW_TEST_*",
    "BACKFLOW_DBT_BIN",
];

fn is_setting_var(name: &str) -> bool {
    name.starts_with("BACKFLOW_")
        && !NOT_SETTINGS
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == *pattern,
            })
}

/// The variable that sets `key` (`git_sync.http_listen` → `BACKFLOW_GIT_SYNC__HTTP_LISTEN`).
fn env_name_of(key: &str) -> String {
    format!("BACKFLOW_{}", key.replace('.', "__").to_ascii_uppercase())
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
        .filter(|(key, _)| is_setting_var(key))
        .collect();
    let env_names: Vec<String> = env_map.keys().cloned().collect();
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
    let mut unknown = Vec::new();
    let value: T = serde_ignored::deserialize(merged, |path| unknown.push(path.to_string()))
        .map_err(|err| ConfigError::Invalid(err.to_string()))?;
    if let Some(key) = unknown.into_iter().next() {
        // An unknown section is reported whole (`nast`); name the variable inside it.
        let variable = env_name_of(&key);
        let from_env = env_names.iter().find(|name| {
            let name = name.to_ascii_uppercase();
            name == variable || name.starts_with(&format!("{variable}__"))
        });
        let origin = if let Some(name) = from_env {
            format!(" (from the environment variable {name})")
        } else if let Some(path) = file {
            format!(" (in {})", path.display())
        } else {
            String::new()
        };
        return Err(ConfigError::Unknown { key, origin });
    }
    Ok(value)
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
    fn unknown_variables_are_refused_by_name() {
        let env = [("BACKFLOW_GRPC__PROT".to_string(), "7".to_string())];
        let err = load_with_env::<Sample>(DEFAULTS, None, env).expect_err("must fail");
        assert!(
            matches!(&err, ConfigError::Unknown { key, .. } if key == "grpc.prot"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "unknown setting grpc.prot (from the environment variable BACKFLOW_GRPC__PROT)"
        );
        let env = [("BACKFLOW_GRCP".to_string(), "x".to_string())];
        let err = load_with_env::<Sample>(DEFAULTS, None, env).expect_err("must fail");
        assert!(
            matches!(&err, ConfigError::Unknown { key, .. } if key == "grcp"),
            "{err}"
        );
        let env = [("BACKFLOW_GRCP__PORT".to_string(), "1".to_string())];
        let err = load_with_env::<Sample>(DEFAULTS, None, env).expect_err("must fail");
        assert!(err.to_string().contains("BACKFLOW_GRCP__PORT"), "{err}");
    }

    #[test]
    fn cli_and_test_variables_are_not_settings() {
        let env = [
            ("BACKFLOW_CONFIG", "/x.toml"),
            ("BACKFLOW_TOKEN", "t"),
            ("BACKFLOW_ADDR_GIT_SYNC", "http://h:1"),
            ("BACKFLOW_TEST_NATS_URL", "nats://h"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let sample: Sample = load_with_env(DEFAULTS, None, env).expect("loads");
        assert_eq!(sample.grpc.port, 1);
    }

    #[test]
    fn unknown_file_keys_are_refused_with_the_file() {
        let dir = std::env::temp_dir().join(format!("backflow-config-{}", crate::new_id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("b.toml");
        std::fs::write(&path, "[grpc]\nhots = \"b\"\n").expect("write");
        let err = load_with_env::<Sample>(DEFAULTS, Some(&path), []).expect_err("must fail");
        assert!(
            matches!(&err, ConfigError::Unknown { key, .. } if key == "grpc.hots"),
            "{err}"
        );
        assert!(err.to_string().contains("b.toml"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn missing_file_is_named() {
        let err = load_with_env::<Sample>(DEFAULTS, Some(Path::new("/nope.toml")), [])
            .expect_err("must fail");
        assert!(err.to_string().contains("/nope.toml"), "{err}");
    }
}
