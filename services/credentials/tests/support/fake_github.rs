//! A local stand-in of GitHub's `POST /app/installations/{id}/access_tokens`,
//! behaving as documented: it verifies the RS256 JWT against the app's public
//! key and checks the claims (`iss` = app id, `iat` ≤ now, `exp` > now,
//! `exp − iat` ≤ 600 s) and the `Accept` header, then answers 201 with a token
//! that expires in an hour, or GitHub's error bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct FakeGitHub {
    pub addr: SocketAddr,
    /// Every request received, successful or not.
    pub requests: Arc<AtomicUsize>,
    /// Tokens issued.
    pub issued: Arc<AtomicUsize>,
}

struct AppState {
    app_id: String,
    installation_id: u64,
    key: DecodingKey,
    requests: Arc<AtomicUsize>,
    issued: Arc<AtomicUsize>,
}

#[derive(serde::Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
}

impl FakeGitHub {
    /// Serves the app `app_id` (whose private key is `app_key_pem`, PKCS#1) with one installation.
    pub async fn start(app_id: &str, installation_id: u64, app_key_pem: &str) -> Self {
        let public = rsa::RsaPrivateKey::from_pkcs1_pem(app_key_pem)
            .expect("test app key parses")
            .to_public_key()
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .expect("public key encodes");
        let requests = Arc::new(AtomicUsize::new(0));
        let issued = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(AppState {
            app_id: app_id.to_string(),
            installation_id,
            key: DecodingKey::from_rsa_pem(public.as_bytes()).expect("decoding key"),
            requests: requests.clone(),
            issued: issued.clone(),
        });
        let router = Router::new()
            .route("/app/installations/{id}/access_tokens", post(access_tokens))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            addr,
            requests,
            issued,
        }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
        })),
    )
}

async fn access_tokens(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if header("user-agent").is_none_or(str::is_empty) {
        return error(StatusCode::FORBIDDEN, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header");
    }
    if header("accept") != Some("application/vnd.github+json") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported 'Accept' header",
        );
    }
    if header("x-github-api-version") != Some("2022-11-28") {
        return error(StatusCode::BAD_REQUEST, "Invalid API version");
    }
    let Some(jwt) = header("authorization").and_then(|value| value.strip_prefix("Bearer ")) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        );
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.set_issuer(&[&state.app_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    let Ok(decoded) = jsonwebtoken::decode::<Claims>(jwt, &state.key, &validation) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        );
    };
    let now = chrono::Utc::now().timestamp();
    let Claims { iat, exp } = decoded.claims;
    if iat > now {
        return error(
            StatusCode::UNAUTHORIZED,
            "'Issued at' claim ('iat') must be an Integer representing a time in the past.",
        );
    }
    if exp - iat > 600 || exp <= now {
        return error(
            StatusCode::UNAUTHORIZED,
            "'Expiration time' claim ('exp') is too far in the future",
        );
    }
    if id != state.installation_id {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let serial = state.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let expires_at = chrono::Utc::now() + chrono::Duration::hours(1);
    (
        StatusCode::CREATED,
        Json(json!({
            "token": format!("ghs_StandInInstallationToken{serial:012}"),
            "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "permissions": {"contents": "read", "metadata": "read", "checks": "write"},
            "repository_selection": "all",
        })),
    )
}
