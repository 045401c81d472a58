//! A Snowflake source's settings, checked once at connect time: required keys present,
//! unknown keys refused, `auth` one of `key_pair` / `oauth`, `endpoint` a URL.
//!
//! `database`, `schema`, `warehouse` and `role` are sent to the SQL API exactly as
//! written: the API treats them as case-sensitive (fixtures/wire/snowflake-sql-api.md).

use crate::{SourceSettings, WarehouseError};

const KNOWN: [&str; 9] = [
    "account",
    "user",
    "database",
    "warehouse",
    "role",
    "schema",
    "auth",
    "endpoint",
    "public_key_fingerprint",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthKind {
    KeyPair,
    OAuth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub account: String,
    pub user: String,
    pub database: String,
    pub warehouse: String,
    pub role: Option<String>,
    pub schema: Option<String>,
    pub auth: AuthKind,
    /// Base URL without a trailing `/`.
    pub endpoint: String,
    pub public_key_fingerprint: Option<String>,
}

impl Settings {
    pub fn parse(settings: &SourceSettings) -> Result<Self, WarehouseError> {
        if let Some(key) = settings.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(invalid(key, "is not a snowflake setting"));
        }
        let required = |key: &str| -> Result<String, WarehouseError> {
            match settings.get(key).map(|v| v.trim()) {
                Some(v) if !v.is_empty() => Ok(v.to_string()),
                _ => Err(invalid(key, "is required")),
            }
        };
        let optional = |key: &str| {
            settings
                .get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let account = required("account")?;
        if account.contains(['/', ':', ' ']) {
            return Err(invalid(
                "account",
                "is an account identifier (e.g. xy12345.us-east-1 or myorg-myaccount), not a url",
            ));
        }
        let auth = match optional("auth").as_deref() {
            None | Some("key_pair") => AuthKind::KeyPair,
            Some("oauth") => AuthKind::OAuth,
            Some(_) => return Err(invalid("auth", "must be key_pair or oauth")),
        };
        let endpoint = match optional("endpoint") {
            Some(e) if e.starts_with("https://") || e.starts_with("http://") => {
                e.trim_end_matches('/').to_string()
            }
            Some(_) => return Err(invalid("endpoint", "must be an http(s) url")),
            None => format!("https://{}.snowflakecomputing.com", account.to_lowercase()),
        };
        Ok(Self {
            user: required("user")?,
            database: required("database")?,
            warehouse: required("warehouse")?,
            role: optional("role"),
            schema: optional("schema"),
            auth,
            endpoint,
            public_key_fingerprint: optional("public_key_fingerprint"),
            account,
        })
    }
}

fn invalid(key: &str, reason: &str) -> WarehouseError {
    WarehouseError::Settings {
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SourceSettings {
        [
            ("account", "xy12345.us-east-1"),
            ("user", "loader"),
            ("database", "ANALYTICS"),
            ("warehouse", "WH"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn defaults() {
        let s = Settings::parse(&base()).unwrap();
        assert_eq!(s.auth, AuthKind::KeyPair);
        assert_eq!(
            s.endpoint,
            "https://xy12345.us-east-1.snowflakecomputing.com"
        );
        assert_eq!(s.role, None);
    }

    #[test]
    fn refuses_missing_unknown_and_malformed() {
        let mut s = base();
        s.remove("warehouse");
        assert!(
            matches!(Settings::parse(&s), Err(WarehouseError::Settings { key, .. }) if key == "warehouse")
        );
        let mut s = base();
        s.insert("password".into(), "x".into());
        assert!(
            matches!(Settings::parse(&s), Err(WarehouseError::Settings { key, .. }) if key == "password")
        );
        let mut s = base();
        s.insert("auth".into(), "password".into());
        assert!(
            matches!(Settings::parse(&s), Err(WarehouseError::Settings { key, .. }) if key == "auth")
        );
        let mut s = base();
        s.insert("account".into(), "https://x.snowflakecomputing.com".into());
        assert!(
            matches!(Settings::parse(&s), Err(WarehouseError::Settings { key, .. }) if key == "account")
        );
        let mut s = base();
        s.insert("endpoint".into(), "x.example".into());
        assert!(
            matches!(Settings::parse(&s), Err(WarehouseError::Settings { key, .. }) if key == "endpoint")
        );
    }

    #[test]
    fn endpoint_override_and_oauth() {
        let mut s = base();
        s.insert("endpoint".into(), "http://127.0.0.1:9999/".into());
        s.insert("auth".into(), "oauth".into());
        let s = Settings::parse(&s).unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:9999");
        assert_eq!(s.auth, AuthKind::OAuth);
    }
}
