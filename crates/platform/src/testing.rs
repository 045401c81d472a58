//! Test support: a fresh PostgreSQL database, a temporary SQLite file and a NATS
//! namespace per test, so tests run in parallel against the real servers without
//! seeing each other; for fault tests, servers of a test's own to kill and restart
//! ([`servers`]) and a proxy that drops connections mid-request ([`cut_proxy`]).

use crate::config::NatsConfig;
use sqlx::Connection;

pub mod cut_proxy;
pub mod servers;

pub use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};

/// Installs the global subscriber with every finished span kept in memory (one test
/// per binary: the subscriber is process-wide). Logs go to the test's output.
pub fn capture_spans() -> Result<
    (InMemorySpanExporter, crate::telemetry::TelemetryGuard),
    crate::telemetry::TelemetryError,
> {
    let exporter = InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let config = crate::telemetry::TelemetryConfig {
        format: crate::telemetry::LogFormat::Pretty,
        level: "info,sqlx=warn,async_nats=warn".into(),
        otlp_endpoint: String::new(),
        metrics_listen: String::new(),
    };
    let guard = crate::telemetry::init_with_provider(&config, provider)?;
    Ok((exporter, guard))
}

/// Admin URL of the local PostgreSQL (override with `BACKFLOW_TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("BACKFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// NATS URL for tests (override with `BACKFLOW_TEST_NATS_URL`).
pub fn nats_url() -> String {
    std::env::var("BACKFLOW_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Creates an empty database and returns its URL.
pub async fn fresh_postgres_url(label: &str) -> Result<String, sqlx::Error> {
    let admin = postgres_admin_url();
    let name = format!(
        "bf_{}_{}",
        label.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        uuid::Uuid::new_v4().simple()
    )
    .to_lowercase();
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let base = admin
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(&admin);
    Ok(format!("{base}/{name}"))
}

/// A SQLite URL in a fresh temporary directory (kept until the process exits).
pub fn fresh_sqlite_url(label: &str) -> String {
    let dir = std::env::temp_dir().join(format!("backflow-test-{}", uuid::Uuid::new_v4().simple()));
    let _ = std::fs::create_dir_all(&dir);
    format!("sqlite://{}/{label}.db?mode=rwc", dir.display())
}

/// A NATS config with a namespace nobody else uses.
pub fn fresh_nats(label: &str) -> NatsConfig {
    NatsConfig {
        url: nats_url(),
        namespace: format!(
            "t{}{}",
            label.replace(|c: char| !c.is_ascii_alphanumeric(), ""),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ),
        connect_timeout_ms: 5_000,
    }
}

/// Both backends, for contract tests that must pass on each.
pub async fn both_backends(label: &str) -> Result<Vec<String>, sqlx::Error> {
    Ok(vec![
        fresh_sqlite_url(label),
        fresh_postgres_url(label).await?,
    ])
}

/// A gRPC channel that sends `authorization: Bearer <token>` on every call (unless a
/// request already carries an authorization header, e.g. a service token).
pub type AuthedChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, BearerInterceptor>;

#[derive(Debug, Clone)]
pub struct BearerInterceptor(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for BearerInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if !request.metadata().contains_key("authorization") {
            request
                .metadata_mut()
                .insert("authorization", self.0.clone());
        }
        Ok(request)
    }
}

/// Connects to `url` (e.g. `http://127.0.0.1:1234`) sending `token` on every call.
pub async fn authed_channel(url: &str, token: &str) -> Result<AuthedChannel, TestError> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .map_err(test_error)?
        .connect()
        .await
        .map_err(test_error)?;
    with_token(channel, token)
}

/// Wraps an existing channel so it sends `token`.
pub fn with_token(
    channel: tonic::transport::Channel,
    token: &str,
) -> Result<AuthedChannel, TestError> {
    let value = format!("Bearer {token}").parse().map_err(test_error)?;
    Ok(tonic::service::interceptor::InterceptedService::new(
        channel,
        BearerInterceptor(value),
    ))
}

/// A failure of a test helper, as text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TestError(pub String);

fn test_error(error: impl std::fmt::Display) -> TestError {
    TestError(error.to_string())
}

/// A stand-in for the credentials service's `TokenService`, for tests of a service
/// that runs without credentials: a real gRPC server on port 0 that knows the tokens
/// it minted (in memory) and one service token. Tests that run credentials itself
/// mint real tokens there instead.
#[derive(Debug, Clone)]
pub struct TokenAuthority {
    pub url: String,
    pub service_token: String,
    tokens:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, crate::auth::Principal>>>,
    _stop: std::sync::Arc<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Debug, Clone)]
struct AuthorityGrpc {
    service_token: String,
    tokens:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, crate::auth::Principal>>>,
}

#[tonic::async_trait]
impl backflow_proto::auth::v1::token_service_server::TokenService for AuthorityGrpc {
    async fn authenticate_token(
        &self,
        request: tonic::Request<backflow_proto::auth::v1::AuthenticateTokenRequest>,
    ) -> Result<tonic::Response<backflow_proto::auth::v1::AuthenticateTokenResponse>, tonic::Status>
    {
        let caller = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        if caller.as_deref() != Some(&format!("Bearer {}", self.service_token)) {
            return Err(tonic::Status::permission_denied("services only"));
        }
        let token = request.into_inner().token;
        let principal = if token == self.service_token {
            Some(crate::auth::Principal::Service)
        } else {
            self.tokens
                .lock()
                .ok()
                .and_then(|tokens| tokens.get(&token).cloned())
        };
        match principal {
            Some(principal) => Ok(tonic::Response::new(crate::auth::response_of(&principal))),
            None => Err(tonic::Status::unauthenticated("unknown token")),
        }
    }
}

impl TokenAuthority {
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let service_token = format!("svc-test-{}", uuid::Uuid::new_v4().simple());
        let tokens = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let grpc = AuthorityGrpc {
            service_token: service_token.clone(),
            tokens: tokens.clone(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(
                    backflow_proto::auth::v1::token_service_server::TokenServiceServer::new(grpc),
                )
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async move {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        Ok(Self {
            url: format!("http://{addr}"),
            service_token,
            tokens,
            _stop: std::sync::Arc::new(stop),
        })
    }

    /// A new token for `workspace` (`None`: operator) with `role`.
    pub fn mint(&self, workspace: Option<&str>, role: crate::auth::Role) -> String {
        let token = format!("bf_test{}", uuid::Uuid::new_v4().simple());
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(
                token.clone(),
                crate::auth::Principal::Tool {
                    token_id: uuid::Uuid::new_v4().to_string(),
                    workspace_id: workspace.map(str::to_string),
                    role,
                },
            );
        }
        token
    }

    /// Forgets a minted token (as a revocation would).
    pub fn revoke(&self, token: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(token);
        }
    }
}
