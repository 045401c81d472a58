//! The five services behind one name each, so `backflow dev` can start them all and
//! `backflow serve <service>` one of them, through the same `App::build → App::run`
//! code paths a dedicated deployment uses.

use crate::config::BackflowConfig;
use backflow_platform::auth::TokenVerifier;
use backflow_platform::shutdown::Shutdown;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::service::Routes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceName {
    Credentials,
    GitSync,
    ModelCatalog,
    DbtCloudListener,
    RetlScheduler,
}

impl ServiceName {
    pub const ALL: [ServiceName; 5] = [
        ServiceName::Credentials,
        ServiceName::GitSync,
        ServiceName::ModelCatalog,
        ServiceName::DbtCloudListener,
        ServiceName::RetlScheduler,
    ];

    /// The fully-qualified gRPC services it answers.
    pub fn grpc_services(self) -> &'static [&'static str] {
        match self {
            ServiceName::Credentials => &backflow_credentials::app::SERVICE_NAMES,
            ServiceName::GitSync => &[backflow_git_sync::grpc::SERVICE_NAME],
            ServiceName::ModelCatalog => &[backflow_model_catalog::grpc::SERVICE_NAME],
            ServiceName::DbtCloudListener => &[backflow_dbt_cloud_listener::grpc::SERVICE_NAME],
            ServiceName::RetlScheduler => &[backflow_retl_scheduler::grpc::SERVICE_NAME],
        }
    }

    /// Its configured gRPC listen address.
    pub fn grpc_listen(self, config: &BackflowConfig) -> &str {
        match self {
            ServiceName::Credentials => &config.credentials.grpc_listen,
            ServiceName::GitSync => &config.git_sync.grpc_listen,
            ServiceName::ModelCatalog => &config.model_catalog.grpc_listen,
            ServiceName::DbtCloudListener => &config.dbt_cloud_listener.grpc_listen,
            ServiceName::RetlScheduler => &config.retl_scheduler.grpc_listen,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Credentials => "credentials",
            ServiceName::GitSync => "git-sync",
            ServiceName::ModelCatalog => "model-catalog",
            ServiceName::DbtCloudListener => "dbt-cloud-listener",
            ServiceName::RetlScheduler => "retl-scheduler",
        }
    }
}

/// A built service, ready to run.
pub struct BuiltService {
    pub name: ServiceName,
    pub grpc_addr: Option<SocketAddr>,
    /// Plain HTTP endpoints (webhooks), where a service has them.
    pub http_addr: Option<SocketAddr>,
    /// The service's gRPC services without a fallback, for the front door to merge.
    pub grpc_router: axum::Router,
    /// The credentials service's own token verifier and API tokens.
    pub verifier: Option<Arc<dyn TokenVerifier>>,
    pub tokens: Option<backflow_credentials::tokens::ApiTokens>,
    /// Its dead letters, served together by the front door.
    pub dead_letters: backflow_platform::dead_letter_grpc::Target,
    run: Box<dyn FnOnce(Shutdown) -> BoxFuture<'static, Result<(), String>> + Send>,
}

impl BuiltService {
    pub async fn run(self, shutdown: Shutdown) -> Result<(), String> {
        (self.run)(shutdown).await
    }
}

macro_rules! built {
    ($name:expr, $app:expr) => {
        built!($name, $app, |_app| None)
    };
    ($name:expr, $app:expr, $http:expr) => {
        built!($name, $app, $http, |_app| (None, None))
    };
    ($name:expr, $app:expr, $http:expr, $auth:expr) => {{
        let app = $app;
        let router = app
            .add_grpc(Routes::from(axum::Router::new()))
            .into_axum_router();
        let (verifier, tokens) = $auth(&app);
        BuiltService {
            name: $name,
            grpc_addr: app.grpc_addr(),
            http_addr: $http(&app),
            grpc_router: router,
            dead_letters: app.dead_letter_target(),
            verifier,
            tokens,
            run: Box::new(move |shutdown| {
                Box::pin(async move { app.run(shutdown).await.map_err(|err| err.to_string()) })
            }),
        }
    }};
}

/// Builds one service: connects its database (migrating it), NATS, and binds gRPC.
pub async fn build(name: ServiceName, config: &BackflowConfig) -> Result<BuiltService, String> {
    let nats = &config.nats;
    Ok(match name {
        ServiceName::Credentials => built!(
            name,
            backflow_credentials::App::build(config.credentials.clone(), nats)
                .await
                .map_err(|err| err.to_string())?,
            |_app| None,
            |app: &backflow_credentials::App| (app.verifier(), Some(app.tokens().clone()))
        ),
        ServiceName::GitSync => built!(
            name,
            backflow_git_sync::App::build(config.git_sync.clone(), nats)
                .await
                .map_err(|err| err.to_string())?,
            |app: &backflow_git_sync::App| app.http_addr()
        ),
        ServiceName::ModelCatalog => built!(
            name,
            backflow_model_catalog::App::build(config.model_catalog.clone(), nats)
                .await
                .map_err(|err| err.to_string())?
        ),
        ServiceName::DbtCloudListener => built!(
            name,
            backflow_dbt_cloud_listener::App::build(config.dbt_cloud_listener.clone(), nats)
                .await
                .map_err(|err| err.to_string())?,
            |app: &backflow_dbt_cloud_listener::App| app.http_addr()
        ),
        ServiceName::RetlScheduler => built!(
            name,
            backflow_retl_scheduler::App::build(config.retl_scheduler.clone(), nats)
                .await
                .map_err(|err| err.to_string())?
        ),
    })
}

/// The services built after `name` in this process call it at the address it
/// actually bound (port 0 in tests, any port in `backflow dev`), unless a URL was
/// configured for TLS (`https://`, whose host name the certificate names).
pub fn point_at_bound_port(config: &mut BackflowConfig, name: ServiceName, addr: SocketAddr) {
    let url = format!("http://{addr}");
    let point = |setting: &mut String| {
        if !setting.starts_with("https://") {
            *setting = url.clone();
        }
    };
    match name {
        ServiceName::Credentials => {
            point(&mut config.git_sync.credentials_url);
            point(&mut config.model_catalog.credentials_url);
            point(&mut config.dbt_cloud_listener.credentials_url);
            point(&mut config.retl_scheduler.credentials_url);
        }
        ServiceName::GitSync => point(&mut config.model_catalog.git_sync_url),
        ServiceName::ModelCatalog => point(&mut config.retl_scheduler.catalog_url),
        ServiceName::DbtCloudListener | ServiceName::RetlScheduler => {}
    }
}

/// Applies one service's migrations and exits (the Kubernetes migration step).
pub async fn migrate(name: ServiceName, config: &BackflowConfig) -> Result<(), String> {
    use backflow_platform::db::Database;
    let (url, migrations) = match name {
        ServiceName::Credentials => (
            &config.credentials.database_url,
            &backflow_credentials::app::MIGRATIONS,
        ),
        ServiceName::GitSync => (
            &config.git_sync.database_url,
            &backflow_git_sync::app::MIGRATIONS,
        ),
        ServiceName::ModelCatalog => (
            &config.model_catalog.database_url,
            &backflow_model_catalog::app::MIGRATIONS,
        ),
        ServiceName::DbtCloudListener => (
            &config.dbt_cloud_listener.database_url,
            &backflow_dbt_cloud_listener::app::MIGRATIONS,
        ),
        ServiceName::RetlScheduler => (
            &config.retl_scheduler.database_url,
            &backflow_retl_scheduler::app::MIGRATIONS,
        ),
    };
    let setting = name.as_str().replace('-', "_");
    let db = Database::connect(url, migrations)
        .await
        .map_err(|err| format!("{setting}.database_url: {err}"))?;
    db.close().await;
    Ok(())
}
