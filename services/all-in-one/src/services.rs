//! The five services behind one name each, so `backflow dev` can start them all and
//! `backflow serve <service>` one of them, through the same `App::build → App::run`
//! code paths a dedicated deployment uses.

use crate::config::BackflowConfig;
use backflow_platform::shutdown::Shutdown;
use futures::future::BoxFuture;
use std::net::SocketAddr;

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
    ($name:expr, $app:expr, $http:expr) => {{
        let app = $app;
        BuiltService {
            name: $name,
            grpc_addr: app.grpc_addr(),
            http_addr: $http(&app),
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
                .map_err(|err| err.to_string())?
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
                .map_err(|err| err.to_string())?
        ),
        ServiceName::RetlScheduler => built!(
            name,
            backflow_retl_scheduler::App::build(config.retl_scheduler.clone(), nats)
                .await
                .map_err(|err| err.to_string())?
        ),
    })
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
