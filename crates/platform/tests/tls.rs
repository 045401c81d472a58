//! TLS on both kinds of listener, with a CA and a `localhost` certificate this test
//! makes (rcgen): a gRPC server from `grpc::serve` answers health and an
//! authenticated Backflow call over TLS (and refuses plain text), and the webhook-style
//! HTTP listener (`tls::TlsListener` under axum) answers HTTPS.

use backflow_platform::auth::{AuthError, Principal, TokenVerifier};
use backflow_platform::grpc::ServeOptions;
use backflow_platform::shutdown::Shutdown;
use backflow_platform::tls::TlsConfig;
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Accepts one token, as a service.
#[derive(Debug)]
struct OneToken;

impl TokenVerifier for OneToken {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, AuthError>> {
        Box::pin(async move { Ok((token == "svc-tls").then_some(Principal::Service)) })
    }
}

/// A TokenService that answers every call UNAUTHENTICATED (the layer in front of it
/// is what this test exercises).
#[derive(Debug, Clone)]
struct NoTokens;

#[tonic::async_trait]
impl backflow_proto::auth::v1::token_service_server::TokenService for NoTokens {
    async fn authenticate_token(
        &self,
        _request: tonic::Request<backflow_proto::auth::v1::AuthenticateTokenRequest>,
    ) -> Result<tonic::Response<backflow_proto::auth::v1::AuthenticateTokenResponse>, tonic::Status>
    {
        Err(tonic::Status::unauthenticated("unknown token"))
    }
}

struct Pki {
    ca_pem: String,
    dir: tempfile::TempDir,
    tls: TlsConfig,
}

fn make_pki() -> anyhow::Result<Pki> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])?
        .signed_by(&leaf_key, &ca, &ca_key)?;
    let dir = tempfile::tempdir()?;
    let (cert_file, key_file, ca_file) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert_file, leaf.pem())?;
    std::fs::write(&key_file, leaf_key.serialize_pem())?;
    std::fs::write(&ca_file, ca.pem())?;
    Ok(Pki {
        ca_pem: ca.pem(),
        tls: TlsConfig {
            cert_file: cert_file.display().to_string(),
            key_file: key_file.display().to_string(),
            ca_file: ca_file.display().to_string(),
        },
        dir,
    })
}

#[tokio::test]
async fn grpc_and_http_listeners_speak_tls() -> anyhow::Result<()> {
    let pki = make_pki()?;
    let shutdown = Shutdown::new();

    // gRPC over TLS
    let listener = backflow_platform::grpc::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let routes = tonic::service::Routes::new(
        backflow_proto::auth::v1::token_service_server::TokenServiceServer::new(NoTokens),
    );
    let options = ServeOptions {
        verifier: Arc::new(OneToken),
        tls: pki.tls.grpc_server("test")?,
    };
    assert!(options.tls.is_some());
    tokio::spawn(backflow_platform::grpc::serve(
        listener,
        routes,
        &["backflow.auth.v1.TokenService"],
        options,
        shutdown.clone(),
    ));
    let url = format!("https://localhost:{port}");
    let client_tls = pki
        .tls
        .grpc_client("test", &url)?
        .ok_or_else(|| anyhow::anyhow!("https needs client tls"))?
        .domain_name("localhost");
    let channel = tonic::transport::Endpoint::from_shared(url)?
        .tls_config(client_tls)?
        .connect()
        .await?;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "backflow.auth.v1.TokenService".into(),
        })
        .await?
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut tokens =
        backflow_proto::auth::v1::token_service_client::TokenServiceClient::new(channel);
    let refused = tokens
        .authenticate_token(backflow_proto::auth::v1::AuthenticateTokenRequest {
            token: "x".into(),
        })
        .await
        .err()
        .map(|status| status.code());
    assert_eq!(
        refused,
        Some(tonic::Code::Unauthenticated),
        "no bearer: the layer refuses"
    );
    let mut request = tonic::Request::new(backflow_proto::auth::v1::AuthenticateTokenRequest {
        token: "x".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer svc-tls".parse()?);
    let handled = tokens.authenticate_token(request).await.err();
    assert_eq!(
        handled.as_ref().map(|status| status.message()),
        Some("unknown token"),
        "a service token reaches the handler over tls"
    );
    // Plain text is not answered.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?
        .connect()
        .await;
    if let Ok(plain) = plain {
        let mut health = tonic_health::pb::health_client::HealthClient::new(plain);
        assert!(health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .is_err());
    }

    // HTTP (webhook listener) over TLS
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http_port = http.local_addr()?.port();
    let server_config = pki
        .tls
        .rustls_server("test")?
        .ok_or_else(|| anyhow::anyhow!("tls configured"))?;
    let router = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let tls_listener = backflow_platform::tls::TlsListener::new(http, server_config);
    tokio::spawn(async move { axum::serve(tls_listener, router).await });
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in rustls_pki_pem(&pki.ca_pem)? {
        roots.add(cert)?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let client = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", http_port)).await?;
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost")?;
    let mut stream = connector.connect(name, tcp).await?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");
    drop(pki.dir);
    shutdown.cancel();
    Ok(())
}

fn rustls_pki_pem(
    pem: &str,
) -> anyhow::Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    Ok(
        tokio_rustls::rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()?,
    )
}
