//! Service-account access tokens for BigQuery: the OAuth 2.0 JWT bearer grant Google
//! documents for server-to-server applications.
//!
//! The key file (the JSON a user downloads for a service account, held by the credentials
//! service) gives the account's `client_email`, its RSA `private_key` (PKCS#8 PEM), the
//! `private_key_id` and the `token_uri`. We sign an RS256 JWT whose header carries
//! `kid = private_key_id` and whose claims are `iss` (the email), `scope`
//! (`https://www.googleapis.com/auth/bigquery`), `aud` (the `token_uri`), `iat` and
//! `exp = iat + 3600`, POST it form-encoded as
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>` to the
//! `token_uri`, and cache the `access_token` until 60 s before `expires_in` runs out.
//! An API call answered 401 drops the cached token so the next attempt mints a new one.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::WarehouseError;

/// The scope BigQuery's jobs need.
pub(crate) const BIGQUERY_SCOPE: &str = "https://www.googleapis.com/auth/bigquery";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The longest lifetime Google accepts, and google-auth's default.
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// Refresh this long before the token expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The fields of a service-account key file the grant needs.
#[derive(Deserialize)]
pub(crate) struct ServiceAccountKey {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub client_email: String,
    pub private_key: SecretString,
    pub private_key_id: Option<String>,
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// Parses the key file JSON; says which field is wrong, never echoing the key.
    pub fn parse(json: &str) -> Result<Self, WarehouseError> {
        let key: Self = serde_json::from_str(json).map_err(|e| WarehouseError::Credential {
            reason: format!(
                "not a service-account key file (line {}, column {}: {})",
                e.line(),
                e.column(),
                classify_serde(&e)
            ),
        })?;
        if let Some(kind) = key.kind.as_deref() {
            if kind != "service_account" {
                return Err(WarehouseError::Credential {
                    reason: format!("key file type is {kind:?}, expected \"service_account\""),
                });
            }
        }
        if !key.token_uri.starts_with("http://") && !key.token_uri.starts_with("https://") {
            return Err(WarehouseError::Credential {
                reason: "key file token_uri is not an http(s) url".into(),
            });
        }
        Ok(key)
    }
}

/// serde's message for a missing field names the field, never a value.
fn classify_serde(e: &serde_json::Error) -> String {
    if e.is_data() {
        let text = e.to_string();
        match text.split(" at line").next() {
            Some(head) if head.starts_with("missing field") => head.to_string(),
            _ => "a field has the wrong type".into(),
        }
    } else {
        "not valid json".into()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    /// A number, or (google-auth accepts it) a string.
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

/// Mints and caches access tokens for one service account.
pub(crate) struct TokenSource {
    http: reqwest::Client,
    email: String,
    key_id: Option<String>,
    token_uri: String,
    signing_key: EncodingKey,
    cached: tokio::sync::Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("email", &self.email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub fn new(http: reqwest::Client, key: &ServiceAccountKey) -> Result<Self, WarehouseError> {
        let signing_key = EncodingKey::from_rsa_pem(key.private_key.expose_secret().as_bytes())
            .map_err(|_| WarehouseError::Credential {
                reason: "key file private_key is not an rsa private key in pem form".into(),
            })?;
        Ok(Self {
            http,
            email: key.client_email.clone(),
            key_id: key.private_key_id.clone(),
            token_uri: key.token_uri.clone(),
            signing_key,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid access token, from the cache or freshly minted.
    pub async fn access_token(&self) -> Result<SecretString, WarehouseError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let fresh = self.exchange().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token (the API answered 401).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// The signed assertion for `iat = now`.
    pub fn assertion(&self, now_unix: u64) -> Result<String, WarehouseError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        let claims = Claims {
            iss: &self.email,
            scope: BIGQUERY_SCOPE,
            aud: &self.token_uri,
            iat: now_unix,
            exp: now_unix + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.signing_key).map_err(|e| {
            WarehouseError::Credential {
                reason: format!("cannot sign the token request: {e}"),
            }
        })
    }

    async fn exchange(&self) -> Result<CachedToken, WarehouseError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let assertion = self.assertion(now)?;
        let started = Instant::now();
        let response = self
            .http
            .post(&self.token_uri)
            .form(&[
                ("grant_type", GRANT_TYPE),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| crate::http::transport_error(&self.token_uri, &e))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(self.token_error(status, &body));
        }
        let parsed: TokenResponse =
            serde_json::from_str(&body).map_err(|_| WarehouseError::Protocol {
                detail: "token endpoint answered without an access_token".into(),
            })?;
        let lifetime = parsed
            .expires_in
            .as_ref()
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
            .unwrap_or(ASSERTION_LIFETIME_SECS);
        let refresh_at = started + Duration::from_secs(lifetime).saturating_sub(EXPIRY_MARGIN);
        Ok(CachedToken {
            token: parsed.access_token,
            refresh_at,
        })
    }

    fn token_error(&self, status: reqwest::StatusCode, body: &str) -> WarehouseError {
        let described = serde_json::from_str::<TokenError>(body)
            .map(|e| {
                if e.error_description.is_empty() {
                    e.error
                } else {
                    format!("{}: {}", e.error, e.error_description)
                }
            })
            .unwrap_or_else(|_| format!("http {}", status.as_u16()));
        match status.as_u16() {
            429 => WarehouseError::RateLimited {
                retry_after: None,
                detail: format!("token endpoint: {described}"),
            },
            500..=599 | 408 => WarehouseError::Unreachable {
                endpoint: self.token_uri.clone(),
                detail: described,
            },
            _ => WarehouseError::Authentication {
                detail: format!("service account {} token exchange: {described}", self.email),
            },
        }
    }
}
