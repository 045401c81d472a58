//! `App::build` wires the dbt Cloud listener from its configuration; `App::run`
//! serves it until shutdown. Tests build it on port 0 against a fresh database.

use crate::config::Config;
use crate::connections::Connections;
use crate::error::DbtCloudStartupError;
use crate::grpc::{DbtCloudListenerGrpc, SERVICE_NAME};
use crate::store::ConnectionStore;
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::service::{AuthSource, BaseSettings, ServiceBase};
use backflow_platform::shutdown::Shutdown;
use secrecy::ExposeSecret;
use std::net::SocketAddr;

backflow_platform::service_migrations!();

pub struct App {
    base: ServiceBase,
    connections: Connections,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, DbtCloudStartupError> {
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
            &[streams::EVT_DBT],
        )
        .await?;
        let store = ConnectionStore::new(base.db.clone(), base.outbox.clone());
        Ok(Self {
            base,
            connections: Connections::new(store),
        })
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
        self.base
            .run(routes, &[SERVICE_NAME], Vec::new(), shutdown)
            .await?;
        Ok(())
    }
}
