//! The only way the catalog gets a warehouse secret: a gRPC `ResolveSecret` call to
//! the credentials service with the catalog's service token, made just before
//! connecting. Material is held in memory for one connector and never logged or stored.

use backflow_proto::credentials::v1 as pb;
use pb::credentials_service_client::CredentialsServiceClient;
use secrecy::SecretString;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum CredentialsClientError {
    #[error("model_catalog.credentials_url {url:?} is invalid: {message}")]
    Url { url: String, message: String },
    #[error("credential {secret_id}: {message}")]
    Call {
        secret_id: String,
        message: String,
        /// The credentials service was unreachable or slow (worth retrying later).
        transient: bool,
    },
}

impl CredentialsClientError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Call {
                transient: true,
                ..
            }
        )
    }
}

/// The material and kind of one secret.
pub struct ResolvedSecret {
    pub kind: pb::SecretKind,
    pub material: SecretString,
}

impl std::fmt::Debug for ResolvedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedSecret")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct CredentialsClient {
    client: CredentialsServiceClient<Channel>,
    bearer: SecretString,
}

impl CredentialsClient {
    /// Connects lazily: the credentials service may start after the catalog.
    pub fn new(
        url: &str,
        service_token: &str,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Result<Self, CredentialsClientError> {
        let invalid = |message: String| CredentialsClientError::Url {
            url: url.to_string(),
            message,
        };
        let mut endpoint =
            Endpoint::from_shared(url.to_string()).map_err(|err| invalid(err.to_string()))?;
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|err| invalid(err.to_string()))?;
        }
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .connect_lazy();
        Ok(Self {
            client: CredentialsServiceClient::new(channel),
            bearer: SecretString::from(format!("Bearer {service_token}")),
        })
    }

    /// The secret's current material, for `purpose` (recorded in the access audit).
    pub async fn resolve(
        &self,
        workspace_id: &str,
        secret_id: &str,
        purpose: &str,
    ) -> Result<ResolvedSecret, CredentialsClientError> {
        use secrecy::ExposeSecret;
        let mut request = tonic::Request::new(pb::ResolveSecretRequest {
            workspace_id: workspace_id.to_string(),
            secret_id: secret_id.to_string(),
            version: 0,
            purpose: purpose.to_string(),
        });
        let value =
            self.bearer
                .expose_secret()
                .parse()
                .map_err(|_| CredentialsClientError::Call {
                    secret_id: secret_id.to_string(),
                    message:
                        "model_catalog.service_token contains characters not allowed in a header"
                            .into(),
                    transient: false,
                })?;
        request.metadata_mut().insert("authorization", value);
        backflow_platform::trace_grpc::inject(&mut request);
        let response = self
            .client
            .clone()
            .resolve_secret(request)
            .await
            .map_err(|status| call_error(secret_id, &status))?
            .into_inner();
        let material =
            String::from_utf8(response.material).map_err(|_| CredentialsClientError::Call {
                secret_id: secret_id.to_string(),
                message: "the secret's material is not utf-8 text".into(),
                transient: false,
            })?;
        Ok(ResolvedSecret {
            kind: pb::SecretKind::try_from(response.kind).unwrap_or(pb::SecretKind::Unspecified),
            material: SecretString::from(material),
        })
    }
}

fn call_error(secret_id: &str, status: &tonic::Status) -> CredentialsClientError {
    CredentialsClientError::Call {
        secret_id: secret_id.to_string(),
        message: format!("{:?}: {}", status.code(), status.message()).to_lowercase(),
        transient: matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::ResourceExhausted
                | tonic::Code::Unknown
        ),
    }
}
