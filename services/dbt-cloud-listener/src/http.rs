//! The HTTP edge of the dbt Cloud listener: `POST /webhooks/dbt-cloud/{subscription}`
//! receives dbt Cloud's `job.run.*` deliveries.
//!
//! Order per delivery: find the subscription the URL names (404 if none); get its HMAC
//! secret (cached briefly; 503 when the credentials service cannot answer, so dbt Cloud
//! retries); check the signature over the raw body before parsing anything (401 for a
//! missing or wrong one, nothing stored); parse tolerantly (400 if the signed body is not
//! a delivery); record it and, for a successful run, announce it — in one transaction
//! with the outbox, de-duplicated on the event id and on the run (200 either way). The
//! body is capped at [`MAX_BODY_BYTES`]; dbt Cloud's deliveries are a few KiB.

use crate::dbt_core::{self, NotifyError};
use crate::delivery::{self, DeliveryError};
use crate::store::{ConnectionStore, Received};
use crate::webhook;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use backflow_platform::auth::TokenVerifier;
use backflow_platform::credentials_client::CredentialsClient;
use secrecy::{ExposeSecret, SecretSlice};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest delivery accepted (413 above).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long a resolved HMAC secret is reused before asking credentials again.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(60);

/// Why a subscription's HMAC secret could not be had.
#[derive(Debug, Clone, thiserror::Error)]
#[error("hmac secret {credential_id}: {message}")]
pub struct SecretLookupError {
    pub credential_id: String,
    pub message: String,
    /// The credentials service was unreachable or slow: dbt Cloud should retry.
    pub transient: bool,
}

/// Where HMAC secrets come from (the credentials service in production).
#[async_trait::async_trait]
pub trait HmacSecrets: Send + Sync + std::fmt::Debug + 'static {
    async fn hmac_secret(
        &self,
        workspace_id: &str,
        credential_id: &str,
    ) -> Result<SecretSlice<u8>, SecretLookupError>;
}

/// HMAC secrets resolved from the credentials service (the only production source).
#[derive(Debug, Clone)]
pub struct CredentialHmacSecrets {
    credentials: CredentialsClient,
}

impl CredentialHmacSecrets {
    pub fn new(credentials: CredentialsClient) -> Self {
        Self { credentials }
    }
}

#[async_trait::async_trait]
impl HmacSecrets for CredentialHmacSecrets {
    async fn hmac_secret(
        &self,
        workspace_id: &str,
        credential_id: &str,
    ) -> Result<SecretSlice<u8>, SecretLookupError> {
        let resolved = self
            .credentials
            .resolve(workspace_id, credential_id, "dbt cloud webhook signature")
            .await
            .map_err(|error| SecretLookupError {
                credential_id: credential_id.to_string(),
                transient: error.is_transient(),
                message: error.to_string(),
            })?;
        Ok(SecretSlice::from(resolved.material))
    }
}

type SecretCache = HashMap<String, (Instant, Arc<SecretSlice<u8>>)>;

#[derive(Clone, Debug)]
pub struct WebhookState {
    store: ConnectionStore,
    secrets: Arc<dyn HmacSecrets>,
    cache: Arc<Mutex<SecretCache>>,
    /// Verifies the Backflow tokens of dbt Core notifications.
    tokens: Arc<dyn TokenVerifier>,
}

impl WebhookState {
    pub fn new(
        store: ConnectionStore,
        secrets: Arc<dyn HmacSecrets>,
        tokens: Arc<dyn TokenVerifier>,
    ) -> Self {
        Self {
            store,
            secrets,
            cache: Arc::default(),
            tokens,
        }
    }

    async fn secret(
        &self,
        workspace_id: &str,
        credential_id: &str,
    ) -> Result<Arc<SecretSlice<u8>>, SecretLookupError> {
        if let Ok(cache) = self.cache.lock() {
            if let Some((at, secret)) = cache.get(credential_id) {
                if at.elapsed() < SECRET_CACHE_TTL {
                    return Ok(secret.clone());
                }
            }
        }
        let secret = Arc::new(
            self.secrets
                .hmac_secret(workspace_id, credential_id)
                .await?,
        );
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(credential_id.to_string(), (Instant::now(), secret.clone()));
        }
        Ok(secret)
    }
}

pub fn router(state: WebhookState) -> Router {
    let webhooks = Router::new()
        .route("/webhooks/dbt-cloud/{subscription_id}", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let core = Router::new()
        .route("/dbt-core/run-results", post(notify_core_run))
        .layer(DefaultBodyLimit::max(dbt_core::MAX_RUN_RESULTS_BYTES));
    webhooks
        .merge(core)
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .with_state(state)
}

#[derive(Debug, serde::Deserialize)]
struct NotifyQuery {
    workspace: Option<String>,
    project: Option<String>,
}

#[tracing::instrument(name = "dbt_core.notify", skip_all)]
async fn notify_core_run(
    State(state): State<WebhookState>,
    Query(query): Query<NotifyQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let token = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    let principal = match token {
        None => None,
        Some(token) => match state.tokens.authenticate(token).await {
            Ok(principal) => principal,
            Err(error) => {
                tracing::error!(%error, "token check failed");
                return reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "try again"}),
                );
            }
        },
    };
    let outcome =
        dbt_core::workspace_of(principal.as_ref(), query.workspace.as_deref()).and_then(|ws| {
            dbt_core::decide(
                &ws,
                query.project.as_deref(),
                &body,
                backflow_platform::now_unix_ms(),
            )
            .map(|d| (ws, d))
        });
    let (workspace_id, (record, event, results)) = match outcome {
        Ok(decided) => decided,
        Err(error) => {
            let status = match error {
                NotifyError::Unauthenticated => StatusCode::UNAUTHORIZED,
                NotifyError::Forbidden(_) => StatusCode::FORBIDDEN,
                NotifyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            };
            tracing::warn!(%error, "dbt core notification refused");
            return reply(status, json!({"error": error.to_string()}));
        }
    };
    match state
        .store
        .record_received_via(&workspace_id, &record, Some(&event), "core")
        .await
    {
        Ok(received) => {
            tracing::info!(
                %workspace_id,
                invocation_id = %results.invocation_id,
                succeeded = results.succeeded.len(),
                failed = results.failed.len(),
                outcome = ?received,
                "dbt core run notified"
            );
            reply(
                StatusCode::OK,
                json!({
                    "status": dbt_core::status_name(received),
                    "workspace_id": workspace_id,
                    "invocation_id": results.invocation_id,
                    "project": event.project_name,
                    "cause_id": dbt_core::cause_of(&results.invocation_id),
                    "succeeded_nodes": results.succeeded.len(),
                    "failed_nodes": results.failed.len(),
                }),
            )
        }
        Err(error) => {
            tracing::error!(%error, "dbt core notification not stored");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "try again"}),
            )
        }
    }
}

type Reply = (StatusCode, Json<serde_json::Value>);

fn reply(status: StatusCode, body: serde_json::Value) -> Reply {
    (status, Json(body))
}

async fn receive(
    state: State<WebhookState>,
    path: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "webhook.dbt_cloud",
        otel.kind = "server",
        subscription_id = %path.0
    );
    backflow_platform::trace_grpc::set_parent_from_http(&span, &headers);
    handle(state.0, path.0, headers, body)
        .instrument(span)
        .await
}

async fn handle(
    state: WebhookState,
    subscription_id: String,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let target = match state.store.webhook_target(&subscription_id).await {
        Ok(Some(target)) => target,
        Ok(None) => {
            return reply(
                StatusCode::NOT_FOUND,
                json!({"error": "unknown subscription"}),
            )
        }
        Err(error) => {
            tracing::error!(%error, "subscription lookup failed");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "try again"}),
            );
        }
    };
    let secret = match state
        .secret(&target.workspace_id, &target.hmac_secret_credential_id)
        .await
    {
        Ok(secret) => secret,
        Err(error) => {
            tracing::error!(%error, transient = error.transient, "hmac secret unavailable");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "try again"}),
            );
        }
    };
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok());
    let delivery = match delivery::verify_and_parse(secret.expose_secret(), authorization, &body) {
        Ok(delivery) => delivery,
        Err(error @ (DeliveryError::MissingSignature | DeliveryError::BadSignature)) => {
            tracing::warn!(%error, "dbt cloud delivery refused");
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": error.to_string()}),
            );
        }
        Err(error) => {
            tracing::warn!(%error, "signed dbt cloud delivery is malformed");
            return reply(StatusCode::BAD_REQUEST, json!({"error": error.to_string()}));
        }
    };
    let decision = webhook::decide(&target, &delivery, backflow_platform::now_unix_ms());
    if let Some(reason) = &decision.ignored_because {
        tracing::warn!(%reason, event_id = %delivery.event_id, "dbt cloud run not announced");
    }
    match state
        .store
        .record_received(
            &target.workspace_id,
            &decision.record,
            decision.announce.as_ref(),
        )
        .await
    {
        Ok(received) => {
            tracing::info!(
                event_id = %delivery.event_id,
                event_type = %delivery.event_type,
                job_id = delivery.job_id,
                run_id = delivery.run_id,
                outcome = ?received,
                "dbt cloud delivery received"
            );
            reply(StatusCode::OK, json!({"status": outcome_name(received)}))
        }
        Err(error) => {
            tracing::error!(%error, "dbt cloud delivery not stored");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "try again"}),
            )
        }
    }
}

fn outcome_name(received: Received) -> &'static str {
    match received {
        Received::Duplicate => "duplicate",
        Received::Recorded => "recorded",
        Received::RunAlreadyAnnounced => "run_already_announced",
        Received::Announced => "announced",
    }
}
