//! The HTTP edge of git-sync: `POST /webhooks/git/{connection_id}` receives push
//! webhooks. The signature is checked against the connection's webhook secret over
//! the raw body before anything is parsed; a bad signature changes nothing.

use crate::store::GitSyncStore;
use crate::webhooks::{self, Headers};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use backflow_platform::credentials_client::CredentialsClient;
use backflow_proto::gitsync::v1 as pb;
use serde_json::json;

/// GitHub caps webhook payloads at 25 MB.
const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct WebhookState {
    pub store: GitSyncStore,
    pub credentials: CredentialsClient,
}

pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/webhooks/git/{connection_id}", post(receive_push))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

struct HttpHeaders<'a>(&'a HeaderMap);

impl Headers for HttpHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|value| value.to_str().ok())
    }
}

type Reply = (StatusCode, Json<serde_json::Value>);

fn reply(status: StatusCode, body: serde_json::Value) -> Reply {
    (status, Json(body))
}

async fn receive_push(
    state: State<WebhookState>,
    path: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    use tracing::Instrument;
    let span = tracing::info_span!("webhook.push", otel.kind = "server", connection_id = %path.0);
    // A sender that traces (a proxy, a CI hook) may send `traceparent`; join its trace.
    backflow_platform::trace_grpc::set_parent_from_http(&span, &headers);
    handle_push(state, path, headers, body)
        .instrument(span)
        .await
}

async fn handle_push(
    State(state): State<WebhookState>,
    Path(connection_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let connection = match state.store.find_connection(&connection_id).await {
        Ok(Some(connection)) => connection,
        Ok(None) => {
            return reply(
                StatusCode::NOT_FOUND,
                json!({"error": "unknown connection"}),
            )
        }
        Err(error) => {
            tracing::error!(%connection_id, %error, "webhook lookup failed");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "try again"}),
            );
        }
    };
    let secret_id = &connection.settings.webhook_secret_credential_id;
    if secret_id.is_empty() {
        return reply(
            StatusCode::FORBIDDEN,
            json!({"error": "webhooks are not enabled for this connection"}),
        );
    }
    let purpose = format!("verify push webhook for connection {connection_id}");
    let secret = match state
        .credentials
        .resolve(&connection.workspace_id, secret_id, &purpose)
        .await
    {
        Ok(secret) => secret,
        Err(error) => {
            tracing::error!(%connection_id, %error, "webhook secret unavailable");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "try again"}),
            );
        }
    };
    let provider = connection.settings.provider;
    if let Err(error) = webhooks::verify(provider, &HttpHeaders(&headers), &body, &secret.material)
    {
        tracing::warn!(%connection_id, %error, "webhook refused");
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": error.to_string()}),
        );
    }
    let push = match webhooks::parse_push(provider, &body) {
        Ok(Some(push)) => push,
        Ok(None) => {
            return reply(
                StatusCode::ACCEPTED,
                json!({"ignored": "not a branch push"}),
            )
        }
        Err(error) => return reply(StatusCode::BAD_REQUEST, json!({"error": error.to_string()})),
    };
    if push.branch != connection.settings.branch {
        return reply(
            StatusCode::ACCEPTED,
            json!({"ignored": format!("push to {}, connection follows {}", push.branch, connection.settings.branch)}),
        );
    }
    match state
        .store
        .trigger_sync_at(
            &connection.workspace_id,
            &connection.id,
            pb::SyncTrigger::Push,
            &push.after,
        )
        .await
    {
        Ok(run) => {
            tracing::info!(%connection_id, run_id = %run.id, commit = %push.after, "push webhook queued a sync");
            reply(StatusCode::ACCEPTED, json!({"run_id": run.id}))
        }
        Err(error) => {
            tracing::error!(%connection_id, %error, "cannot queue sync for push");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "try again"}),
            )
        }
    }
}
