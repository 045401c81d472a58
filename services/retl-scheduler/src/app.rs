//! `App::build` wires the Reverse ETL scheduler from its configuration; `App::run`
//! serves it and its consumers until shutdown. Tests build it on port 0 against a
//! fresh database.

use crate::config::Config;
use crate::consumers;
use crate::destination_config::SecretResolver;
use crate::error::RetlStartupError;
use crate::grpc::{RetlSchedulerGrpc, SERVICE_NAME};
use crate::scheduler::Scheduler;
use crate::store::diff_state::{bucket_name, DiffStateStore};
use crate::store::SyncStore;
use crate::sync::{RetlModelLookup, UnconfiguredModels};
use crate::ticker::{system_clock, Clock, Ticker};
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::service::{AuthSource, BaseSettings, ServiceBase, Task};
use backflow_platform::shutdown::Shutdown;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

backflow_platform::service_migrations!();

pub struct App {
    base: ServiceBase,
    scheduler: Scheduler,
    ticker: Ticker,
}

/// Parts `App::build` wires itself, replaceable by tests and tools (`App::build_with`).
#[derive(Default)]
pub struct Overrides {
    /// Reverse ETL models (default: the catalog at `catalog_url`).
    pub models: Option<Arc<dyn RetlModelLookup>>,
    /// Destination secrets (default: the credentials service).
    pub secrets: Option<Arc<dyn SecretResolver>>,
    /// The ticker's clock (default: the system clock).
    pub clock: Option<Clock>,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, RetlStartupError> {
        Self::build_with(config, nats, Overrides::default()).await
    }

    pub async fn build_with(
        config: Config,
        nats: &NatsConfig,
        overrides: Overrides,
    ) -> Result<Self, RetlStartupError> {
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
        let diff_states = DiffStateStore::open(base.bus.jetstream(), &bucket_name(&base.bus))
            .await
            .map_err(|error| RetlStartupError::Setup(error.to_string()))?;
        let models = overrides
            .models
            .unwrap_or_else(|| Arc::new(UnconfiguredModels));
        let mut scheduler = Scheduler::new(store, models).with_diff_states(diff_states);
        if let Some(secrets) = overrides.secrets {
            scheduler = scheduler.with_secrets(secrets);
        }
        let ticker = Ticker::new(
            scheduler.store().clone(),
            overrides.clock.unwrap_or_else(system_clock),
            Duration::from_millis(config.tick_poll_ms.max(10)),
        );
        Ok(Self {
            base,
            scheduler,
            ticker,
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
        let ticker = self.ticker.clone();
        let ticks: Task = Box::new(move |shutdown| Box::pin(ticker.run(shutdown)));
        let routes = self.add_grpc(tonic::service::Routes::default());
        self.base
            .run(routes, &[SERVICE_NAME], vec![dbt_runs, ticks], shutdown)
            .await?;
        Ok(())
    }
}
