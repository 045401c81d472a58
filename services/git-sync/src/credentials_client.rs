//! The only way git-sync gets secret material: a gRPC call to the credentials service
//! with git-sync's service token. Material is held in memory for one sync and never
//! logged or stored here.

use backflow_proto::credentials::v1 as pb;
use pb::credentials_service_client::CredentialsServiceClient;
use std::collections::BTreeMap;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum CredentialsClientError {
    #[error("git_sync.credentials_url {url:?} is invalid: {message}")]
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

/// What git-sync reads about a secret without its material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMetadata {
    pub kind: pb::SecretKind,
    /// Changes whenever the material or the attributes change.
    pub version: String,
}

/// Material and attributes of one secret version.
pub struct ResolvedSecret {
    pub kind: pb::SecretKind,
    pub material: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
}

impl std::fmt::Debug for ResolvedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedSecret")
            .field("kind", &self.kind)
            .field("attributes", &self.attributes)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct CredentialsClient {
    client: CredentialsServiceClient<Channel>,
    bearer: String,
}

impl CredentialsClient {
    /// Connects lazily: the credentials service may start after git-sync.
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
            bearer: format!("Bearer {service_token}"),
        })
    }

    fn request<T>(&self, message: T) -> Result<tonic::Request<T>, CredentialsClientError> {
        let mut request = tonic::Request::new(message);
        let value = self
            .bearer
            .parse()
            .map_err(|_| CredentialsClientError::Call {
                secret_id: String::new(),
                message: "git_sync.service_token contains characters not allowed in a header"
                    .into(),
                transient: false,
            })?;
        request.metadata_mut().insert("authorization", value);
        backflow_platform::trace_grpc::inject(&mut request);
        Ok(request)
    }

    pub async fn resolve(
        &self,
        workspace_id: &str,
        secret_id: &str,
        purpose: &str,
    ) -> Result<ResolvedSecret, CredentialsClientError> {
        let request = self.request(pb::ResolveSecretRequest {
            workspace_id: workspace_id.to_string(),
            secret_id: secret_id.to_string(),
            version: 0,
            purpose: purpose.to_string(),
        })?;
        let response = self
            .client
            .clone()
            .resolve_secret(request)
            .await
            .map_err(|status| call_error(secret_id, &status))?
            .into_inner();
        Ok(ResolvedSecret {
            kind: pb::SecretKind::try_from(response.kind).unwrap_or(pb::SecretKind::Unspecified),
            material: response.material,
            attributes: response.attributes.into_iter().collect(),
        })
    }

    /// The kind and version of a secret (no material travels).
    pub async fn metadata(
        &self,
        workspace_id: &str,
        secret_id: &str,
    ) -> Result<SecretMetadata, CredentialsClientError> {
        let request = self.request(pb::GetSecretRequest {
            workspace_id: workspace_id.to_string(),
            secret_id: secret_id.to_string(),
        })?;
        let secret = self
            .client
            .clone()
            .get_secret(request)
            .await
            .map_err(|status| call_error(secret_id, &status))?
            .into_inner()
            .secret
            .ok_or_else(|| CredentialsClientError::Call {
                secret_id: secret_id.to_string(),
                message: "empty answer".into(),
                transient: false,
            })?;
        Ok(SecretMetadata {
            kind: pb::SecretKind::try_from(secret.kind).unwrap_or(pb::SecretKind::Unspecified),
            version: format!("{}@{}", secret.current_version, secret.updated_at_unix_ms),
        })
    }

    pub async fn github_installation_token(
        &self,
        workspace_id: &str,
        secret_id: &str,
        purpose: &str,
    ) -> Result<String, CredentialsClientError> {
        let request = self.request(pb::IssueGitHubInstallationTokenRequest {
            workspace_id: workspace_id.to_string(),
            secret_id: secret_id.to_string(),
            purpose: purpose.to_string(),
        })?;
        let response = self
            .client
            .clone()
            .issue_git_hub_installation_token(request)
            .await
            .map_err(|status| call_error(secret_id, &status))?
            .into_inner();
        Ok(response.token)
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
        ),
    }
}
