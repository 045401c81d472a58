//! `App::build` wires the model catalog from its configuration; `App::run` serves it
//! and runs its consumers until shutdown.

use crate::config::Config;
use crate::consumers;
use crate::error::CatalogStartupError;
use crate::grpc::{CatalogGrpc, SERVICE_NAME};
use crate::store::CatalogStore;
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::service::{AuthSource, BaseSettings, ServiceBase, Task};
use backflow_platform::shutdown::Shutdown;
use secrecy::ExposeSecret;
use std::net::SocketAddr;

backflow_platform::service_migrations!();

pub struct App {
    base: ServiceBase,
    store: CatalogStore,
    git_sync: crate::snapshot_fetcher::SnapshotFetcher,
    preview: crate::grpc::preview::PreviewSettings,
    connectors: std::sync::Arc<dyn crate::grpc::preview::ConnectorSource>,
    warehouse: crate::warehouse_access::WarehouseAccess,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, CatalogStartupError> {
        let base = ServiceBase::start(
            BaseSettings {
                service: "model_catalog",
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
            &[
                streams::EVT_CATALOG,
                streams::EVT_GITSYNC,
                streams::EVT_RETL,
            ],
        )
        .await?;
        let store = CatalogStore::new(base.db.clone(), base.outbox.clone());
        let git_sync = crate::snapshot_fetcher::SnapshotFetcher::new(
            &config.git_sync_url,
            config.service_token.expose_secret(),
            config
                .tls
                .grpc_client("model_catalog", &config.git_sync_url)
                .map_err(|err| CatalogStartupError::Setup(err.to_string()))?,
        )
        .map_err(|err| CatalogStartupError::Setup(err.to_string()))?;
        let credentials = backflow_platform::credentials_client::CredentialsClient::new(
            "model_catalog",
            &config.credentials_url,
            config.service_token.expose_secret(),
            config
                .tls
                .grpc_client("model_catalog", &config.credentials_url)
                .map_err(|err| CatalogStartupError::Setup(err.to_string()))?,
        )
        .map_err(|err| CatalogStartupError::Setup(err.to_string()))?;
        let warehouse = crate::warehouse_access::WarehouseAccess::new(store.clone(), credentials);
        Ok(Self {
            base,
            store,
            git_sync,
            preview: config.preview.settings(),
            connectors: std::sync::Arc::new(warehouse.clone()),
            warehouse,
        })
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.base.grpc_addr()
    }

    pub fn store(&self) -> &CatalogStore {
        &self.store
    }

    /// Connectors to this catalog's warehouse sources.
    pub fn warehouse(&self) -> &crate::warehouse_access::WarehouseAccess {
        &self.warehouse
    }

    /// This service's dead letters, for a front door's `DeadLetterService`.
    pub fn dead_letter_target(&self) -> backflow_platform::dead_letter_grpc::Target {
        self.base.dead_letter_target()
    }

    /// Adds this service's gRPC service to `routes` (its own port, or a front door).
    pub fn add_grpc(&self, routes: tonic::service::Routes) -> tonic::service::Routes {
        let preview =
            crate::grpc::preview::PreviewContext::new(self.connectors.clone(), self.preview);
        routes.add_service(
            CatalogGrpc::new(self.store.clone())
                .with_warehouse(self.warehouse.clone())
                .with_preview(preview)
                .into_server(),
        )
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<(), CatalogStartupError> {
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
        let (bus, store) = (self.base.bus.clone(), self.store.clone());
        let sync_changes: Task = Box::new(move |shutdown| {
            Box::pin(async move {
                let handler = |delivery| consumers::handle_sync_changed(&store, delivery);
                bus.run_consumer(consumers::sync_changes_spec(), handler, shutdown)
                    .await;
            })
        });
        let routes = self.add_grpc(tonic::service::Routes::default());
        self.base
            .run(
                routes,
                &[SERVICE_NAME],
                vec![
                    connection_events,
                    snapshot_events,
                    sync_failures,
                    sync_changes,
                ],
                shutdown,
            )
            .await?;
        Ok(())
    }
}
