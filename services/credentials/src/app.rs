//! `App::build` wires the credentials service from its configuration; `App::run`
//! serves it until shutdown. Tests build it on port 0 against a fresh database.

use crate::config::Config;
use crate::envelope::MasterKey;
use crate::error::CredentialsStartupError;
use crate::github_app::GitHubApps;
use crate::grpc::{CredentialsGrpc, TokenGrpc, SERVICE_NAME, TOKEN_SERVICE_NAME};
use crate::secrets::Secrets;
use crate::store::SecretStore;
use crate::tokens::ApiTokens;
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::service::{AuthSource, BaseSettings, ServiceBase};
use backflow_platform::shutdown::Shutdown;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

backflow_platform::service_migrations!();

/// The gRPC services this process answers.
pub const SERVICE_NAMES: [&str; 2] = [SERVICE_NAME, TOKEN_SERVICE_NAME];

pub struct App {
    base: ServiceBase,
    secrets: Secrets,
    tokens: ApiTokens,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, CredentialsStartupError> {
        let master = load_master_key(&config)?;
        let mut base = ServiceBase::start(
            BaseSettings {
                service: "credentials",
                database_url: &config.database_url,
                grpc_listen: &config.grpc_listen,
                nats,
                auth: AuthSource::Local,
                tls: &config.tls,
            },
            &MIGRATIONS,
            &[streams::EVT_CREDENTIALS],
        )
        .await?;
        let store = SecretStore::new(base.db.clone(), base.outbox.clone());
        let github = GitHubApps::new(
            Duration::from_millis(config.github_http_timeout_ms),
            Duration::from_secs(config.github_token_refresh_margin_s),
        );
        // Config holds the service tokens as secrets; the two checkers keep plain copies
        // behind a redacted Debug.
        let service_tokens: Vec<String> = config
            .service_tokens
            .iter()
            .map(|token| token.expose_secret().to_owned())
            .collect();
        let tokens = ApiTokens::new(base.db.clone(), service_tokens.clone());
        base.set_verifier(std::sync::Arc::new(tokens.clone()));
        let secrets = Secrets::new(store, master, service_tokens).with_github(github);
        Ok(Self {
            base,
            secrets,
            tokens,
        })
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.base.grpc_addr()
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    pub fn tokens(&self) -> &ApiTokens {
        &self.tokens
    }

    /// How this service verifies tokens, for another server of the same process.
    pub fn verifier(&self) -> Option<std::sync::Arc<dyn backflow_platform::auth::TokenVerifier>> {
        self.base.verifier()
    }

    /// This service's dead letters, for a front door's `DeadLetterService`.
    pub fn dead_letter_target(&self) -> backflow_platform::dead_letter_grpc::Target {
        self.base.dead_letter_target()
    }

    /// Adds this service's gRPC services to `routes` (its own port, or a front door).
    pub fn add_grpc(&self, routes: tonic::service::Routes) -> tonic::service::Routes {
        routes
            .add_service(CredentialsGrpc::new(self.secrets.clone()).into_server())
            .add_service(TokenGrpc::new(self.tokens.clone()).into_server())
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<(), CredentialsStartupError> {
        let routes = self.add_grpc(tonic::service::Routes::default());
        self.base
            .run(routes, &SERVICE_NAMES, Vec::new(), shutdown)
            .await?;
        Ok(())
    }
}

fn load_master_key(config: &Config) -> Result<MasterKey, CredentialsStartupError> {
    if !config.master_key.expose_secret().is_empty() {
        return MasterKey::from_encoded(config.master_key.expose_secret().as_bytes()).map_err(
            |err| CredentialsStartupError::MasterKey {
                path: "credentials.master_key".into(),
                message: err.to_string(),
            },
        );
    }
    let path = Path::new(&config.master_key_file);
    let failed = |message: String| CredentialsStartupError::MasterKey {
        path: path.display().to_string(),
        message,
    };
    if !path.exists() && config.create_master_key_if_missing {
        write_new_key(path).map_err(|err| failed(err.to_string()))?;
        tracing::warn!(path = %path.display(), "generated a development master key");
    }
    let bytes = std::fs::read(path).map_err(|err| failed(err.to_string()))?;
    MasterKey::from_encoded(&bytes).map_err(|err| failed(err.to_string()))
}

fn write_new_key(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options
        .open(path)?
        .write_all(MasterKey::generate_encoded().as_bytes())
}
