//! TLS (rustls, ring provider) for every listener a service opens, when a
//! certificate and key are configured: gRPC through tonic's own TLS support, plain
//! HTTP listeners (webhooks) through [`TlsListener`], and outgoing gRPC to another
//! Backflow service over `https://` trusting the configured CA.

use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
pub use tokio_rustls::rustls;

/// Bound on one TLS handshake of the HTTP listener.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Certificate chain and private key, PEM.
type PemPair = (Vec<u8>, Vec<u8>);

/// `<section>.tls`: both `cert_file` and `key_file` (PEM) turn TLS on for the
/// section's listeners; `ca_file` is the CA trusted for outgoing `https://` calls.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
    #[serde(default)]
    pub ca_file: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting}: {message}")]
    Invalid { setting: String, message: String },
}

fn invalid(setting: &str, message: impl std::fmt::Display) -> TlsError {
    TlsError::Invalid {
        setting: setting.to_string(),
        message: message.to_string(),
    }
}

fn read(setting: &str, path: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(Path::new(path)).map_err(|err| invalid(setting, format!("{path}: {err}")))
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty() || !self.key_file.is_empty()
    }

    fn pem_pair(&self, section: &str) -> Result<Option<PemPair>, TlsError> {
        match (self.cert_file.is_empty(), self.key_file.is_empty()) {
            (true, true) => Ok(None),
            (false, true) => Err(invalid(
                &format!("{section}.tls.key_file"),
                "required with tls.cert_file",
            )),
            (true, false) => Err(invalid(
                &format!("{section}.tls.cert_file"),
                "required with tls.key_file",
            )),
            (false, false) => Ok(Some((
                read(&format!("{section}.tls.cert_file"), &self.cert_file)?,
                read(&format!("{section}.tls.key_file"), &self.key_file)?,
            ))),
        }
    }

    /// tonic's server TLS settings, or `None` when TLS is off.
    pub fn grpc_server(
        &self,
        section: &str,
    ) -> Result<Option<tonic::transport::ServerTlsConfig>, TlsError> {
        // Parse once here so a bad file is a start-up error naming the setting.
        if self.rustls_server(section)?.is_none() {
            return Ok(None);
        }
        let Some((cert, key)) = self.pem_pair(section)? else {
            return Ok(None);
        };
        Ok(Some(
            tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(cert, key)),
        ))
    }

    /// A rustls server configuration (HTTP/2 and HTTP/1.1), or `None` when TLS is off.
    pub fn rustls_server(
        &self,
        section: &str,
    ) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let Some((cert, key)) = self.pem_pair(section)? else {
            return Ok(None);
        };
        let cert_setting = format!("{section}.tls.cert_file");
        let key_setting = format!("{section}.tls.key_file");
        let certs = CertificateDer::pem_slice_iter(&cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| invalid(&cert_setting, err))?;
        if certs.is_empty() {
            return Err(invalid(&cert_setting, "no certificate in the file"));
        }
        let key = PrivateKeyDer::from_pem_slice(&key).map_err(|err| invalid(&key_setting, err))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| invalid(&cert_setting, err))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|err| invalid(&key_setting, err))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }

    /// Client TLS for an outgoing call to `url`: `None` for `http://`; for
    /// `https://`, the CA in `ca_file` is trusted.
    pub fn grpc_client(
        &self,
        section: &str,
        url: &str,
    ) -> Result<Option<tonic::transport::ClientTlsConfig>, TlsError> {
        if !url.starts_with("https://") {
            return Ok(None);
        }
        if self.ca_file.is_empty() {
            return Err(invalid(
                &format!("{section}.tls.ca_file"),
                format!("required to call {url} over TLS"),
            ));
        }
        let ca = read(&format!("{section}.tls.ca_file"), &self.ca_file)?;
        Ok(Some(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
        ))
    }
}

/// A TCP listener that completes a TLS handshake before handing a connection to
/// axum; handshakes run concurrently, failed ones are logged and dropped.
pub struct TlsListener {
    local: std::io::Result<std::net::SocketAddr>,
    accepted: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<TcpStream>,
        std::net::SocketAddr,
    )>,
    _acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        let local = listener.local_addr();
        let (tx, accepted) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, sender) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "tls handshake failed"),
                        Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    break;
                }
            }
        });
        Self {
            local,
            accepted,
            _acceptor: task,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self._acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(pair) => pair,
            // The acceptor task ended (it never does while the listener lives).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match &self.local {
            Ok(addr) => Ok(*addr),
            Err(err) => Err(std::io::Error::new(err.kind(), err.to_string())),
        }
    }
}
