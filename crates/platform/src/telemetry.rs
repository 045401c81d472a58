//! Logs and traces. Pretty logs for people at a terminal, JSON for machines, and
//! OpenTelemetry OTLP export of spans when an endpoint is configured.

use opentelemetry::trace::TracerProvider as _;
use serde::Deserialize;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetryConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `backflow=debug,sqlx=warn`.
    #[serde(default = "default_level")]
    pub level: String,
    /// OTLP/gRPC endpoint such as `http://otel-collector:4317`; empty disables export.
    #[serde(default)]
    pub otlp_endpoint: String,
}

fn default_level() -> String {
    "info".into()
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.level: {0}")]
    Level(String),
    #[error("telemetry.otlp_endpoint: {0}")]
    Otlp(String),
}

/// Keeps the OTLP pipeline alive; dropping it flushes pending spans.
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(error) = provider.shutdown() {
                eprintln!("telemetry: flushing spans failed: {error}");
            }
        }
    }
}

/// Installs the global subscriber. Calling it twice keeps the first one (tests do).
pub fn init(
    config: &TelemetryConfig,
    service_name: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter =
        EnvFilter::try_new(&config.level).map_err(|err| TelemetryError::Level(err.to_string()))?;
    let fmt_layer = match config.format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(true).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed(),
    };
    let (otel_layer, provider) = if config.otlp_endpoint.is_empty() {
        (None, None)
    } else {
        let provider = otlp_provider(&config.otlp_endpoint, service_name)?;
        let tracer = provider.tracer("backflow");
        (
            Some(tracing_opentelemetry::layer().with_tracer(tracer)),
            Some(provider),
        )
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    if installed.is_err() {
        tracing::debug!("a global subscriber is already installed");
    }
    Ok(TelemetryGuard { provider })
}

fn otlp_provider(
    endpoint: &str,
    service_name: &str,
) -> Result<opentelemetry_sdk::trace::SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|err| TelemetryError::Otlp(err.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_string())
        .build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
