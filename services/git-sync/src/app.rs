//! `App::build` wires the git-sync service from its configuration; `App::run` serves
//! it until shutdown. Tests build it on port 0 against a fresh database.

use crate::config::Config;
use crate::error::GitSyncError;
use crate::grpc::{GitSyncGrpc, SERVICE_NAME};
use crate::store::GitSyncStore;
use backflow_platform::bus::streams;
use backflow_platform::config::NatsConfig;
use backflow_platform::db::Migrations;
use backflow_platform::service::{BaseSettings, ServiceBase};
use backflow_platform::shutdown::Shutdown;
use std::net::SocketAddr;

static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub const MIGRATIONS: Migrations = Migrations {
    postgres: &POSTGRES,
    sqlite: &SQLITE,
};

pub struct App {
    base: ServiceBase,
    store: GitSyncStore,
}

impl App {
    pub async fn build(config: Config, nats: &NatsConfig) -> Result<Self, GitSyncError> {
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
        let store = GitSyncStore::new(base.db.clone(), base.outbox.clone());
        Ok(Self { base, store })
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.base.grpc_addr()
    }

    pub fn store(&self) -> &GitSyncStore {
        &self.store
    }

    pub async fn run(self, shutdown: Shutdown) -> Result<(), GitSyncError> {
        let routes = tonic::service::Routes::new(GitSyncGrpc::new(self.store).into_server());
        self.base
            .run(routes, &[SERVICE_NAME], Vec::new(), shutdown)
            .await?;
        Ok(())
    }
}
