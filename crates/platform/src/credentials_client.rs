//! The one way a service gets secret material: gRPC calls to the credentials service
//! with the service's own token (`ResolveSecret`, `GetSecret`, GitHub installation
//! tokens). Every service that connects somewhere on a user's behalf (git-sync to a
//! repository, the catalog and the Reverse ETL executor to a warehouse, the executor to
//! a destination) resolves the secret just before connecting; material is held in
//! memory for that one use and never logged or stored. Errors say whether a retry may
//! help (credentials unreachable or slow) or not (unknown secret, no access).

use backflow_proto::credentials::v1 as pb;
use pb::credentials_service_client::CredentialsServiceClient;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum CredentialsClientError {
    #[error("{service}.credentials_url {url:?} is invalid: {message}")]
    Url {
        service: String,
        url: String,
        message: String,
    },
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

/// What a caller reads about a secret without its material.
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

impl ResolvedSecret {
    /// The material as text (passwords, tokens, PEM keys); `Err` if it is not UTF-8.
    pub fn text(self, secret_id: &str) -> Result<SecretString, CredentialsClientError> {
        String::from_utf8(self.material)
            .map(SecretString::from)
            .map_err(|_| CredentialsClientError::Call {
                secret_id: secret_id.to_string(),
                message: "the secret's material is not utf-8 text".into(),
                transient: false,
            })
    }
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
    bearer: SecretString,
    /// The calling service's config section, for messages (`git_sync`, `model_catalog`).
    service: String,
}

impl CredentialsClient {
    /// Connects lazily: the credentials service may start after the caller.
    pub fn new(
        service: &str,
        url: &str,
        service_token: &str,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Result<Self, CredentialsClientError> {
        let invalid = |message: String| CredentialsClientError::Url {
            service: service.to_string(),
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
            service: service.to_string(),
        })
    }

    fn request<T>(
        &self,
        secret_id: &str,
        message: T,
    ) -> Result<tonic::Request<T>, CredentialsClientError> {
        let mut request = tonic::Request::new(message);
        let value =
            self.bearer
                .expose_secret()
                .parse()
                .map_err(|_| CredentialsClientError::Call {
                    secret_id: secret_id.to_string(),
                    message: format!(
                        "{}.service_token contains characters not allowed in a header",
                        self.service
                    ),
                    transient: false,
                })?;
        request.metadata_mut().insert("authorization", value);
        crate::trace_grpc::inject(&mut request);
        Ok(request)
    }

    /// The secret's current material, for `purpose` (recorded in the access audit).
    pub async fn resolve(
        &self,
        workspace_id: &str,
        secret_id: &str,
        purpose: &str,
    ) -> Result<ResolvedSecret, CredentialsClientError> {
        let request = self.request(
            secret_id,
            pb::ResolveSecretRequest {
                workspace_id: workspace_id.to_string(),
                secret_id: secret_id.to_string(),
                version: 0,
                purpose: purpose.to_string(),
            },
        )?;
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

    /// [`Self::resolve`], with the material as text.
    pub async fn resolve_text(
        &self,
        workspace_id: &str,
        secret_id: &str,
        purpose: &str,
    ) -> Result<(pb::SecretKind, SecretString), CredentialsClientError> {
        let secret = self.resolve(workspace_id, secret_id, purpose).await?;
        let kind = secret.kind;
        Ok((kind, secret.text(secret_id)?))
    }

    /// The kind and version of a secret (no material travels).
    pub async fn metadata(
        &self,
        workspace_id: &str,
        secret_id: &str,
    ) -> Result<SecretMetadata, CredentialsClientError> {
        let request = self.request(
            secret_id,
            pb::GetSecretRequest {
                workspace_id: workspace_id.to_string(),
                secret_id: secret_id.to_string(),
            },
        )?;
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

    /// Stores new material under `name` (unique in the workspace); returns the secret's id.
    /// Used by services that receive a secret from elsewhere (dbt Cloud's webhook
    /// `hmac_secret`) and must keep it.
    pub async fn create_secret(
        &self,
        workspace_id: &str,
        name: &str,
        kind: pb::SecretKind,
        material: &[u8],
    ) -> Result<String, CredentialsClientError> {
        let request = self.request(
            name,
            pb::CreateSecretRequest {
                workspace_id: workspace_id.to_string(),
                name: name.to_string(),
                kind: kind as i32,
                material: material.to_vec(),
                attributes: Default::default(),
            },
        )?;
        let secret = self
            .client
            .clone()
            .create_secret(request)
            .await
            .map_err(|status| call_error(name, &status))?
            .into_inner()
            .secret
            .ok_or_else(|| CredentialsClientError::Call {
                secret_id: name.to_string(),
                message: "empty answer".into(),
                transient: false,
            })?;
        Ok(secret.id)
    }

    /// The id of the workspace's secret named `name`, if there is one.
    pub async fn find_secret(
        &self,
        workspace_id: &str,
        name: &str,
    ) -> Result<Option<String>, CredentialsClientError> {
        let request = self.request(
            name,
            pb::ListSecretsRequest {
                workspace_id: workspace_id.to_string(),
            },
        )?;
        let secrets = self
            .client
            .clone()
            .list_secrets(request)
            .await
            .map_err(|status| call_error(name, &status))?
            .into_inner()
            .secrets;
        Ok(secrets
            .into_iter()
            .find(|secret| secret.name == name)
            .map(|secret| secret.id))
    }

    /// Deletes a secret; one that is already gone counts as deleted.
    pub async fn delete_secret(
        &self,
        workspace_id: &str,
        secret_id: &str,
    ) -> Result<(), CredentialsClientError> {
        let request = self.request(
            secret_id,
            pb::DeleteSecretRequest {
                workspace_id: workspace_id.to_string(),
                secret_id: secret_id.to_string(),
            },
        )?;
        match self.client.clone().delete_secret(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
            Err(status) => Err(call_error(secret_id, &status)),
        }
    }

    /// A short-lived GitHub App installation token minted from a stored app secret.
    pub async fn github_installation_token(
        &self,
        workspace_id: &str,
        secret_id: &str,
        purpose: &str,
    ) -> Result<String, CredentialsClientError> {
        let request = self.request(
            secret_id,
            pb::IssueGitHubInstallationTokenRequest {
                workspace_id: workspace_id.to_string(),
                secret_id: secret_id.to_string(),
                purpose: purpose.to_string(),
            },
        )?;
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
                | tonic::Code::Unknown
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_is_transient_and_not_found_is_not() {
        let unavailable = call_error("s1", &tonic::Status::unavailable("down"));
        assert!(unavailable.is_transient());
        let missing = call_error("s1", &tonic::Status::not_found("no such secret"));
        assert!(!missing.is_transient());
        assert!(missing.to_string().contains("notfound: no such secret"));
    }

    #[test]
    fn bad_urls_name_the_service_setting() {
        let error = CredentialsClient::new("retl_scheduler", "not a url", "t", None).unwrap_err();
        assert!(matches!(error, CredentialsClientError::Url { .. }));
        assert!(error
            .to_string()
            .starts_with("retl_scheduler.credentials_url"));
    }

    #[test]
    fn material_that_is_not_text_is_refused() {
        let secret = ResolvedSecret {
            kind: pb::SecretKind::Unspecified,
            material: vec![0xff, 0xfe],
            attributes: BTreeMap::new(),
        };
        assert!(matches!(
            secret.text("s1"),
            Err(CredentialsClientError::Call {
                transient: false,
                ..
            })
        ));
    }
}
