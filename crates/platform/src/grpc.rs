//! gRPC server defaults shared by every service: health (per service name and the
//! empty name), reflection from the one descriptor set, keep-alives, and graceful
//! shutdown on the process-wide token.

use crate::shutdown::Shutdown;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::service::Routes;

/// How long open connections may finish their calls after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("grpc reflection: {0}")]
    Reflection(String),
    #[error("grpc server: {0}")]
    Serve(String),
}

/// Binds early (so `App::build` fails fast and tests can use port 0).
pub async fn bind(addr: &str) -> Result<TcpListener, GrpcError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| GrpcError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Serves `routes` plus health and reflection until `shutdown`. `service_names` are
/// the fully-qualified gRPC service names reported SERVING.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    service_names: &[&str],
    shutdown: Shutdown,
) -> Result<(), GrpcError> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    for name in service_names {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(backflow_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|err| GrpcError::Reflection(err.to_string()))?;
    let routes = routes.add_service(health_service).add_service(reflection);
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let stopping = shutdown.clone();
    let on_stop = async move {
        stopping.cancelled().await;
        let unhealthy = reporter.clone();
        unhealthy
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    };
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .tcp_nodelay(true)
        .layer(crate::trace_grpc::TraceLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, on_stop);
    // Graceful shutdown waits for clients to hang up; a client that never does must
    // not keep the process alive past its termination grace period.
    let grace_over = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served.map_err(|err| GrpcError::Serve(err.to_string())),
        () = grace_over => {
            tracing::warn!(grace_ms = SHUTDOWN_GRACE.as_millis() as u64, "grpc clients still connected after the grace period; closing");
            Ok(())
        }
    }
}

/// Local address of a bound listener, for logs and tests.
pub fn local_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
