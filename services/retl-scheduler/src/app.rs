//! `App::build` wires the Reverse ETL scheduler from its configuration; `App::run`
//! serves it and its consumers until shutdown. Tests build it on port 0 against a
//! fresh database.

use crate::config::Config;
use crate::consumers;
use crate::error::RetlStartupError;
use crate::grpc::{RetlSchedulerGrpc, SERVICE_NAME};
use crate::scheduler::Scheduler;
use crate::store::SyncStore;
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::service::{AuthSource, BaseSettings, ServiceBase, Task};
use backflow_platform::shutdown::Shutdown;
use secrecy::ExposeSecret;
use std::net::SocketAddr;

backflow_platform::service_migrations!();

pub struct App {
    base: ServiceBase,
    scheduler: Scheduler,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, RetlStartupError> {
        let base = ServiceBase::start(
            BaseSettings {
                service: "retl_scheduler",
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
            &[streams::EVT_RETL, streams::CMD_RETL, streams::EVT_DBT],
        )
        .await?;
        let store = SyncStore::new(base.db.clone(), base.outbox.clone());
        Ok(Self {
            base,
            scheduler: Scheduler::new(store),
        })
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.base.grpc_addr()
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// This service's dead letters, for a front door's `DeadLetterService`.
    pub fn dead_letter_target(&self) -> backflow_platform::dead_letter_grpc::Target {
        self.base.dead_letter_target()
    }

    /// Adds this service's gRPC service to `routes` (its own port, or a front door).
    pub fn add_grpc(&self, routes: tonic::service::Routes) -> tonic::service::Routes {
        routes.add_service(RetlSchedulerGrpc::new(self.scheduler.clone()).into_server())
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<(), RetlStartupError> {
        let bus = self.base.bus.clone();
        let store = self.scheduler.store().clone();
        let dbt_runs: Task =
            Box::new(move |shutdown| Box::pin(consumers::run_dbt_runs(bus, store, shutdown)));
        let routes = self.add_grpc(tonic::service::Routes::default());
        self.base
            .run(routes, &[SERVICE_NAME], vec![dbt_runs], shutdown)
            .await?;
        Ok(())
    }
}
