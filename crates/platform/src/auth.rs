//! The one place gRPC callers are authenticated and scoped (DESIGN §6). Every
//! Backflow RPC declares who may call it with the `(backflow.auth.v1.access)` method
//! option; [`Policies`] reads those options and each request type's `workspace_id`
//! field from the descriptor set that reflection serves, and [`AuthLayer`] (a tower
//! layer on every Backflow gRPC server) enforces them before any handler runs:
//!
//! - no `authorization: Bearer <token>`, or an unknown/revoked token: UNAUTHENTICATED;
//! - a service token may call everything (service-to-service calls);
//! - `ACCESS_SERVICE` methods refuse every tool token: PERMISSION_DENIED;
//! - `ACCESS_WRITE` methods refuse viewer tokens: PERMISSION_DENIED;
//! - a workspace token naming another workspace (the request's `workspace_id`, decoded
//!   generically with prost-reflect): PERMISSION_DENIED. A method whose request has no
//!   `workspace_id` (or that streams requests) is open to operator tokens only.
//!
//! A method without the option is treated as a write. Health and reflection (not in
//! the Backflow descriptor set) stay open. Tokens are verified by a [`TokenVerifier`]:
//! the credentials service checks its own table, every other service asks it through
//! `TokenService.AuthenticateToken` ([`RemoteVerifier`]) and caches the answer for
//! [`TOKEN_CACHE_TTL`], so a revoked token stops working within that time.

use backflow_proto::auth::v1 as pb;
use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, MessageDescriptor, Value};
use sha2::Digest;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tonic::body::Body;
use tonic::Status;

/// How long another service trusts an answer of `AuthenticateToken`: revoking a
/// token takes effect everywhere within this time.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Largest request body the layer reads to find `workspace_id` (tonic's own default
/// limit on a decoded message).
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024 + 5;

/// Cached answers kept at most; the cache is emptied when it grows past this.
const MAX_CACHED_TOKENS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// Who is calling, as established from the bearer token. Handlers may read it from
/// the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Another Backflow service (a configured service token).
    Service,
    /// A person or tool with an API token; `workspace_id` is `None` for operator tokens.
    Tool {
        token_id: String,
        workspace_id: Option<String>,
        role: Role,
    },
}

/// Who may call one method (the `access` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Service,
}

#[derive(Debug, Clone)]
pub struct MethodPolicy {
    pub access: Access,
    /// False when the option is missing (the method is then treated as a write).
    pub declared: bool,
    input: MessageDescriptor,
    workspace_field: Option<FieldDescriptor>,
    client_streaming: bool,
}

impl MethodPolicy {
    /// Whether the layer can read a workspace from this method's request.
    pub fn scoped_to_workspace(&self) -> bool {
        self.workspace_field.is_some() && !self.client_streaming
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("descriptor set: {0}")]
    Descriptors(String),
    #[error("{0}")]
    Config(String),
    #[error("cannot verify token: {0}")]
    Unavailable(String),
}

/// The access rule of every method in a descriptor set, by gRPC path.
#[derive(Debug, Clone)]
pub struct Policies {
    by_path: HashMap<String, MethodPolicy>,
    services: BTreeSet<String>,
}

impl Policies {
    /// The rules of every Backflow service (the descriptor set reflection serves).
    pub fn backflow() -> Result<Self, AuthError> {
        Self::from_descriptor_set(backflow_proto::FILE_DESCRIPTOR_SET)
    }

    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Self, AuthError> {
        let pool =
            DescriptorPool::decode(bytes).map_err(|err| AuthError::Descriptors(err.to_string()))?;
        let extension = pool
            .get_extension_by_name("backflow.auth.v1.access")
            .ok_or_else(|| {
                AuthError::Descriptors("option backflow.auth.v1.access is not defined".into())
            })?;
        let mut by_path = HashMap::new();
        let mut services = BTreeSet::new();
        for service in pool.services() {
            services.insert(service.full_name().to_string());
            for method in service.methods() {
                let options = method.options();
                let declared = options.has_extension(&extension);
                let access = match options.get_extension(&extension).as_ref() {
                    Value::EnumNumber(n) if *n == pb::Access::Read as i32 => Access::Read,
                    Value::EnumNumber(n) if *n == pb::Access::Service as i32 => Access::Service,
                    _ => Access::Write,
                };
                let input = method.input();
                let workspace_field = input
                    .get_field_by_name("workspace_id")
                    .filter(|field| matches!(field.kind(), prost_reflect::Kind::String));
                by_path.insert(
                    format!("/{}/{}", service.full_name(), method.name()),
                    MethodPolicy {
                        access,
                        declared,
                        input,
                        workspace_field,
                        client_streaming: method.is_client_streaming(),
                    },
                );
            }
        }
        Ok(Self { by_path, services })
    }

    pub fn get(&self, path: &str) -> Option<&MethodPolicy> {
        self.by_path.get(path)
    }

    /// Every `(path, policy)`, for tests and start-up checks.
    pub fn methods(&self) -> impl Iterator<Item = (&str, &MethodPolicy)> {
        self.by_path
            .iter()
            .map(|(path, policy)| (path.as_str(), policy))
    }

    pub fn knows_service(&self, name: &str) -> bool {
        self.services.contains(name)
    }
}

/// Why a call is refused, before any handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Unauthenticated(String),
    PermissionDenied(String),
}

impl From<Denied> for Status {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Unauthenticated(message) => Status::unauthenticated(message),
            Denied::PermissionDenied(message) => Status::permission_denied(message),
        }
    }
}

/// The rule itself, pure: may `principal` call a method of `access` naming
/// `workspace` (`None` when the request carries no workspace)?
pub fn decide(
    access: Access,
    principal: &Principal,
    workspace: Option<&str>,
) -> Result<(), Denied> {
    let (workspace_of_token, role) = match principal {
        Principal::Service => return Ok(()),
        Principal::Tool {
            workspace_id, role, ..
        } => (workspace_id.as_deref(), *role),
    };
    match access {
        Access::Service => {
            return Err(Denied::PermissionDenied(
                "this method is for backflow services only".into(),
            ))
        }
        Access::Write if role == Role::Viewer => {
            return Err(Denied::PermissionDenied(
                "a viewer token cannot call a write method".into(),
            ))
        }
        Access::Read | Access::Write => {}
    }
    match (workspace_of_token, workspace) {
        (None, _) => Ok(()),
        (Some(own), Some(named)) if own == named => Ok(()),
        (Some(own), Some(named)) => Err(Denied::PermissionDenied(format!(
            "token is for workspace {own:?}, the request names workspace {named:?}"
        ))),
        (Some(own), None) => Err(Denied::PermissionDenied(format!(
            "token is for workspace {own:?}; this method needs an operator token"
        ))),
    }
}

/// Establishes who holds a token: `Ok(None)` for an unknown or revoked token.
pub trait TokenVerifier: Send + Sync + std::fmt::Debug + 'static {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, AuthError>>;
}

/// SHA-256 of a token, hex: the only form in which tokens are stored or cached.
pub fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Asks the credentials service (`TokenService.AuthenticateToken`) with this
/// service's own service token, caching answers for [`TOKEN_CACHE_TTL`].
#[derive(Debug)]
pub struct RemoteVerifier {
    client: pb::token_service_client::TokenServiceClient<tonic::transport::Channel>,
    bearer: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    cache: Mutex<HashMap<String, (Instant, Option<Principal>)>>,
    ttl: Duration,
}

impl RemoteVerifier {
    /// `setting` names the configuration section in errors (e.g. `git_sync`).
    /// Connects lazily: credentials may start after this service.
    pub fn new(
        setting: &str,
        credentials_url: &str,
        service_token: &str,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Result<Self, AuthError> {
        if service_token.is_empty() {
            return Err(AuthError::Config(format!(
                "{setting}.service_token: required, to verify callers' tokens with the credentials service"
            )));
        }
        let bearer = format!("Bearer {service_token}").parse().map_err(|_| {
            AuthError::Config(format!(
                "{setting}.service_token contains characters not allowed in a header"
            ))
        })?;
        let mut endpoint = tonic::transport::Endpoint::from_shared(credentials_url.to_string())
            .map_err(|err| {
                AuthError::Config(format!(
                    "{setting}.credentials_url {credentials_url:?} is invalid: {err}"
                ))
            })?;
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).map_err(|err| {
                AuthError::Config(format!("{setting}.credentials_url tls: {err}"))
            })?;
        }
        let channel = endpoint
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Self {
            client: pb::token_service_client::TokenServiceClient::new(channel),
            bearer,
            cache: Mutex::new(HashMap::new()),
            ttl: TOKEN_CACHE_TTL,
        })
    }

    fn cached(&self, key: &str) -> Option<Option<Principal>> {
        let cache = self.cache.lock().ok()?;
        let (at, principal) = cache.get(key)?;
        (at.elapsed() < self.ttl).then(|| principal.clone())
    }

    fn remember(&self, key: String, principal: Option<Principal>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED_TOKENS {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), principal));
        }
    }
}

/// The principal carried by an `AuthenticateToken` answer.
pub fn principal_of(response: pb::AuthenticateTokenResponse) -> Option<Principal> {
    match response.principal? {
        pb::authenticate_token_response::Principal::Service(_) => Some(Principal::Service),
        pb::authenticate_token_response::Principal::Tool(tool) => {
            let role = match pb::Role::try_from(tool.role).ok()? {
                pb::Role::Admin => Role::Admin,
                pb::Role::Viewer => Role::Viewer,
                pb::Role::Unspecified => return None,
            };
            Some(Principal::Tool {
                token_id: tool.token_id,
                workspace_id: (!tool.workspace_id.is_empty()).then_some(tool.workspace_id),
                role,
            })
        }
    }
}

/// The `AuthenticateToken` answer for a principal (the credentials side).
pub fn response_of(principal: &Principal) -> pb::AuthenticateTokenResponse {
    use pb::authenticate_token_response::Principal as Wire;
    let principal = match principal {
        Principal::Service => Wire::Service(pb::ServicePrincipal {}),
        Principal::Tool {
            token_id,
            workspace_id,
            role,
        } => Wire::Tool(pb::ToolPrincipal {
            token_id: token_id.clone(),
            workspace_id: workspace_id.clone().unwrap_or_default(),
            role: match role {
                Role::Admin => pb::Role::Admin as i32,
                Role::Viewer => pb::Role::Viewer as i32,
            },
        }),
    };
    pb::AuthenticateTokenResponse {
        principal: Some(principal),
    }
}

impl TokenVerifier for RemoteVerifier {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Principal>, AuthError>> {
        Box::pin(async move {
            let key = token_hash(token);
            if let Some(answer) = self.cached(&key) {
                return Ok(answer);
            }
            let mut request = tonic::Request::new(pb::AuthenticateTokenRequest {
                token: token.to_string(),
            });
            request
                .metadata_mut()
                .insert("authorization", self.bearer.clone());
            let answer = match self.client.clone().authenticate_token(request).await {
                Ok(response) => principal_of(response.into_inner()),
                Err(status) if status.code() == tonic::Code::Unauthenticated => None,
                Err(status) => return Err(AuthError::Unavailable(status.message().to_string())),
            };
            self.remember(key, answer.clone());
            Ok(answer)
        })
    }
}

/// The tower layer that enforces [`Policies`] on a gRPC server. `served` are the
/// service names this server answers; calls for other services pass through to the
/// router's fallback, which says where they are served.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    inner: Arc<LayerState>,
}

#[derive(Debug)]
struct LayerState {
    policies: Policies,
    verifier: Arc<dyn TokenVerifier>,
    served: BTreeSet<String>,
}

impl AuthLayer {
    pub fn new(policies: Policies, verifier: Arc<dyn TokenVerifier>, served: &[&str]) -> Self {
        Self {
            inner: Arc::new(LayerState {
                policies,
                verifier,
                served: served.iter().map(|name| name.to_string()).collect(),
            }),
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            state: self.inner.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    state: Arc<LayerState>,
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(token.trim()).filter(|token| !token.is_empty())
}

/// Reads the first gRPC frame of a buffered request body and returns the message's
/// `workspace_id`.
fn workspace_of(policy: &MethodPolicy, body: &Bytes) -> Result<Option<String>, Status> {
    let Some(field) = &policy.workspace_field else {
        return Ok(None);
    };
    let mut frame = body.clone();
    if frame.remaining() < 5 {
        return Ok(Some(String::new()));
    }
    let compressed = frame.get_u8();
    let length = frame.get_u32() as usize;
    if compressed != 0 {
        return Err(Status::unimplemented(
            "compressed requests are not accepted",
        ));
    }
    if frame.remaining() < length {
        return Err(Status::invalid_argument("truncated request message"));
    }
    let message = DynamicMessage::decode(policy.input.clone(), frame.slice(..length))
        .map_err(|err| Status::invalid_argument(format!("cannot decode request: {err}")))?;
    Ok(Some(
        message
            .get_field(field)
            .as_str()
            .map(str::to_string)
            .unwrap_or_default(),
    ))
}

impl<S> tower::Service<http::Request<Body>> for AuthService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone is ready-polled later by `oneshot`-like use; take the ready one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Box::pin(async move {
            let path = request.uri().path().to_string();
            let Some(policy) = state.policies.get(&path).cloned() else {
                return inner.call(request).await;
            };
            let service = path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default();
            if !state.served.contains(service) {
                return inner.call(request).await;
            }
            match authorize(&state, &policy, request).await {
                Ok(request) => inner.call(request).await,
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

async fn authorize(
    state: &LayerState,
    policy: &MethodPolicy,
    request: http::Request<Body>,
) -> Result<http::Request<Body>, Status> {
    let Some(token) = bearer(request.headers()) else {
        return Err(Status::unauthenticated(
            "missing bearer token: send `authorization: Bearer <token>`",
        ));
    };
    let principal = match state.verifier.authenticate(token).await {
        Ok(Some(principal)) => principal,
        Ok(None) => return Err(Status::unauthenticated("unknown or revoked token")),
        Err(error) => {
            tracing::warn!(%error, "token verification failed");
            return Err(Status::unavailable(error.to_string()));
        }
    };
    let needs_workspace = matches!(
        &principal,
        Principal::Tool {
            workspace_id: Some(_),
            ..
        }
    ) && policy.access != Access::Service;
    let (mut request, workspace) = if needs_workspace && policy.scoped_to_workspace() {
        let (parts, body) = request.into_parts();
        let collected = http_body_util::Limited::new(body, MAX_REQUEST_BYTES)
            .collect()
            .await
            .map_err(|err| Status::invalid_argument(format!("cannot read request: {err}")))?
            .to_bytes();
        let workspace = workspace_of(policy, &collected)?;
        let body = Body::new(http_body_util::Full::new(collected));
        (http::Request::from_parts(parts, body), workspace)
    } else {
        (request, None)
    };
    decide(policy.access, &principal, workspace.as_deref())?;
    request.extensions_mut().insert(principal);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(workspace: Option<&str>, role: Role) -> Principal {
        Principal::Tool {
            token_id: "t".into(),
            workspace_id: workspace.map(str::to_string),
            role,
        }
    }

    #[test]
    fn rules() {
        let admin_a = tool(Some("a"), Role::Admin);
        let viewer_a = tool(Some("a"), Role::Viewer);
        let operator = tool(None, Role::Admin);
        assert_eq!(decide(Access::Write, &admin_a, Some("a")), Ok(()));
        assert!(matches!(
            decide(Access::Write, &admin_a, Some("b")),
            Err(Denied::PermissionDenied(_))
        ));
        assert!(matches!(
            decide(Access::Read, &admin_a, None),
            Err(Denied::PermissionDenied(_))
        ));
        assert_eq!(decide(Access::Read, &viewer_a, Some("a")), Ok(()));
        assert!(matches!(
            decide(Access::Write, &viewer_a, Some("a")),
            Err(Denied::PermissionDenied(_))
        ));
        assert!(matches!(
            decide(Access::Service, &admin_a, Some("a")),
            Err(Denied::PermissionDenied(_))
        ));
        assert!(matches!(
            decide(Access::Service, &operator, None),
            Err(Denied::PermissionDenied(_))
        ));
        assert_eq!(decide(Access::Write, &operator, Some("z")), Ok(()));
        assert_eq!(decide(Access::Service, &Principal::Service, None), Ok(()));
        let operator_viewer = tool(None, Role::Viewer);
        assert!(matches!(
            decide(Access::Write, &operator_viewer, Some("z")),
            Err(Denied::PermissionDenied(_))
        ));
    }

    #[test]
    fn every_backflow_method_declares_its_access() {
        let policies = Policies::backflow().expect("descriptors");
        let undeclared: Vec<&str> = policies
            .methods()
            .filter(|(_, policy)| !policy.declared)
            .map(|(path, _)| path)
            .collect();
        assert!(
            undeclared.is_empty(),
            "add `option (backflow.auth.v1.access) = ...;` to {undeclared:?}"
        );
        let get = policies
            .get("/backflow.gitsync.v1.GitSyncService/GetConnection")
            .expect("known");
        assert_eq!(get.access, Access::Read);
        assert!(get.scoped_to_workspace());
        let fetch = policies
            .get("/backflow.gitsync.v1.GitSyncService/FetchSnapshot")
            .expect("known");
        assert_eq!(fetch.access, Access::Service);
        let create = policies
            .get("/backflow.credentials.v1.CredentialsService/CreateSecret")
            .expect("known");
        assert_eq!(create.access, Access::Write);
    }

    #[test]
    fn workspace_is_read_from_the_frame() {
        use prost::Message;
        let policies = Policies::backflow().expect("descriptors");
        let policy = policies
            .get("/backflow.gitsync.v1.GitSyncService/ListRuns")
            .expect("known");
        let message = backflow_proto::gitsync::v1::ListRunsRequest {
            workspace_id: "ws-7".into(),
            connection_id: "c".into(),
            limit: 3,
        }
        .encode_to_vec();
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(&message);
        assert_eq!(
            workspace_of(policy, &Bytes::from(frame)).expect("decodes"),
            Some("ws-7".to_string())
        );
    }
}
