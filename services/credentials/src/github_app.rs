//! GitHub App installation tokens. git-sync (and CI checks) need short-lived
//! tokens for an installation, but the app's private key must never leave this
//! service. So the credentials service mints the RS256 JWT GitHub asks for
//! (`iat` = now − 60 s, `exp` = now + 9 min, `iss` = client id or app id),
//! exchanges it at `POST {api_url}/app/installations/{id}/access_tokens`, and
//! caches the token per (secret, version) until shortly before it expires.
//! Concurrent callers for one key wait on the same exchange.
//!
//! The claims, response parsing and error mapping are pure and unit-tested; the
//! HTTP exchange is exercised against a local stand-in of GitHub in the tests.
//! The JWT, the key and the token are never logged or put in an error.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_API_URL: &str = "https://api.github.com";
const API_VERSION: &str = "2022-11-28";
/// GitHub's messages are short; anything longer is cut before it reaches a caller.
const MAX_MESSAGE_CHARS: usize = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GitHubAppError {
    #[error("secret {0} is not a github app")]
    NotAGitHubApp(String),
    #[error("github app attributes: {0}")]
    Settings(String),
    #[error("github app private key: {0}")]
    Key(String),
    #[error("github rejected the app credentials ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error(
        "github installation {installation_id} is not accessible to this app (404): {message}"
    )]
    InstallationNotFound {
        installation_id: u64,
        message: String,
    },
    #[error("github api unavailable: {0}")]
    Unavailable(String),
}

/// Where and as whom to ask for installation tokens (from the secret's attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// `client_id` if given (GitHub's recommendation), otherwise `app_id`.
    pub issuer: String,
    pub installation_id: u64,
    /// Without a trailing slash.
    pub api_url: String,
}

impl AppSettings {
    /// Reads `app_id` / `client_id` (one required), `installation_id` (required,
    /// numeric) and `api_url` (optional, https unless on loopback).
    pub fn from_attributes(attributes: &BTreeMap<String, String>) -> Result<Self, GitHubAppError> {
        let get = |name: &str| {
            attributes
                .get(name)
                .map(|value| value.trim())
                .filter(|value| !value.is_empty())
        };
        let settings = |message: String| GitHubAppError::Settings(message);
        let app_id = get("app_id");
        if let Some(app_id) = app_id {
            if app_id.parse::<u64>().is_err() {
                return Err(settings("app_id must be numeric".into()));
            }
        }
        let issuer = get("client_id")
            .or(app_id)
            .ok_or_else(|| settings("app_id or client_id is required".into()))?
            .to_string();
        let installation_id = get("installation_id")
            .ok_or_else(|| settings("installation_id is required".into()))?
            .parse::<u64>()
            .map_err(|_| settings("installation_id must be numeric".into()))?;
        let api_url = check_api_url(get("api_url").unwrap_or(DEFAULT_API_URL)).map_err(settings)?;
        Ok(Self {
            issuer,
            installation_id,
            api_url,
        })
    }
}

fn check_api_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|_| format!("api_url {raw:?} is not a url"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(format!("api_url {raw:?} must use https")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("api_url {raw:?} must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// The JWT claims GitHub documents for app authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

/// `iat` 60 s in the past against clock drift, `exp` 9 minutes ahead (GitHub's maximum is 10).
pub fn claims(now_unix_s: i64, issuer: &str) -> Claims {
    Claims {
        iat: now_unix_s - 60,
        exp: now_unix_s + 9 * 60,
        iss: issuer.to_string(),
    }
}

/// Signs the app JWT with the RSA private key PEM (PKCS#1 as GitHub issues it, or PKCS#8).
pub fn mint_jwt(pem: &[u8], issuer: &str, now_unix_s: i64) -> Result<String, GitHubAppError> {
    let unreadable = || GitHubAppError::Key("not an rsa private key in pem format".into());
    let key = EncodingKey::from_rsa_pem(pem).map_err(|_| unreadable())?;
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(now_unix_s, issuer),
        &key,
    )
    .map_err(|_| {
        GitHubAppError::Key(
            "the rsa key cannot sign (it must parse and be at least 2048 bits)".into(),
        )
    })
}

/// An installation access token and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct InstallationToken {
    pub token: String,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for InstallationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationToken")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    token: String,
    expires_at: String,
}

/// Reads a 201 body: `token` and `expires_at` (RFC 3339).
pub fn parse_token_response(body: &[u8]) -> Result<InstallationToken, GitHubAppError> {
    // serde's messages may quote the token, so they are dropped.
    let response: TokenResponse = serde_json::from_slice(body).map_err(|_| {
        GitHubAppError::Unavailable(
            "github returned a token response without token and expires_at".into(),
        )
    })?;
    let expires_at = chrono::DateTime::parse_from_rfc3339(&response.expires_at).map_err(|_| {
        GitHubAppError::Unavailable(format!(
            "github returned expires_at {:?}, not rfc 3339",
            response.expires_at
        ))
    })?;
    if response.token.is_empty() {
        return Err(GitHubAppError::Unavailable(
            "github returned an empty token".into(),
        ));
    }
    Ok(InstallationToken {
        token: response.token,
        expires_at_ms: expires_at.timestamp_millis(),
    })
}

/// Maps a non-success answer to an error carrying GitHub's `message`.
pub fn error_for_status(status: u16, body: &[u8], installation_id: u64) -> GitHubAppError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("message")?.as_str().map(str::to_string))
        .map(|message| message.chars().take(MAX_MESSAGE_CHARS).collect::<String>())
        .unwrap_or_else(|| "no message".into());
    match status {
        404 => GitHubAppError::InstallationNotFound {
            installation_id,
            message,
        },
        400..=499 => GitHubAppError::Rejected { status, message },
        _ => GitHubAppError::Unavailable(format!("github answered {status}: {message}")),
    }
}

/// True while `token` may still be handed out (it has more than `margin_ms` left).
pub fn is_fresh(token: &InstallationToken, now_ms: i64, margin_ms: i64) -> bool {
    token.expires_at_ms - margin_ms > now_ms
}

type Slot = Arc<tokio::sync::Mutex<Option<InstallationToken>>>;

/// Issues installation tokens, with the cache and one HTTP client for all apps.
#[derive(Clone)]
pub struct GitHubApps {
    client: Arc<tokio::sync::OnceCell<reqwest::Client>>,
    timeout: Duration,
    refresh_margin_ms: i64,
    slots: Arc<std::sync::Mutex<HashMap<(String, i64), Slot>>>,
}

impl std::fmt::Debug for GitHubApps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApps")
            .field("timeout", &self.timeout)
            .field("refresh_margin_ms", &self.refresh_margin_ms)
            .finish_non_exhaustive()
    }
}

impl GitHubApps {
    /// `timeout` bounds each exchange; tokens are reissued `refresh_margin` before expiry.
    pub fn new(timeout: Duration, refresh_margin: Duration) -> Self {
        Self {
            client: Arc::default(),
            timeout,
            refresh_margin_ms: i64::try_from(refresh_margin.as_millis()).unwrap_or(i64::MAX),
            slots: Arc::default(),
        }
    }

    /// The token for one secret version: from the cache while fresh, otherwise
    /// minted with the key `open_key` yields (called only then) and exchanged.
    pub async fn installation_token<E>(
        &self,
        secret_id: &str,
        version: i64,
        settings: &AppSettings,
        open_key: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<InstallationToken, E>
    where
        E: From<GitHubAppError>,
    {
        let slot = self.slot(secret_id, version);
        let mut cached = slot.lock().await;
        let now_ms = backflow_platform::now_unix_ms();
        if let Some(token) = cached.as_ref() {
            if is_fresh(token, now_ms, self.refresh_margin_ms) {
                return Ok(token.clone());
            }
        }
        let pem = open_key()?;
        let jwt = mint_jwt(&pem, &settings.issuer, now_ms / 1000)?;
        drop(pem);
        let token = self.exchange(settings, &jwt).await?;
        tracing::info!(
            %secret_id,
            version,
            installation_id = settings.installation_id,
            expires_at_ms = token.expires_at_ms,
            "github installation token issued"
        );
        *cached = Some(token.clone());
        Ok(token)
    }

    /// The cache slot of (secret, version); slots of the secret's other versions go.
    fn slot(&self, secret_id: &str, version: i64) -> Slot {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.retain(|(id, kept), _| id != secret_id || *kept == version);
        slots
            .entry((secret_id.to_string(), version))
            .or_default()
            .clone()
    }

    async fn client(&self) -> Result<&reqwest::Client, GitHubAppError> {
        self.client
            .get_or_try_init(|| async {
                reqwest::Client::builder()
                    .timeout(self.timeout)
                    .connect_timeout(self.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|err| GitHubAppError::Unavailable(format!("http client: {err}")))
            })
            .await
    }

    async fn exchange(
        &self,
        settings: &AppSettings,
        jwt: &str,
    ) -> Result<InstallationToken, GitHubAppError> {
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            settings.api_url, settings.installation_id
        );
        let unavailable = |err: reqwest::Error| {
            let mut message = format!("post {url}: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            GitHubAppError::Unavailable(message)
        };
        let response = self
            .client()
            .await?
            .post(&url)
            .bearer_auth(jwt)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header(reqwest::header::USER_AGENT, "backflow")
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unavailable)?;
        if status.is_success() {
            parse_token_response(&body)
        } else {
            Err(error_for_status(
                status.as_u16(),
                &body,
                settings.installation_id,
            ))
        }
    }
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
    fn settings_from_attributes() {
        let settings = AppSettings::from_attributes(&attributes(&[
            ("app_id", "42"),
            ("installation_id", "7"),
        ]))
        .unwrap();
        assert_eq!(
            settings,
            AppSettings {
                issuer: "42".into(),
                installation_id: 7,
                api_url: DEFAULT_API_URL.into()
            }
        );
        let by_client = AppSettings::from_attributes(&attributes(&[
            ("app_id", "42"),
            ("client_id", "Iv23liEXAMPLE"),
            ("installation_id", "7"),
            ("api_url", "http://127.0.0.1:8080/api/v3/"),
        ]))
        .unwrap();
        assert_eq!(by_client.issuer, "Iv23liEXAMPLE");
        assert_eq!(by_client.api_url, "http://127.0.0.1:8080/api/v3");
    }

    #[test]
    fn settings_refuse_bad_attributes() {
        let error = |pairs: &[(&str, &str)]| {
            AppSettings::from_attributes(&attributes(pairs))
                .unwrap_err()
                .to_string()
        };
        assert!(error(&[("installation_id", "7")]).contains("app_id or client_id"));
        assert!(error(&[("app_id", "42")]).contains("installation_id is required"));
        assert!(error(&[("app_id", "x"), ("installation_id", "7")]).contains("numeric"));
        assert!(error(&[("app_id", "1"), ("installation_id", "seven")]).contains("numeric"));
        assert!(error(&[
            ("app_id", "1"),
            ("installation_id", "7"),
            ("api_url", "http://github.example.com")
        ])
        .contains("https"));
        assert!(error(&[
            ("app_id", "1"),
            ("installation_id", "7"),
            ("api_url", "nope")
        ])
        .contains("not a url"));
    }

    #[test]
    fn claims_follow_githubs_rules() {
        let claims = claims(1_735_689_600, "Iv23liEXAMPLEclientid");
        assert_eq!(claims.iat, 1_735_689_540);
        assert_eq!(claims.exp, 1_735_690_140);
        assert!(claims.exp - claims.iat <= 600);
        assert_eq!(claims.iss, "Iv23liEXAMPLEclientid");
    }

    #[test]
    fn token_response_is_parsed_without_echo() {
        let body = br#"{"token":"ghs_16C7e42F292c6912E7710c838347Ae178B4a","expires_at":"2016-07-11T22:14:10Z","permissions":{"contents":"read"},"repository_selection":"selected"}"#;
        let token = parse_token_response(body).unwrap();
        assert_eq!(token.token, "ghs_16C7e42F292c6912E7710c838347Ae178B4a");
        assert_eq!(token.expires_at_ms, 1_468_275_250_000);
        assert!(!format!("{token:?}").contains("ghs_"));
        let missing = parse_token_response(br#"{"token":"ghs_secret"}"#).unwrap_err();
        assert!(!missing.to_string().contains("ghs_secret"));
        assert!(parse_token_response(br#"{"token":"t","expires_at":"tomorrow"}"#).is_err());
    }

    #[test]
    fn errors_carry_githubs_message() {
        let body = br#"{"message":"A JSON web token could not be decoded","documentation_url":"https://docs.github.com/rest"}"#;
        assert_eq!(
            error_for_status(401, body, 7).to_string(),
            "github rejected the app credentials (401): A JSON web token could not be decoded"
        );
        assert!(matches!(
            error_for_status(404, br#"{"message":"Not Found"}"#, 7),
            GitHubAppError::InstallationNotFound {
                installation_id: 7,
                ..
            }
        ));
        assert!(matches!(
            error_for_status(502, b"<html>", 7),
            GitHubAppError::Unavailable(_)
        ));
    }

    #[test]
    fn freshness_keeps_a_margin() {
        let token = InstallationToken {
            token: "t".into(),
            expires_at_ms: 3_600_000,
        };
        assert!(is_fresh(&token, 0, 300_000));
        assert!(!is_fresh(&token, 3_300_000, 300_000));
    }

    #[test]
    fn junk_keys_are_refused() {
        let error = mint_jwt(
            b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
            "1",
            0,
        )
        .unwrap_err();
        assert!(matches!(error, GitHubAppError::Key(_)));
        assert!(mint_jwt(b"not a key", "1", 0).is_err());
    }
}
