//! W3C trace context over gRPC. The server side is a tower layer that opens one span
//! per call (`grpc.server`, named after the method), parented on the caller's
//! `traceparent` metadata when it sends one, and counts calls by method and status.
//! The client side injects the current span's context into outgoing metadata, so a
//! call from one service to another stays in the caller's trace.

use crate::telemetry;
use opentelemetry::propagation::{Extractor, Injector};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::http;
use tracing::Instrument;

/// Adds a span per gRPC call to a server.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for TraceService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        let (service, method) = split_path(&path);
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        telemetry::set_remote_parent(&span, &HttpHeaders(request.headers()));
        let started = Instant::now();
        let call = self.inner.call(request);
        let recorded = span.clone();
        Box::pin(
            async move {
                let response = call.await;
                let code = match &response {
                    // Unary errors travel in the headers; streams report theirs in trailers
                    // (counted as 0 here, their errors are logged by the handler).
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<i32>().ok())
                        .unwrap_or(0),
                    Err(_) => 2,
                };
                recorded.record("rpc.grpc.status_code", code);
                crate::metrics::grpc_call(&service, &method, code, started.elapsed());
                response
            }
            .instrument(span),
        )
    }
}

/// `/backflow.gitsync.v1.GitSyncService/GetRun` → (`backflow.gitsync.v1.GitSyncService`, `GetRun`).
fn split_path(path: &str) -> (String, String) {
    let trimmed = path.trim_start_matches('/');
    match trimmed.split_once('/') {
        Some((service, method)) => (service.to_string(), method.to_string()),
        None => (trimmed.to_string(), String::new()),
    }
}

/// Parents `span` on the `traceparent` of plain HTTP request headers (webhooks).
pub fn set_parent_from_http(span: &tracing::Span, headers: &http::HeaderMap) {
    telemetry::set_remote_parent(span, &HttpHeaders(headers));
}

struct HttpHeaders<'a>(&'a http::HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

struct Metadata<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes());
        let value = tonic::metadata::MetadataValue::try_from(value.as_str());
        if let (Ok(key), Ok(value)) = (key, value) {
            self.0.insert(key, value);
        }
    }
}

/// Puts the current span's `traceparent` into a client request's metadata.
pub fn inject<T>(request: &mut tonic::Request<T>) {
    telemetry::inject_current(&mut Metadata(request.metadata_mut()));
}

/// A client interceptor doing [`inject`] on every call.
pub fn interceptor(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    inject(&mut request);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/backflow.gitsync.v1.GitSyncService/GetRun"),
            (
                "backflow.gitsync.v1.GitSyncService".to_string(),
                "GetRun".to_string()
            )
        );
        assert_eq!(split_path("/odd"), ("odd".to_string(), String::new()));
    }
}
