//! What a destination is as users configure it: a kind, non-secret settings, the id of
//! the secret in the credentials service, and a shared rate limit. The checks here are
//! pure; building and testing the live destination is [`crate::destination_admin`]'s.

use crate::destinations::{DestinationKind, DestinationSettings};
use crate::error::RetlError;
use backflow_proto::retl::v1 as pb;
use secrecy::SecretString;

/// Setting names that would hold a secret: those belong in the credentials service.
const SECRET_LIKE: [&str; 9] = [
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "write_key",
    "private_key",
    "client_secret",
    "signing_secret",
];

/// The outcome of the last connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub ok: bool,
    pub message: String,
    pub tested_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub kind: DestinationKind,
    pub settings: DestinationSettings,
    /// Empty when the kind needs no secret.
    pub credential_id: String,
    /// 0 → the kind's default.
    pub rate_limit_per_second: f64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub version: i64,
    pub last_test: Option<TestOutcome>,
}

/// Resolves a secret's material from the credentials service, just before use.
#[async_trait::async_trait]
pub trait SecretResolver: Send + Sync + std::fmt::Debug {
    async fn resolve(
        &self,
        workspace_id: &str,
        credential_id: &str,
        purpose: &str,
    ) -> Result<SecretString, RetlError>;
}

/// No credentials service configured: every secret is unavailable.
#[derive(Debug, Clone, Default)]
pub struct NoSecrets;

#[async_trait::async_trait]
impl SecretResolver for NoSecrets {
    async fn resolve(
        &self,
        _workspace_id: &str,
        credential_id: &str,
        _purpose: &str,
    ) -> Result<SecretString, RetlError> {
        Err(RetlError::Unavailable(format!(
            "cannot resolve credential {credential_id}: no credentials client is configured for the scheduler"
        )))
    }
}

/// The kind a request names.
pub fn kind_from_wire(value: i32) -> Result<DestinationKind, RetlError> {
    if value == pb::DestinationKind::Unspecified as i32 {
        return Err(RetlError::InvalidArgument("kind is required".into()));
    }
    crate::destinations::kind_from_wire(value)
        .map_err(|error| RetlError::InvalidArgument(error.to_string()))
}

pub fn kind_to_wire(kind: DestinationKind) -> i32 {
    crate::destinations::kind_to_wire(kind)
}

/// Settings keys trimmed; a key that names a secret is refused.
pub fn clean_settings(
    settings: impl IntoIterator<Item = (String, String)>,
) -> Result<DestinationSettings, RetlError> {
    let mut cleaned = DestinationSettings::new();
    for (key, value) in settings {
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err(RetlError::InvalidArgument(
                "settings has an empty key".into(),
            ));
        }
        let lower = key.to_ascii_lowercase();
        if SECRET_LIKE.iter().any(|secret| lower == *secret) {
            return Err(RetlError::InvalidArgument(format!(
                "settings.{key} would hold a secret; store it with `backflow secrets create` and name it in credential_id"
            )));
        }
        cleaned.insert(key, value);
    }
    Ok(cleaned)
}

/// An update's settings: the whole map when `replace`, else key by key (an empty value
/// removes the key).
pub fn merged_settings(
    current: &DestinationSettings,
    changes: DestinationSettings,
    replace: bool,
) -> DestinationSettings {
    if replace {
        return changes;
    }
    let mut merged = current.clone();
    for (key, value) in changes {
        if value.is_empty() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    merged
}

pub fn check_rate_limit(rate: f64) -> Result<f64, RetlError> {
    if !rate.is_finite() || rate < 0.0 {
        return Err(RetlError::InvalidArgument(format!(
            "rate_limit_per_second must be 0 (the kind's default) or positive, got {rate}"
        )));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> DestinationSettings {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_refused() {
        for kind in [
            DestinationKind::Webhook,
            DestinationKind::Segment,
            DestinationKind::Hubspot,
            DestinationKind::Salesforce,
            DestinationKind::Postgres,
        ] {
            assert_eq!(kind_from_wire(kind_to_wire(kind)).ok(), Some(kind));
        }
        assert!(
            matches!(kind_from_wire(0), Err(RetlError::InvalidArgument(m)) if m == "kind is required")
        );
        assert!(kind_from_wire(77).is_err());
    }

    #[test]
    fn settings_never_hold_secrets() {
        assert_eq!(
            clean_settings(map(&[(" url ", "http://x")])).ok(),
            Some(map(&[("url", "http://x")]))
        );
        let refused = clean_settings(map(&[("Password", "hunter2")])).err();
        assert!(
            matches!(&refused, Some(RetlError::InvalidArgument(m)) if m.contains("settings.Password would hold a secret")),
            "{refused:?}"
        );
        assert!(clean_settings(map(&[("", "x")])).is_err());
    }

    #[test]
    fn updates_merge_settings_unless_replacing() {
        let current = map(&[("url", "a"), ("timeout", "5")]);
        assert_eq!(
            merged_settings(&current, map(&[("url", "b"), ("timeout", "")]), false),
            map(&[("url", "b")])
        );
        assert_eq!(
            merged_settings(&current, map(&[("x", "y")]), true),
            map(&[("x", "y")])
        );
    }

    #[test]
    fn rate_limits_are_positive_or_default() {
        assert_eq!(check_rate_limit(0.0).ok(), Some(0.0));
        assert_eq!(check_rate_limit(10.5).ok(), Some(10.5));
        assert!(check_rate_limit(-1.0).is_err());
        assert!(check_rate_limit(f64::INFINITY).is_err());
    }
}
