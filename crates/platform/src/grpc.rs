//! gRPC server defaults shared by every service: health (per service name and the
//! empty name), reflection listing exactly the services served, the auth layer
//! ([`crate::auth`]), TLS when configured, a fallback naming where an unserved service
//! lives ([`crate::front_door`]), keep-alives, and graceful shutdown on the
//! process-wide token.

use crate::auth::{AuthLayer, Policies, TokenVerifier};
use crate::shutdown::Shutdown;
use std::net::SocketAddr;
use std::sync::Arc;
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
    #[error("grpc auth: {0}")]
    Auth(String),
    #[error("grpc tls: {0}")]
    Tls(String),
}

/// Names of the always-open services every server adds.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
pub const REFLECTION_SERVICE: &str = "grpc.reflection.v1.ServerReflection";

/// How a server authenticates callers and whether it speaks TLS.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub verifier: Arc<dyn TokenVerifier>,
    pub tls: Option<tonic::transport::ServerTlsConfig>,
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
    options: ServeOptions,
    shutdown: Shutdown,
) -> Result<(), GrpcError> {
    let policies = Policies::backflow().map_err(|err| GrpcError::Auth(err.to_string()))?;
    if let Some(unknown) = service_names
        .iter()
        .find(|name| !policies.knows_service(name))
    {
        return Err(GrpcError::Auth(format!(
            "service {unknown} is not in the backflow descriptor set, so its methods have no access rules"
        )));
    }
    let auth = AuthLayer::new(policies, options.verifier, service_names);
    let (reporter, health_service) = tonic_health::server::health_reporter();
    for name in service_names {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(backflow_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(HEALTH_SERVICE)
        .with_service_name(REFLECTION_SERVICE);
    for name in service_names {
        reflection = reflection.with_service_name(*name);
    }
    let reflection = reflection
        .build_v1()
        .map_err(|err| GrpcError::Reflection(err.to_string()))?;
    let routes = routes.add_service(health_service).add_service(reflection);
    let routes = tonic::service::Routes::from(
        routes
            .into_axum_router()
            .fallback(crate::front_door::not_served),
    );
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let stopping = shutdown.clone();
    let on_stop = async move {
        stopping.cancelled().await;
        let unhealthy = reporter.clone();
        unhealthy
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = options.tls {
        builder = builder
            .tls_config(tls)
            .map_err(|err| GrpcError::Tls(err.to_string()))?;
    }
    let server = builder
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .tcp_nodelay(true)
        .layer(crate::trace_grpc::TraceLayer)
        .layer(auth)
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
