//! The secret operations behind the gRPC API: validation (by kind, see [`kinds`]),
//! sealing with the master key, and the access rule (material leaves only through
//! `resolve`, with a service token; GitHub App keys are used in place to issue
//! installation tokens and never leave at all).

use crate::envelope::{self, MasterKey};
use crate::error::CredentialsError;
use crate::github_app::{AppSettings, GitHubAppError, GitHubApps, InstallationToken};
use crate::kinds;
use crate::store::{SecretRecord, SecretStore};
use backflow_proto::credentials::v1::SecretKind;
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// Largest secret accepted (a PEM key with chain fits easily).
const MAX_MATERIAL_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct Secrets {
    store: SecretStore,
    master: MasterKey,
    service_tokens: Vec<String>,
    github: GitHubApps,
}

/// Defaults of [`GitHubApps`] when the caller sets none (see `config.rs`).
const GITHUB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const GITHUB_REFRESH_MARGIN: std::time::Duration = std::time::Duration::from_secs(300);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("master", &self.master)
            .field("service_tokens", &self.service_tokens.len())
            .finish_non_exhaustive()
    }
}

/// A request to create a secret, already decoded from the wire.
#[derive(Debug)]
pub struct NewSecret {
    pub workspace_id: String,
    pub name: String,
    pub kind: i32,
    pub material: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
}

/// Material handed to a trusted service.
pub struct Resolved {
    pub record: SecretRecord,
    pub version: i64,
    pub material: Vec<u8>,
}

impl Secrets {
    pub fn new(store: SecretStore, master: MasterKey, service_tokens: Vec<String>) -> Self {
        Self {
            store,
            master,
            service_tokens,
            github: GitHubApps::new(GITHUB_TIMEOUT, GITHUB_REFRESH_MARGIN),
        }
    }

    /// Uses `github` (configured timeouts and cache) for installation tokens.
    pub fn with_github(mut self, github: GitHubApps) -> Self {
        self.github = github;
        self
    }

    pub fn store(&self) -> &SecretStore {
        &self.store
    }

    pub async fn create(&self, new: NewSecret) -> Result<SecretRecord, CredentialsError> {
        require("workspace_id", &new.workspace_id)?;
        require("name", &new.name)?;
        validate_material(&new.material)?;
        let attributes = kinds::validate_new(new.kind, &new.material, &new.attributes)?;
        let now = backflow_platform::now_unix_ms();
        let record = SecretRecord {
            id: backflow_platform::new_id(),
            workspace_id: new.workspace_id,
            name: new.name,
            kind: new.kind,
            attributes,
            current_version: 1,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let binding = envelope::row_binding(&record.workspace_id, &record.id, 1);
        let sealed = envelope::seal(&self.master, &binding, &new.material)?;
        self.store.create(&record, &sealed).await?;
        tracing::info!(workspace_id = %record.workspace_id, secret_id = %record.id, kind = record.kind, "secret created");
        Ok(record)
    }

    pub async fn rotate(
        &self,
        workspace_id: &str,
        secret_id: &str,
        material: &[u8],
    ) -> Result<SecretRecord, CredentialsError> {
        require("workspace_id", workspace_id)?;
        validate_material(material)?;
        let current = self.get(workspace_id, secret_id).await?;
        kinds::validate_rotation(current.kind, material, &current.attributes)?;
        let record = self
            .store
            .rotate(workspace_id, secret_id, |version| {
                let binding = envelope::row_binding(workspace_id, secret_id, version);
                Ok(envelope::seal(&self.master, &binding, material)?)
            })
            .await?;
        tracing::info!(%workspace_id, %secret_id, version = record.current_version, "secret rotated");
        Ok(record)
    }

    /// Changes non-secret attributes (no new version): e.g. re-pinned host keys.
    pub async fn update_attributes(
        &self,
        workspace_id: &str,
        secret_id: &str,
        changes: &std::collections::BTreeMap<String, String>,
    ) -> Result<SecretRecord, CredentialsError> {
        require("workspace_id", workspace_id)?;
        let current = self.get(workspace_id, secret_id).await?;
        let attributes =
            kinds::validate_attribute_update(current.kind, &current.attributes, changes)?;
        let record = self
            .store
            .update_attributes(workspace_id, secret_id, &attributes)
            .await?;
        let keys: Vec<&str> = changes.keys().map(String::as_str).collect();
        tracing::info!(%workspace_id, %secret_id, ?keys, "secret attributes updated");
        Ok(record)
    }

    pub async fn get(
        &self,
        workspace_id: &str,
        secret_id: &str,
    ) -> Result<SecretRecord, CredentialsError> {
        self.store
            .get(workspace_id, secret_id)
            .await?
            .ok_or_else(|| CredentialsError::NotFound(secret_id.to_string()))
    }

    pub async fn list(&self, workspace_id: &str) -> Result<Vec<SecretRecord>, CredentialsError> {
        require("workspace_id", workspace_id)?;
        self.store.list(workspace_id).await
    }

    pub async fn delete(
        &self,
        workspace_id: &str,
        secret_id: &str,
    ) -> Result<(), CredentialsError> {
        if self.store.delete(workspace_id, secret_id).await? {
            tracing::info!(%workspace_id, %secret_id, "secret deleted");
            Ok(())
        } else {
            Err(CredentialsError::NotFound(secret_id.to_string()))
        }
    }

    /// Checks the caller's bearer token in constant time.
    pub fn authorize_service(&self, bearer: Option<&str>) -> Result<(), CredentialsError> {
        let Some(token) = bearer else {
            return Err(CredentialsError::Unauthenticated);
        };
        let known = self
            .service_tokens
            .iter()
            .filter(|known| !known.is_empty())
            .fold(false, |found, known| {
                found | bool::from(known.as_bytes().ct_eq(token.as_bytes()))
            });
        if known {
            Ok(())
        } else {
            Err(CredentialsError::Unauthenticated)
        }
    }

    /// Opens one version for a trusted service and records the access.
    pub async fn resolve(
        &self,
        workspace_id: &str,
        secret_id: &str,
        version: i64,
        purpose: &str,
    ) -> Result<Resolved, CredentialsError> {
        let (record, version, sealed) = self
            .store
            .sealed_version(workspace_id, secret_id, version)
            .await?
            .ok_or_else(|| CredentialsError::NotFound(secret_id.to_string()))?;
        let binding = envelope::row_binding(workspace_id, secret_id, version);
        let material = envelope::open(&self.master, &binding, &sealed)?;
        self.store
            .record_access(workspace_id, secret_id, version, "resolve", purpose)
            .await?;
        Ok(Resolved {
            record,
            version,
            material,
        })
    }
}

impl Secrets {
    /// An installation access token for a GitHub App secret's current version,
    /// from the cache or freshly exchanged; every call is audited.
    pub async fn issue_github_installation_token(
        &self,
        workspace_id: &str,
        secret_id: &str,
        purpose: &str,
    ) -> Result<InstallationToken, CredentialsError> {
        require("workspace_id", workspace_id)?;
        let (record, version, sealed) = self
            .store
            .sealed_version(workspace_id, secret_id, 0)
            .await?
            .ok_or_else(|| CredentialsError::NotFound(secret_id.to_string()))?;
        if record.kind != SecretKind::GithubApp as i32 {
            return Err(GitHubAppError::NotAGitHubApp(secret_id.to_string()).into());
        }
        let settings = AppSettings::from_attributes(&record.attributes)?;
        let token = self
            .github
            .installation_token(secret_id, version, &settings, || {
                let binding = envelope::row_binding(workspace_id, secret_id, version);
                Ok::<_, CredentialsError>(envelope::open(&self.master, &binding, &sealed)?)
            })
            .await?;
        self.store
            .record_access(
                workspace_id,
                secret_id,
                version,
                "github_installation_token",
                purpose,
            )
            .await?;
        Ok(token)
    }
}

fn require(field: &str, value: &str) -> Result<(), CredentialsError> {
    if value.trim().is_empty() {
        Err(CredentialsError::InvalidArgument(format!(
            "{field} is required"
        )))
    } else {
        Ok(())
    }
}

fn validate_material(material: &[u8]) -> Result<(), CredentialsError> {
    if material.is_empty() {
        return Err(CredentialsError::InvalidArgument(
            "material is required".into(),
        ));
    }
    if material.len() > MAX_MATERIAL_BYTES {
        return Err(CredentialsError::InvalidArgument(format!(
            "material is {} bytes; at most {MAX_MATERIAL_BYTES} are accepted",
            material.len()
        )));
    }
    Ok(())
}
