//! `App::build` wires the git-sync service from its configuration: database, bus,
//! gRPC and webhook listeners, the credentials client and the sync runner; `App::run`
//! serves it, consumes sync commands and the catalog's source changes, and polls
//! remotes until shutdown.

use crate::config::Config;
use crate::error::GitSyncStartupError;
use crate::grpc::{GitSyncGrpc, SERVICE_NAME};
use crate::http::WebhookState;
use crate::store::GitSyncStore;
use crate::sync::SyncRunner;
use crate::{consumers, poller};
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::credentials_client::CredentialsClient;
use backflow_platform::lease::{self, LeasePolicy};
use backflow_platform::service::{AuthSource, BaseSettings, ServiceBase, Task};
use backflow_platform::shutdown::Shutdown;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

backflow_platform::service_migrations!();

pub struct App {
    base: ServiceBase,
    store: GitSyncStore,
    runner: SyncRunner,
    credentials: CredentialsClient,
    http: tokio::net::TcpListener,
    /// TLS for the webhook listener, when `git_sync.tls` is configured.
    http_tls: Option<std::sync::Arc<backflow_platform::tls::rustls::ServerConfig>>,
    poll_interval: Duration,
    validate_access_on_save: bool,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, GitSyncStartupError> {
        let client_tls = config
            .tls
            .grpc_client("git_sync", &config.credentials_url)
            .map_err(|err| GitSyncStartupError::Setup(err.to_string()))?;
        let credentials = CredentialsClient::new(
            "git_sync",
            &config.credentials_url,
            config.service_token.expose_secret(),
            client_tls,
        )
        .map_err(|err| GitSyncStartupError::Setup(err.to_string()))?;
        let http_tls = config
            .tls
            .rustls_server("git_sync")
            .map_err(|err| GitSyncStartupError::Setup(err.to_string()))?;
        let http = tokio::net::TcpListener::bind(&config.http_listen)
            .await
            .map_err(|err| {
                GitSyncStartupError::Setup(format!(
                    "git_sync.http_listen: cannot listen on {}: {err}",
                    config.http_listen
                ))
            })?;
        let base = ServiceBase::start(
            BaseSettings {
                service: "git_sync",
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
            &[streams::EVT_GITSYNC, streams::CMD_GITSYNC],
        )
        .await?;
        let lease = LeasePolicy::from_ttl(Duration::from_millis(config.run_lease_ms))
            .map_err(|err| GitSyncStartupError::Setup(format!("git_sync.run_lease_ms: {err}")))?;
        let store = GitSyncStore::new(base.db.clone(), base.outbox.clone()).with_run_lease(lease);
        let runner = SyncRunner::new(
            store.clone(),
            credentials.clone(),
            PathBuf::from(&config.work_dir),
            Duration::from_secs(config.fetch_timeout_seconds.max(1)),
        );
        Ok(Self {
            base,
            store,
            runner,
            credentials,
            http,
            http_tls,
            poll_interval: Duration::from_secs(config.poll_interval_seconds),
            validate_access_on_save: config.validate_access_on_save,
        })
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.base.grpc_addr()
    }

    /// Where push webhooks are received.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.local_addr().ok()
    }

    pub fn store(&self) -> &GitSyncStore {
        &self.store
    }

    pub fn runner(&self) -> &SyncRunner {
        &self.runner
    }

    /// This service's dead letters, for a front door's `DeadLetterService`.
    pub fn dead_letter_target(&self) -> backflow_platform::dead_letter_grpc::Target {
        self.base.dead_letter_target()
    }

    /// Adds this service's gRPC service to `routes` (its own port, or a front door).
    pub fn add_grpc(&self, routes: tonic::service::Routes) -> tonic::service::Routes {
        let grpc = GitSyncGrpc::new(
            self.store.clone(),
            self.runner.clone(),
            self.validate_access_on_save,
        );
        routes.add_service(grpc.into_server())
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<(), GitSyncStartupError> {
        let routes = self.add_grpc(tonic::service::Routes::default());
        let mut tasks: Vec<Task> = Vec::new();
        let (bus, runner) = (self.base.bus.clone(), self.runner.clone());
        tasks.push(Box::new(move |shutdown| {
            Box::pin(async move {
                let handler = |delivery| consumers::handle_sync_command(&runner, delivery);
                bus.run_consumer(consumers::sync_commands_spec(), handler, shutdown)
                    .await;
            })
        }));
        let (bus, store) = (self.base.bus.clone(), self.store.clone());
        tasks.push(Box::new(move |shutdown| {
            Box::pin(async move {
                let handler = |delivery| consumers::handle_source_event(&store, delivery);
                bus.run_consumer(consumers::source_events_spec(), handler, shutdown)
                    .await;
            })
        }));
        let router = crate::http::router(WebhookState {
            store: self.store.clone(),
            credentials: self.credentials.clone(),
        });
        let (http, http_tls) = (self.http, self.http_tls.clone());
        tasks.push(Box::new(move |shutdown| {
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
        }));
        if !self.poll_interval.is_zero() {
            let (store, runner, interval) =
                (self.store.clone(), self.runner.clone(), self.poll_interval);
            tasks.push(Box::new(move |shutdown| {
                Box::pin(poller::run(store, runner, interval, shutdown))
            }));
        }
        // Any replica fails runs whose process died, at start-up and periodically.
        let reaper_store = self.store.clone();
        tasks.push(Box::new(move |shutdown| {
            Box::pin(async move {
                let leases = reaper_store.run_leases().clone();
                lease::run_reaper(leases, shutdown, |run_id| {
                    let store = reaper_store.clone();
                    async move { store.reap_run(&run_id).await }
                })
                .await;
            })
        }));
        self.base
            .run(routes, &[SERVICE_NAME], tasks, shutdown)
            .await?;
        Ok(())
    }
}
