//! The secrets the listener reads and keeps in the credentials service: a connection's
//! dbt Cloud API token (read just before each call to dbt Cloud, never stored here) and
//! the `hmac_secret` of each webhook subscription it creates (kind WEBHOOK_SECRET, named
//! after dbt's subscription id so that a secret kept just before a crash is found again).

use crate::error::DbtCloudError;
use backflow_platform::credentials_client::{CredentialsClient, CredentialsClientError};
use backflow_proto::credentials::v1::SecretKind;
use secrecy::{ExposeSecret, SecretString};

/// The name of the secret holding the `hmac_secret` of dbt Cloud subscription `wsu_…`.
pub fn webhook_secret_name(dbt_webhook_id: &str) -> String {
    format!("dbt-cloud-webhook-{dbt_webhook_id}")
}

#[derive(Debug, Clone)]
pub struct Secrets {
    credentials: CredentialsClient,
}

fn error_of(what: &str, error: CredentialsClientError) -> DbtCloudError {
    DbtCloudError::Credentials {
        transient: error.is_transient(),
        message: format!("{what}: {error}"),
    }
}

impl Secrets {
    pub fn new(credentials: CredentialsClient) -> Self {
        Self { credentials }
    }

    pub fn client(&self) -> &CredentialsClient {
        &self.credentials
    }

    /// A connection's API token.
    pub async fn api_token(
        &self,
        workspace_id: &str,
        credential_id: &str,
    ) -> Result<SecretString, DbtCloudError> {
        let (_, token) = self
            .credentials
            .resolve_text(workspace_id, credential_id, "dbt cloud api")
            .await
            .map_err(|error| error_of("cannot read the dbt cloud api token", error))?;
        let trimmed = token.expose_secret().trim();
        if trimmed.is_empty() {
            return Err(DbtCloudError::InvalidArgument(format!(
                "api token credential {credential_id} is empty"
            )));
        }
        Ok(SecretString::from(trimmed.to_string()))
    }

    /// Keeps a subscription's `hmac_secret`; returns the secret's id.
    pub async fn keep_webhook_secret(
        &self,
        workspace_id: &str,
        dbt_webhook_id: &str,
        hmac_secret: &SecretString,
    ) -> Result<String, DbtCloudError> {
        self.credentials
            .create_secret(
                workspace_id,
                &webhook_secret_name(dbt_webhook_id),
                SecretKind::WebhookSecret,
                hmac_secret.expose_secret().as_bytes(),
            )
            .await
            .map_err(|error| error_of("cannot keep the webhook's hmac secret", error))
    }

    /// The kept secret of subscription `wsu_…`, if one was kept.
    pub async fn find_webhook_secret(
        &self,
        workspace_id: &str,
        dbt_webhook_id: &str,
    ) -> Result<Option<String>, DbtCloudError> {
        self.credentials
            .find_secret(workspace_id, &webhook_secret_name(dbt_webhook_id))
            .await
            .map_err(|error| error_of("cannot look up the webhook's hmac secret", error))
    }

    /// Deletes a kept secret (already gone counts as deleted).
    pub async fn delete(&self, workspace_id: &str, secret_id: &str) -> Result<(), DbtCloudError> {
        if secret_id.is_empty() {
            return Ok(());
        }
        self.credentials
            .delete_secret(workspace_id, secret_id)
            .await
            .map_err(|error| error_of("cannot delete the webhook's hmac secret", error))
    }
}
