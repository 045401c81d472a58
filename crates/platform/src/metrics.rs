//! Prometheus metrics, one registry per process, served as text on `GET /metrics` by
//! a small HTTP listener (`telemetry.metrics_listen`). Code records through the named
//! functions below, so every metric name and label set is declared in one place;
//! before [`install`] (tests, tools) recording is a no-op.
//!
//! - `backflow_runs_total{kind,status,trigger}` and
//!   `backflow_run_duration_seconds{kind,status}`: finished runs (git-sync syncs, …)
//! - `backflow_outbox_pending{service}`: events written but not yet published
//! - `backflow_redeliveries_total{consumer}`: deliveries after the first
//! - `backflow_dead_letters_total{consumer}`: messages moved to the dead-letter store
//! - `backflow_messages_total{consumer,outcome}` and
//!   `backflow_message_duration_seconds{consumer}`: consumer handler results
//! - `backflow_grpc_requests_total{service,method,code}` and
//!   `backflow_grpc_request_duration_seconds{service,method}`

use crate::shutdown::Shutdown;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpListener;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds: from a fast gRPC call to a long sync.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
];

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("telemetry.metrics_listen: cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("telemetry.metrics_listen: {0}")]
    Recorder(String),
}

/// Installs the process-wide Prometheus recorder (once; later calls return the same
/// handle).
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), DURATION_BUCKETS)
        .map_err(|err| MetricsError::Recorder(err.to_string()))?
        .install_recorder()
        .map_err(|err| MetricsError::Recorder(err.to_string()))?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// The current metrics in Prometheus text format, if a recorder is installed.
pub fn render() -> Option<String> {
    HANDLE.get().map(PrometheusHandle::render)
}

/// Binds the `/metrics` listener early, so start-up fails on a bad address.
pub async fn bind(addr: &str) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Serves `GET /metrics` until shutdown.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, shutdown: Shutdown) {
    let upkeep = handle.clone();
    let upkeep_shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = upkeep_shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(5)) => upkeep.run_upkeep(),
            }
        }
    });
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = served {
        tracing::error!(%error, "metrics listener failed");
    }
}

/// A run (of `kind`, e.g. `git_sync`) ended with `status` after `duration`.
pub fn run_finished(kind: &str, status: &str, trigger: &str, duration: Duration) {
    metrics::counter!(
        "backflow_runs_total",
        "kind" => kind.to_string(),
        "status" => status.to_string(),
        "trigger" => trigger.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "backflow_run_duration_seconds",
        "kind" => kind.to_string(),
        "status" => status.to_string()
    )
    .record(duration.as_secs_f64());
}

/// Events of `service` waiting in its outbox.
pub fn outbox_pending(service: &str, pending: i64) {
    metrics::gauge!("backflow_outbox_pending", "service" => service.to_string())
        .set(pending as f64);
}

/// A message reached `consumer` again (delivery count above one).
pub fn redelivered(consumer: &str) {
    metrics::counter!("backflow_redeliveries_total", "consumer" => consumer.to_string())
        .increment(1);
}

/// A message of `consumer` was moved to the dead-letter store.
pub fn dead_lettered(consumer: &str) {
    metrics::counter!("backflow_dead_letters_total", "consumer" => consumer.to_string())
        .increment(1);
}

/// A consumer handler finished with `outcome` (`done`, `retry`, `reject`, `dead_letter`).
pub fn message_handled(consumer: &str, outcome: &'static str, duration: Duration) {
    metrics::counter!(
        "backflow_messages_total",
        "consumer" => consumer.to_string(),
        "outcome" => outcome
    )
    .increment(1);
    metrics::histogram!(
        "backflow_message_duration_seconds",
        "consumer" => consumer.to_string()
    )
    .record(duration.as_secs_f64());
}

/// A gRPC call ended with status `code`.
pub fn grpc_call(service: &str, method: &str, code: i32, duration: Duration) {
    metrics::counter!(
        "backflow_grpc_requests_total",
        "service" => service.to_string(),
        "method" => method.to_string(),
        "code" => code.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "backflow_grpc_request_duration_seconds",
        "service" => service.to_string(),
        "method" => method.to_string()
    )
    .record(duration.as_secs_f64());
}
