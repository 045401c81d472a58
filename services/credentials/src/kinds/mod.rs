//! What each kind of secret must look like, checked at create and rotate so a
//! bad paste fails at once with a clear message rather than at the first clone,
//! sync or webhook. Pure: no I/O. Messages never quote the material.
//!
//! Formats other services rely on (they read them through ResolveSecret):
//! - `GITHUB_APP`: material = the app's RSA private key PEM; attributes
//!   `app_id` (numeric) and/or `client_id` (one required; `client_id` is the JWT
//!   issuer when both are set), `installation_id` (numeric, required), `api_url`
//!   (filled with `https://api.github.com` when absent).
//! - `GIT_TOKEN`: material = the token, one line without whitespace; attributes
//!   `provider` (`github` | `gitlab` | `bitbucket`, optional) and `username`
//!   (filled at create: `x-access-token`, `oauth2`, `x-token-auth` by provider,
//!   `x-access-token` without one).
//! - `SSH_PRIVATE_KEY`: material = the private key text, or the JSON envelope
//!   `{"private_key": "<key text>", "passphrase": "<passphrase>"}` for an
//!   encrypted key; attribute `known_hosts` (required) = OpenSSH known_hosts
//!   lines pinning the server keys; attribute `key_type` is filled at create.
//! - `WAREHOUSE_PRIVATE_KEY`: material = an unencrypted PKCS#8 PEM private key
//!   (`-----BEGIN PRIVATE KEY-----`), for Snowflake key-pair authentication.
//! - `WAREHOUSE_SERVICE_ACCOUNT`: material = a Google service-account JSON key file
//!   with `client_email`, `private_key` (PKCS#8 PEM) and `token_uri`.
//! - `WAREHOUSE_TOKEN`: material = the token (Databricks PAT, Snowflake OAuth
//!   access token), one line without whitespace.
//! - every other kind: any non-empty material.

pub mod pem;
pub mod ssh;
pub mod warehouse;

use crate::github_app::{self, AppSettings};
use backflow_proto::credentials::v1::SecretKind;
use std::collections::BTreeMap;

/// Why material or attributes were refused; the text is safe to return to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidSecret(pub String);

/// Checks `material` and `attributes` for `kind`; returns the attributes to store,
/// with defaults filled in (see the module docs).
pub fn validate_new(
    kind: i32,
    material: &[u8],
    attributes: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, InvalidSecret> {
    let mut attributes = attributes.clone();
    match kind_of(kind)? {
        SecretKind::GithubApp => {
            let settings = check_github_app(material, &attributes)?;
            attributes.insert("api_url".into(), settings.api_url);
        }
        SecretKind::GitToken => {
            let username = check_git_token(material, &attributes)?;
            attributes.insert("username".into(), username);
        }
        SecretKind::SshPrivateKey => {
            let key_type = check_ssh_key(material, &attributes)?;
            attributes.insert("key_type".into(), key_type.into());
        }
        kind => check_warehouse(kind, material)?,
    }
    Ok(attributes)
}

/// Checks a new version's material against the secret's kind and stored attributes.
pub fn validate_rotation(
    kind: i32,
    material: &[u8],
    attributes: &BTreeMap<String, String>,
) -> Result<(), InvalidSecret> {
    match kind_of(kind)? {
        SecretKind::GithubApp => check_github_app(material, attributes).map(drop),
        SecretKind::GitToken => check_git_token(material, attributes).map(drop),
        SecretKind::SshPrivateKey => {
            let key_type = check_ssh_key(material, attributes)?;
            match attributes.get("key_type") {
                Some(stored) if stored != key_type => Err(InvalidSecret(format!(
                    "ssh private key: the new key is {key_type} but the secret holds {stored}; create a new secret to change the key type"
                ))),
                _ => Ok(()),
            }
        }
        kind => check_warehouse(kind, material),
    }
}

/// Shape checks of the warehouse kinds (no-op for the rest).
fn check_warehouse(kind: SecretKind, material: &[u8]) -> Result<(), InvalidSecret> {
    match kind {
        SecretKind::WarehousePrivateKey => warehouse::check_private_key(material),
        SecretKind::WarehouseServiceAccount => warehouse::check_service_account(material),
        SecretKind::WarehouseToken => warehouse::check_token(material),
        _ => Ok(()),
    }
}

/// Applies `changes` to a secret's stored attributes, allowing only what may change
/// without new material (`known_hosts` of SSH keys, `username` of git tokens), and
/// checks the result like at create. Returns the attributes to store.
pub fn validate_attribute_update(
    kind: i32,
    current: &BTreeMap<String, String>,
    changes: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, InvalidSecret> {
    let changeable: &[&str] = match kind_of(kind)? {
        SecretKind::SshPrivateKey => &["known_hosts"],
        SecretKind::GitToken => &["username"],
        _ => &[],
    };
    if changes.is_empty() {
        return Err(InvalidSecret("attributes: nothing to change".into()));
    }
    if let Some(key) = changes
        .keys()
        .find(|key| !changeable.contains(&key.as_str()))
    {
        return Err(InvalidSecret(if changeable.is_empty() {
            format!(
                "attribute {key:?} of this kind of secret cannot be changed; create a new secret"
            )
        } else {
            format!(
                "attribute {key:?} cannot be changed without new material (changeable: {})",
                changeable.join(", ")
            )
        }));
    }
    let mut updated = current.clone();
    updated.extend(
        changes
            .iter()
            .map(|(k, v)| (k.clone(), v.trim().to_string())),
    );
    if let Some(known_hosts) = changes.get("known_hosts") {
        ssh::check_known_hosts(known_hosts).map_err(InvalidSecret)?;
    }
    if changes
        .get("username")
        .is_some_and(|name| name.trim().is_empty())
    {
        return Err(InvalidSecret("username must not be empty".into()));
    }
    Ok(updated)
}

fn kind_of(kind: i32) -> Result<SecretKind, InvalidSecret> {
    match SecretKind::try_from(kind) {
        Ok(SecretKind::Unspecified) => Err(InvalidSecret("kind is required".into())),
        Ok(kind) => Ok(kind),
        Err(_) => Err(InvalidSecret(format!("unknown secret kind {kind}"))),
    }
}

fn check_github_app(
    material: &[u8],
    attributes: &BTreeMap<String, String>,
) -> Result<AppSettings, InvalidSecret> {
    let settings =
        AppSettings::from_attributes(attributes).map_err(|err| InvalidSecret(err.to_string()))?;
    github_app::mint_jwt(
        material,
        &settings.issuer,
        backflow_platform::now_unix_ms() / 1000,
    )
    .map_err(|err| InvalidSecret(err.to_string()))?;
    Ok(settings)
}

/// Returns the username to pair with the token.
fn check_git_token(
    material: &[u8],
    attributes: &BTreeMap<String, String>,
) -> Result<String, InvalidSecret> {
    let token = std::str::from_utf8(material)
        .map_err(|_| InvalidSecret("git token must be utf-8 text".into()))?;
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidSecret(
            "git token must be one line without spaces (check for a trailing newline)".into(),
        ));
    }
    let default_username = match attributes.get("provider").map(String::as_str) {
        None | Some("github") => "x-access-token",
        Some("gitlab") => "oauth2",
        Some("bitbucket") => "x-token-auth",
        Some(other) => {
            return Err(InvalidSecret(format!(
                "provider {other:?} is not one of github, gitlab, bitbucket"
            )))
        }
    };
    match attributes.get("username") {
        None => Ok(default_username.to_string()),
        Some(username)
            if username.is_empty()
                || username.contains(':')
                || username
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Err(InvalidSecret(
                "username must be non-empty, without spaces or ':'".into(),
            ))
        }
        Some(username) => Ok(username.clone()),
    }
}

/// Returns the key type (`ed25519`, `rsa`, `ecdsa-p256`, ...).
fn check_ssh_key(
    material: &[u8],
    attributes: &BTreeMap<String, String>,
) -> Result<&'static str, InvalidSecret> {
    let key = ssh::parse_material(material).map_err(InvalidSecret)?;
    let key_type = ssh::check_private_key(&key).map_err(InvalidSecret)?;
    let known_hosts = attributes.get("known_hosts").ok_or_else(|| {
        InvalidSecret(
            "known_hosts is required for ssh keys: pin the server's host keys (ssh-keyscan output)"
                .into(),
        )
    })?;
    ssh::check_known_hosts(known_hosts).map_err(InvalidSecret)?;
    Ok(key_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn unknown_kinds_are_refused() {
        let none = BTreeMap::new();
        assert_eq!(
            validate_new(0, b"x", &none),
            Err(InvalidSecret("kind is required".into()))
        );
        assert!(validate_new(99, b"x", &none).unwrap_err().0.contains("99"));
        assert!(validate_new(SecretKind::WebhookSecret as i32, b"whsec", &none).is_ok());
    }

    #[test]
    fn git_tokens_get_a_username() {
        let token = SecretKind::GitToken as i32;
        let username = |pairs: &[(&str, &str)]| {
            validate_new(token, b"glpat-abc", &attributes(pairs))
                .map(|attrs| attrs["username"].clone())
        };
        assert_eq!(username(&[]).unwrap(), "x-access-token");
        assert_eq!(username(&[("provider", "gitlab")]).unwrap(), "oauth2");
        assert_eq!(
            username(&[("provider", "bitbucket")]).unwrap(),
            "x-token-auth"
        );
        assert_eq!(
            username(&[("provider", "gitlab"), ("username", "ci-bot")]).unwrap(),
            "ci-bot"
        );
        assert!(username(&[("provider", "gitea")]).is_err());
        assert!(username(&[("username", "a:b")]).is_err());
    }

    #[test]
    fn git_tokens_are_one_word() {
        let token = SecretKind::GitToken as i32;
        let none = BTreeMap::new();
        let error = validate_new(token, b"ghp_secretvalue\n", &none).unwrap_err();
        assert!(error.0.contains("trailing newline"));
        assert!(!error.0.contains("ghp_secretvalue"));
        assert!(validate_new(token, b"ghp secret", &none).is_err());
        assert!(validate_rotation(token, b"ghp_next", &none).is_ok());
    }

    #[test]
    fn ssh_keys_need_known_hosts() {
        let error = check_ssh_key(b"-----BEGIN OPENSSH PRIVATE KEY-----", &BTreeMap::new());
        assert!(error.is_err());
    }
}
