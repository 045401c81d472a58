//! `App::build` wires the Reverse ETL scheduler from its configuration; `App::run`
//! serves it and its consumers until shutdown. Tests build it on port 0 against a
//! fresh database.

use crate::config::Config;
use crate::consumers;
use crate::destination_config::SecretResolver;
use crate::error::RetlStartupError;
use crate::executor::catalog_client::CatalogClient;
use crate::executor::pipeline::{RunContext, RunSettings};
use crate::executor::resolve::{CredentialSecrets, LiveModels, StoreDestinations};
use crate::executor::Executor;
use crate::grpc::{RetlSchedulerGrpc, SERVICE_NAME};
use crate::scheduler::Scheduler;
use crate::store::diff_state::{bucket_name, DiffStateStore};
use crate::store::SyncStore;
use crate::sync::RetlModelLookup;
use crate::ticker::{system_clock, Clock, Ticker};
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::credentials_client::CredentialsClient;
use backflow_platform::lease::LeasePolicy;
use backflow_platform::service::{AuthSource, BaseSettings, ServiceBase, Task};
use backflow_platform::shutdown::Shutdown;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

backflow_platform::service_migrations!();

/// The catalog over gRPC (ResolveRetlModelRun) with this service's token.
fn catalog_client(config: &Config) -> Result<CatalogClient, RetlStartupError> {
    let setup = |err: String| RetlStartupError::Setup(format!("retl_scheduler.catalog_url: {err}"));
    CatalogClient::new(
        &config.catalog_url,
        config.service_token.expose_secret(),
        config
            .tls
            .grpc_client("retl_scheduler", &config.catalog_url)
            .map_err(|err| setup(err.to_string()))?,
    )
    .map_err(|err| setup(err.to_string()))
}

/// The credentials service over gRPC with this service's token.
fn credentials_client(config: &Config) -> Result<CredentialsClient, RetlStartupError> {
    let setup =
        |err: String| RetlStartupError::Setup(format!("retl_scheduler.credentials_url: {err}"));
    CredentialsClient::new(
        "retl_scheduler",
        &config.credentials_url,
        config.service_token.expose_secret(),
        config
            .tls
            .grpc_client("retl_scheduler", &config.credentials_url)
            .map_err(|err| setup(err.to_string()))?,
    )
    .map_err(|err| setup(err.to_string()))
}

/// The executor role: catalog and credentials over gRPC, states in the NATS object store.
async fn build_executor(
    config: &Config,
    base: &ServiceBase,
    store: SyncStore,
    credentials: CredentialsClient,
    secrets: Arc<dyn SecretResolver>,
) -> Result<Executor, RetlStartupError> {
    let setup = |what: &str, err: String| RetlStartupError::Setup(format!("{what}: {err}"));
    let catalog = catalog_client(config)?;
    let states = DiffStateStore::open(base.bus.jetstream(), &bucket_name(&base.bus))
        .await
        .map_err(|err| setup("diff state store", err.to_string()))?;
    let executor = &config.executor;
    let policy = LeasePolicy::from_ttl(Duration::from_millis(executor.run_lease_ms))
        .map_err(|err| setup("retl_scheduler.executor.run_lease_ms", err.to_string()))?;
    let ctx = RunContext {
        destinations: Arc::new(StoreDestinations {
            store: store.clone(),
            secrets,
        }),
        store,
        states,
        models: Arc::new(LiveModels {
            catalog,
            credentials,
        }),
        settings: RunSettings {
            batch_rows: executor.batch_rows.max(1),
            statement_timeout: Duration::from_secs(executor.statement_timeout_seconds.max(1)),
            spill_dir: executor.spill_dir.clone(),
            warehouse_diff_work_mem_mb: executor.warehouse_diff_work_mem_mb,
            ..RunSettings::default()
        },
    };
    Ok(Executor::new(ctx, policy, executor.max_concurrent_runs))
}

pub struct App {
    base: ServiceBase,
    scheduler: Scheduler,
    ticker: Ticker,
    /// The executor role, when `[retl_scheduler.executor] enabled`.
    executor: Option<Executor>,
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
        let models = match overrides.models {
            Some(models) => models,
            None => Arc::new(catalog_client(&config)?),
        };
        let credentials = credentials_client(&config)?;
        let secrets = overrides
            .secrets
            .unwrap_or_else(|| Arc::new(CredentialSecrets(credentials.clone())));
        let scheduler = Scheduler::new(store.clone(), models)
            .with_diff_states(diff_states)
            .with_secrets(secrets.clone());
        let ticker = Ticker::new(
            scheduler.store().clone(),
            overrides.clock.unwrap_or_else(system_clock),
            Duration::from_millis(config.tick_poll_ms.max(10)),
        );
        let executor = if config.executor.enabled {
            Some(build_executor(&config, &base, store, credentials, secrets).await?)
        } else {
            None
        };
        Ok(Self {
            base,
            scheduler,
            ticker,
            executor,
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
        let models = self.scheduler.models();
        let dbt_runs: Task = Box::new(move |shutdown| {
            Box::pin(consumers::run_dbt_runs(bus, store, models, shutdown))
        });
        let ticker = self.ticker.clone();
        let ticks: Task = Box::new(move |shutdown| Box::pin(ticker.run(shutdown)));
        let mut tasks = vec![dbt_runs, ticks];
        if let Some(executor) = self.executor.clone() {
            let bus = self.base.bus.clone();
            tasks.push(Box::new(move |shutdown| {
                Box::pin(executor.run(bus, shutdown))
            }));
        }
        let routes = self.add_grpc(tonic::service::Routes::default());
        self.base
            .run(routes, &[SERVICE_NAME], tasks, shutdown)
            .await?;
        Ok(())
    }
}
