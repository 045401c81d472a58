//! `App::build` wires the model catalog from its configuration; `App::run` serves it
//! and runs its consumers until shutdown.

use crate::config::Config;
use crate::consumers;
use crate::error::CatalogError;
use crate::grpc::{CatalogGrpc, SERVICE_NAME};
use crate::store::CatalogStore;
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::service::{BaseSettings, ServiceBase, Task};
use backflow_platform::shutdown::Shutdown;
use std::net::SocketAddr;

backflow_platform::service_migrations!();

pub struct App {
    base: ServiceBase,
    store: CatalogStore,
    git_sync: crate::snapshot_fetcher::SnapshotFetcher,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, CatalogError> {
        let base = ServiceBase::start(
            BaseSettings {
                service: "model_catalog",
                database_url: &config.database_url,
                grpc_listen: &config.grpc_listen,
                nats,
            },
            &MIGRATIONS,
            &[streams::EVT_CATALOG, streams::EVT_GITSYNC],
        )
        .await?;
        let store = CatalogStore::new(base.db.clone(), base.outbox.clone());
        let git_sync = crate::snapshot_fetcher::SnapshotFetcher::new(&config.git_sync_url)
            .map_err(|err| CatalogError::InvalidArgument(err.to_string()))?;
        Ok(Self {
            base,
            store,
            git_sync,
        })
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.base.grpc_addr()
    }

    pub fn store(&self) -> &CatalogStore {
        &self.store
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<(), CatalogError> {
        let bus = self.base.bus.clone();
        let store = self.store.clone();
        let connection_events: Task = Box::new(move |shutdown| {
            Box::pin(async move {
                let handler = |delivery| consumers::handle_connection_event(&store, delivery);
                bus.run_consumer(consumers::connection_events_spec(), handler, shutdown)
                    .await;
            })
        });
        let (bus, store, git_sync) = (
            self.base.bus.clone(),
            self.store.clone(),
            self.git_sync.clone(),
        );
        let snapshot_events: Task = Box::new(move |shutdown| {
            Box::pin(async move {
                let handler =
                    |delivery| consumers::handle_snapshot_event(&store, &git_sync, delivery);
                bus.run_consumer(consumers::snapshot_events_spec(), handler, shutdown)
                    .await;
            })
        });
        let (bus, store) = (self.base.bus.clone(), self.store.clone());
        let sync_failures: Task = Box::new(move |shutdown| {
            Box::pin(async move {
                let handler = |delivery| consumers::handle_sync_failed(&store, delivery);
                bus.run_consumer(consumers::sync_failures_spec(), handler, shutdown)
                    .await;
            })
        });
        let routes = tonic::service::Routes::new(CatalogGrpc::new(self.store).into_server());
        self.base
            .run(
                routes,
                &[SERVICE_NAME],
                vec![connection_events, snapshot_events, sync_failures],
                shutdown,
            )
            .await?;
        Ok(())
    }
}
