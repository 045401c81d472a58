//! The gRPC edge of the credentials service: decodes requests, calls [`Secrets`], and
//! maps [`CredentialsError`] to status codes in one place.

use crate::error::CredentialsError;
use crate::github_app::GitHubAppError;
use crate::secrets::{NewSecret, Secrets};
use crate::store::SecretRecord;
use crate::tokens::ApiTokens;
use backflow_proto::auth::v1 as auth_pb;
use backflow_proto::credentials::v1 as pb;
use pb::credentials_service_server::CredentialsService;
use tonic::{Request, Response, Status};

pub const SERVICE_NAME: &str = "backflow.credentials.v1.CredentialsService";
pub const TOKEN_SERVICE_NAME: &str = "backflow.auth.v1.TokenService";

/// `TokenService`: other services verify their callers' tokens here (the auth layer
/// admits only service tokens to it).
#[derive(Debug, Clone)]
pub struct TokenGrpc {
    tokens: ApiTokens,
}

impl TokenGrpc {
    pub fn new(tokens: ApiTokens) -> Self {
        Self { tokens }
    }

    pub fn into_server(self) -> auth_pb::token_service_server::TokenServiceServer<Self> {
        auth_pb::token_service_server::TokenServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl auth_pb::token_service_server::TokenService for TokenGrpc {
    async fn authenticate_token(
        &self,
        request: Request<auth_pb::AuthenticateTokenRequest>,
    ) -> Result<Response<auth_pb::AuthenticateTokenResponse>, Status> {
        let token = request.into_inner().token;
        match self.tokens.authenticate(&token).await? {
            Some(principal) => Ok(Response::new(backflow_platform::auth::response_of(
                &principal,
            ))),
            None => Err(Status::unauthenticated("unknown or revoked token")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CredentialsGrpc {
    secrets: Secrets,
}

impl CredentialsGrpc {
    pub fn new(secrets: Secrets) -> Self {
        Self { secrets }
    }

    pub fn into_server(self) -> pb::credentials_service_server::CredentialsServiceServer<Self> {
        pb::credentials_service_server::CredentialsServiceServer::new(self)
    }
}

/// Request errors reach callers through platform's one mapping
/// ([`backflow_platform::request_error::to_status`]).
impl backflow_platform::request_error::RequestError for CredentialsError {
    const SERVICE: &'static str = "credentials";

    fn kind(&self) -> backflow_platform::request_error::RequestErrorKind {
        use backflow_platform::request_error::RequestErrorKind as Kind;
        match self {
            CredentialsError::InvalidArgument(_) => Kind::InvalidArgument,
            CredentialsError::NotFound(_) => Kind::NotFound,
            CredentialsError::AlreadyExists(_) => Kind::AlreadyExists,
            CredentialsError::Unauthenticated => Kind::Unauthenticated,
            CredentialsError::GitHubApp(GitHubAppError::Unavailable(_)) => Kind::Unavailable,
            CredentialsError::GitHubApp(
                GitHubAppError::NotAGitHubApp(_)
                | GitHubAppError::Settings(_)
                | GitHubAppError::Key(_)
                | GitHubAppError::Rejected { .. }
                | GitHubAppError::InstallationNotFound { .. },
            ) => Kind::FailedPrecondition,
            _ => Kind::Internal,
        }
    }
}

impl From<CredentialsError> for Status {
    fn from(error: CredentialsError) -> Self {
        backflow_platform::request_error::to_status(&error)
    }
}

fn secret_of(record: SecretRecord) -> pb::Secret {
    pb::Secret {
        id: record.id,
        workspace_id: record.workspace_id,
        name: record.name,
        kind: record.kind,
        attributes: record.attributes.into_iter().collect(),
        current_version: record.current_version,
        created_at_unix_ms: record.created_at_ms,
        updated_at_unix_ms: record.updated_at_ms,
    }
}

fn bearer<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_string)
}

#[tonic::async_trait]
impl CredentialsService for CredentialsGrpc {
    async fn create_secret(
        &self,
        request: Request<pb::CreateSecretRequest>,
    ) -> Result<Response<pb::CreateSecretResponse>, Status> {
        let request = request.into_inner();
        let record = self
            .secrets
            .create(NewSecret {
                workspace_id: request.workspace_id,
                name: request.name,
                kind: request.kind,
                material: request.material,
                attributes: request.attributes.into_iter().collect(),
            })
            .await?;
        Ok(Response::new(pb::CreateSecretResponse {
            secret: Some(secret_of(record)),
        }))
    }

    async fn rotate_secret(
        &self,
        request: Request<pb::RotateSecretRequest>,
    ) -> Result<Response<pb::RotateSecretResponse>, Status> {
        let request = request.into_inner();
        let record = self
            .secrets
            .rotate(&request.workspace_id, &request.secret_id, &request.material)
            .await?;
        Ok(Response::new(pb::RotateSecretResponse {
            secret: Some(secret_of(record)),
        }))
    }

    async fn update_secret_attributes(
        &self,
        request: Request<pb::UpdateSecretAttributesRequest>,
    ) -> Result<Response<pb::UpdateSecretAttributesResponse>, Status> {
        let request = request.into_inner();
        let changes = request.attributes.into_iter().collect();
        let record = self
            .secrets
            .update_attributes(&request.workspace_id, &request.secret_id, &changes)
            .await?;
        Ok(Response::new(pb::UpdateSecretAttributesResponse {
            secret: Some(secret_of(record)),
        }))
    }

    async fn delete_secret(
        &self,
        request: Request<pb::DeleteSecretRequest>,
    ) -> Result<Response<pb::DeleteSecretResponse>, Status> {
        let request = request.into_inner();
        self.secrets
            .delete(&request.workspace_id, &request.secret_id)
            .await?;
        Ok(Response::new(pb::DeleteSecretResponse {}))
    }

    async fn get_secret(
        &self,
        request: Request<pb::GetSecretRequest>,
    ) -> Result<Response<pb::GetSecretResponse>, Status> {
        let request = request.into_inner();
        let record = self
            .secrets
            .get(&request.workspace_id, &request.secret_id)
            .await?;
        Ok(Response::new(pb::GetSecretResponse {
            secret: Some(secret_of(record)),
        }))
    }

    async fn list_secrets(
        &self,
        request: Request<pb::ListSecretsRequest>,
    ) -> Result<Response<pb::ListSecretsResponse>, Status> {
        let records = self
            .secrets
            .list(&request.into_inner().workspace_id)
            .await?;
        Ok(Response::new(pb::ListSecretsResponse {
            secrets: records.into_iter().map(secret_of).collect(),
        }))
    }

    async fn resolve_secret(
        &self,
        request: Request<pb::ResolveSecretRequest>,
    ) -> Result<Response<pb::ResolveSecretResponse>, Status> {
        self.secrets
            .authorize_service(bearer(&request).as_deref())?;
        let request = request.into_inner();
        let resolved = self
            .secrets
            .resolve(
                &request.workspace_id,
                &request.secret_id,
                request.version,
                &request.purpose,
            )
            .await?;
        Ok(Response::new(pb::ResolveSecretResponse {
            material: resolved.material,
            version: resolved.version,
            kind: resolved.record.kind,
            attributes: resolved.record.attributes.into_iter().collect(),
        }))
    }

    async fn issue_git_hub_installation_token(
        &self,
        request: Request<pb::IssueGitHubInstallationTokenRequest>,
    ) -> Result<Response<pb::IssueGitHubInstallationTokenResponse>, Status> {
        self.secrets
            .authorize_service(bearer(&request).as_deref())?;
        let request = request.into_inner();
        let token = self
            .secrets
            .issue_github_installation_token(
                &request.workspace_id,
                &request.secret_id,
                &request.purpose,
            )
            .await?;
        Ok(Response::new(pb::IssueGitHubInstallationTokenResponse {
            token: token.token,
            expires_at_unix_ms: token.expires_at_ms,
        }))
    }
}
