//! Logs and traces. Pretty logs for people at a terminal, JSON for machines, and
//! OpenTelemetry OTLP export of spans when an endpoint is configured.
//!
//! Spans always carry OpenTelemetry ids (even when nothing exports them), so W3C trace
//! context can cross every hop: gRPC metadata (see [`crate::trace_grpc`]), NATS headers
//! (the outbox stores the `traceparent` of the span that wrote the event, the consumer
//! loop parents its handler span on it). One trace then runs webhook → git-sync run →
//! catalog update, across processes.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::IsTerminal;
use tracing_opentelemetry::OpenTelemetrySpanExt;
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
    /// Prometheus `/metrics` listener such as `127.0.0.1:9464`; empty disables it.
    #[serde(default)]
    pub metrics_listen: String,
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
    let provider = if config.otlp_endpoint.is_empty() {
        // No exporter: spans still get trace ids, so context propagates to the
        // processes that do export.
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_resource(resource(service_name))
            .build()
    } else {
        otlp_provider(&config.otlp_endpoint, service_name)?
    };
    init_with_provider(config, provider)
}

/// Installs the global subscriber with spans going to `provider` (tests pass one with
/// an in-memory exporter).
pub fn init_with_provider(
    config: &TelemetryConfig,
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
) -> Result<TelemetryGuard, TelemetryError> {
    use tracing_subscriber::filter::LevelFilter;
    let filter =
        EnvFilter::try_new(&config.level).map_err(|err| TelemetryError::Level(err.to_string()))?;
    // Colours only for a person at a terminal; redirected logs stay plain text.
    let ansi = std::io::stdout().is_terminal();
    let fmt_layer = match config.format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_target(true)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .boxed(),
    };
    let tracer = provider.tracer("backflow");
    // The log level filters logs only: spans at INFO and above always exist, so a
    // quiet log level does not break the trace.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(LevelFilter::INFO);
    let installed = tracing_subscriber::registry()
        .with(fmt_layer.with_filter(filter))
        .with(otel_layer)
        .try_init();
    if installed.is_err() {
        tracing::debug!("a global subscriber is already installed");
    }
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

fn resource(service_name: &str) -> opentelemetry_sdk::Resource {
    opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_string())
        .build()
}

/// Header and metadata key of W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

/// The current span's W3C `traceparent`, if it belongs to a sampled trace.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Injects the current span's trace context into any carrier (gRPC metadata, NATS
/// headers).
pub fn inject_current(carrier: &mut dyn Injector) {
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, carrier);
    }
}

/// Makes `span` a child of the remote span described by `carrier`, when it describes
/// one; otherwise `span` stays a root.
pub fn set_remote_parent(span: &tracing::Span, carrier: &dyn Extractor) {
    let context = TraceContextPropagator::new().extract(carrier);
    if context.span().span_context().is_valid() {
        // Fails only without the OpenTelemetry layer, where there is no trace to join.
        let _ = span.set_parent(context);
    }
}

/// Same as [`set_remote_parent`] from a bare `traceparent` value.
pub fn set_parent_traceparent(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(value) = traceparent {
        let carrier: HashMap<String, String> = [(TRACEPARENT.to_string(), value.to_string())]
            .into_iter()
            .collect();
        set_remote_parent(span, &carrier);
    }
}

/// The trace id of `span` (hex), for logs and tests.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// NATS headers as a trace-context carrier.
pub struct NatsHeaders<'a>(pub &'a mut async_nats::HeaderMap);

impl Injector for NatsHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

/// Read-only NATS headers as a trace-context carrier.
pub struct NatsHeadersRef<'a>(pub &'a async_nats::HeaderMap);

impl Extractor for NatsHeadersRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
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
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(service_name))
        .build())
}
