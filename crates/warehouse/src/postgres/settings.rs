//! A Postgres-wire source's settings (host, port, database, user, sslmode, connect
//! timeout) checked once at [`crate::connect`] time, and turned into sqlx connect
//! options with the password only when dialling.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::{SourceSettings, WarehouseError};

const KEYS: [&str; 6] = [
    "host",
    "port",
    "database",
    "user",
    "sslmode",
    "connect_timeout_seconds",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgSettings {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub sslmode: SslMode,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
}

impl PgSettings {
    /// Parses `settings`; `default_port` is 5432 (Postgres) or 5439 (Redshift).
    pub fn parse(settings: &SourceSettings, default_port: u16) -> Result<Self, WarehouseError> {
        if let Some(key) = settings.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(WarehouseError::Settings {
                key: key.clone(),
                reason: format!("unknown setting (known: {})", KEYS.join(", ")),
            });
        }
        let required = |key: &str| match settings.get(key).map(|v| v.trim()) {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(WarehouseError::Settings {
                key: key.into(),
                reason: "required".into(),
            }),
        };
        let port = match settings.get("port") {
            None => default_port,
            Some(p) => p.trim().parse().map_err(|_| WarehouseError::Settings {
                key: "port".into(),
                reason: format!("{p:?} is not a port number"),
            })?,
        };
        let sslmode = match settings.get("sslmode").map(|s| s.trim()) {
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some(other) => {
                return Err(WarehouseError::Settings {
                    key: "sslmode".into(),
                    reason: format!("{other:?} is not one of disable, prefer, require"),
                })
            }
        };
        let connect_timeout = match settings.get("connect_timeout_seconds") {
            None => Duration::from_secs(10),
            Some(s) => match s.trim().parse::<u64>() {
                Ok(n) if (1..=300).contains(&n) => Duration::from_secs(n),
                _ => {
                    return Err(WarehouseError::Settings {
                        key: "connect_timeout_seconds".into(),
                        reason: format!("{s:?} is not a whole number of seconds in 1..=300"),
                    })
                }
            },
        };
        Ok(Self {
            host: required("host")?,
            port,
            database: required("database")?,
            user: required("user")?,
            sslmode,
            connect_timeout,
        })
    }

    /// `host:port`, for error messages.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn connect_options(&self, password: &SecretString) -> PgConnectOptions {
        let mode = match self.sslmode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
        };
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .database(&self.database)
            .username(&self.user)
            .ssl_mode(mode)
            .application_name("backflow")
            .statement_cache_capacity(0);
        let password = password.expose_secret();
        if !password.is_empty() {
            options = options.password(password);
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> SourceSettings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_required_and_defaults() {
        let s = PgSettings::parse(
            &settings(&[("host", "db"), ("database", "analytics"), ("user", "bf")]),
            5439,
        )
        .unwrap();
        assert_eq!(s.port, 5439);
        assert_eq!(s.sslmode, SslMode::Prefer);
        assert_eq!(s.connect_timeout, Duration::from_secs(10));
        assert_eq!(s.endpoint(), "db:5439");
    }

    #[test]
    fn refuses_missing_unknown_and_malformed_keys() {
        let base = [("host", "db"), ("database", "a"), ("user", "u")];
        let err = |extra: &[(&str, &str)], drop: &str| {
            let mut s = settings(&base);
            s.remove(drop);
            s.extend(settings(extra));
            match PgSettings::parse(&s, 5432) {
                Err(WarehouseError::Settings { key, .. }) => key,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(err(&[], "host"), "host");
        assert_eq!(err(&[("password", "x")], ""), "password");
        assert_eq!(err(&[("port", "http")], ""), "port");
        assert_eq!(err(&[("sslmode", "verify-full")], ""), "sslmode");
        assert_eq!(
            err(&[("connect_timeout_seconds", "0")], ""),
            "connect_timeout_seconds"
        );
    }
}
