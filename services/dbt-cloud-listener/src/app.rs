//! `App::build` wires the dbt Cloud listener from its configuration; `App::run`
//! serves it until shutdown. Tests build it on port 0 against a fresh database.

use crate::config::Config;
use crate::connections::Connections;
use crate::error::DbtCloudError;
use crate::grpc::{DbtCloudListenerGrpc, SERVICE_NAME};
use crate::store::ConnectionStore;
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::service::{BaseSettings, ServiceBase};
use backflow_platform::shutdown::Shutdown;
use std::net::SocketAddr;

backflow_platform::service_migrations!();

pub struct App {
    base: ServiceBase,
    connections: Connections,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, DbtCloudError> {
        let base = ServiceBase::start(
            BaseSettings {
                service: "dbt_cloud_listener",
                database_url: &config.database_url,
                grpc_listen: &config.grpc_listen,
                nats,
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

    pub async fn run(self, shutdown: Shutdown) -> Result<(), DbtCloudError> {
        let routes =
            tonic::service::Routes::new(DbtCloudListenerGrpc::new(self.connections).into_server());
        self.base
            .run(routes, &[SERVICE_NAME], Vec::new(), shutdown)
            .await?;
        Ok(())
    }
}
