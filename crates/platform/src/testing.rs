//! Test support: a fresh PostgreSQL database, a temporary SQLite file and a NATS
//! namespace per test, so tests run in parallel against the real servers without
//! seeing each other.

use crate::config::NatsConfig;
use sqlx::Connection;

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
