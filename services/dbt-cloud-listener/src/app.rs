//! `App::build` wires the dbt Cloud listener from its configuration; `App::run`
//! serves it until shutdown. Tests build it on port 0 against a fresh database.

use crate::config::Config;
use crate::connections::Connections;
use crate::error::DbtCloudStartupError;
use crate::grpc::{DbtCloudListenerGrpc, SERVICE_NAME};
use crate::http::{CredentialHmacSecrets, HmacSecrets, WebhookState};
use crate::secrets::Secrets;
use crate::store::ConnectionStore;
use crate::watch::Watcher;
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::credentials_client::CredentialsClient;
use backflow_platform::service::{AuthSource, BaseSettings, ServiceBase, Task};
use backflow_platform::shutdown::Shutdown;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;

backflow_platform::service_migrations!();

pub struct App {
    base: ServiceBase,
    connections: Connections,
    secrets: Arc<dyn HmacSecrets>,
    http: tokio::net::TcpListener,
    http_tls: Option<Arc<backflow_platform::tls::rustls::ServerConfig>>,
    reconcile_interval: std::time::Duration,
    reconcile_lookback: std::time::Duration,
    artifact_fetch: crate::artifact_fetch::RetrySchedule,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, DbtCloudStartupError> {
        let setup = |err: String| DbtCloudStartupError::Setup(err);
        let client_tls = config
            .tls
            .grpc_client("dbt_cloud_listener", &config.credentials_url)
            .map_err(|err| setup(err.to_string()))?;
        let credentials = CredentialsClient::new(
            "dbt_cloud_listener",
            &config.credentials_url,
            config.service_token.expose_secret(),
            client_tls,
        )
        .map_err(|err| setup(err.to_string()))?;
        let http_tls = config
            .tls
            .rustls_server("dbt_cloud_listener")
            .map_err(|err| setup(err.to_string()))?;
        let http = tokio::net::TcpListener::bind(&config.http_listen)
            .await
            .map_err(|err| {
                setup(format!(
                    "dbt_cloud_listener.http_listen: cannot listen on {}: {err}",
                    config.http_listen
                ))
            })?;
        let base = ServiceBase::start(
            BaseSettings {
                service: "dbt_cloud_listener",
                database_url: &config.database_url,
                grpc_listen: &config.grpc_listen,
                nats,
                auth: AuthSource::Credentials {
                    url: &config.credentials_url,
                    service_token: config.service_token.expose_secret(),
                },
                tls: &config.tls,
            },
            &MIGRATIONS,
            &[streams::EVT_DBT, streams::EVT_RETL],
        )
        .await?;
        let store = ConnectionStore::new(base.db.clone(), base.outbox.clone());
        let watcher = Watcher::new(
            store.clone(),
            Secrets::new(credentials.clone()),
            &config.public_url,
        );
        Ok(Self {
            base,
            connections: Connections::new(store, watcher, config.allowed_access_urls.clone()),
            secrets: Arc::new(CredentialHmacSecrets::new(credentials)),
            http,
            http_tls,
            reconcile_interval: std::time::Duration::from_secs(config.reconcile_interval_secs),
            reconcile_lookback: std::time::Duration::from_secs(config.reconcile_lookback_secs),
            artifact_fetch: config.artifact_fetch_schedule(),
        })
    }

    /// Where dbt Cloud webhooks and dbt Core notifications are received.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.local_addr().ok()
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.base.grpc_addr()
    }

    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// This service's dead letters, for a front door's `DeadLetterService`.
    pub fn dead_letter_target(&self) -> backflow_platform::dead_letter_grpc::Target {
        self.base.dead_letter_target()
    }

    /// Adds this service's gRPC service to `routes` (its own port, or a front door).
    pub fn add_grpc(&self, routes: tonic::service::Routes) -> tonic::service::Routes {
        routes.add_service(DbtCloudListenerGrpc::new(self.connections.clone()).into_server())
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<(), DbtCloudStartupError> {
        let routes = self.add_grpc(tonic::service::Routes::default());
        let tokens = self.base.verifier().ok_or_else(|| {
            DbtCloudStartupError::Setup(
                "dbt_cloud_listener: no token verifier for dbt core notifications".into(),
            )
        })?;
        let router = crate::http::router(WebhookState::new(
            self.connections.store().clone(),
            self.secrets.clone(),
            tokens,
        ));
        let (http, http_tls) = (self.http, self.http_tls.clone());
        let serve: Task = Box::new(move |shutdown| {
            Box::pin(async move {
                let stopping = async move { shutdown.cancelled().await };
                let served = match http_tls {
                    Some(tls) => {
                        let listener = backflow_platform::tls::TlsListener::new(http, tls);
                        axum::serve(listener, router)
                            .with_graceful_shutdown(stopping)
                            .await
                    }
                    None => {
                        axum::serve(http, router)
                            .with_graceful_shutdown(stopping)
                            .await
                    }
                };
                if let Err(error) = served {
                    tracing::error!(%error, "webhook server failed");
                }
            })
        });
        let mut tasks = vec![serve];
        let (bus, watcher) = (self.base.bus.clone(), self.connections.watcher().clone());
        tasks.push(Box::new(move |shutdown| {
            Box::pin(crate::consumers::run_sync_changes(bus, watcher, shutdown))
        }));
        let (watcher, schedule) = (self.connections.watcher().clone(), self.artifact_fetch);
        tasks.push(Box::new(move |shutdown| {
            Box::pin(crate::artifact_fetch::run_fetches(
                watcher, schedule, shutdown,
            ))
        }));
        if !self.reconcile_interval.is_zero() {
            let watcher = self.connections.watcher().clone();
            let (interval, lookback) = (self.reconcile_interval, self.reconcile_lookback);
            tasks.push(Box::new(move |shutdown| {
                Box::pin(crate::reconcile::run_periodically(
                    watcher, interval, lookback, shutdown,
                ))
            }));
        }
        self.base
            .run(routes, &[SERVICE_NAME], tasks, shutdown)
            .await?;
        Ok(())
    }
}
