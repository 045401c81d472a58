//! `App::build` wires the git-sync service from its configuration: database, bus,
//! gRPC and webhook listeners, the credentials client and the sync runner; `App::run`
//! serves it, consumes sync commands and polls remotes until shutdown.

use crate::config::Config;
use crate::credentials_client::CredentialsClient;
use crate::error::GitSyncError;
use crate::grpc::{GitSyncGrpc, SERVICE_NAME};
use crate::http::WebhookState;
use crate::store::GitSyncStore;
use crate::sync::SyncRunner;
use crate::{consumers, poller};
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::lease::{self, LeasePolicy};
use backflow_platform::service::{BaseSettings, ServiceBase, Task};
use backflow_platform::shutdown::Shutdown;
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
    poll_interval: Duration,
    validate_access_on_save: bool,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, GitSyncError> {
        let credentials = CredentialsClient::new(&config.credentials_url, &config.service_token)
            .map_err(|err| GitSyncError::InvalidArgument(err.to_string()))?;
        let http = tokio::net::TcpListener::bind(&config.http_listen)
            .await
            .map_err(|err| {
                GitSyncError::InvalidArgument(format!(
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
            },
            &MIGRATIONS,
            &[streams::EVT_GITSYNC, streams::CMD_GITSYNC],
        )
        .await?;
        let lease =
            LeasePolicy::from_ttl(Duration::from_millis(config.run_lease_ms)).map_err(|err| {
                GitSyncError::InvalidArgument(format!("git_sync.run_lease_ms: {err}"))
            })?;
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

    pub async fn run(self, shutdown: Shutdown) -> Result<(), GitSyncError> {
        let mut tasks: Vec<Task> = Vec::new();
        let (bus, runner) = (self.base.bus.clone(), self.runner.clone());
        tasks.push(Box::new(move |shutdown| {
            Box::pin(async move {
                let handler = |delivery| consumers::handle_sync_command(&runner, delivery);
                bus.run_consumer(consumers::sync_commands_spec(), handler, shutdown)
                    .await;
            })
        }));
        let router = crate::http::router(WebhookState {
            store: self.store.clone(),
            credentials: self.credentials.clone(),
        });
        let http = self.http;
        tasks.push(Box::new(move |shutdown| {
            Box::pin(async move {
                let served = axum::serve(http, router)
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await;
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
        let grpc = GitSyncGrpc::new(self.store, self.runner, self.validate_access_on_save);
        let routes = tonic::service::Routes::new(grpc.into_server());
        self.base
            .run(routes, &[SERVICE_NAME], tasks, shutdown)
            .await?;
        Ok(())
    }
}
