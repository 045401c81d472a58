//! The common skeleton of a Backflow service: its database (migrated), its bus
//! connection, its outbox relay and its gRPC listener. Each service's `App::build`
//! starts one of these and adds its own gRPC service and consumers; `run` serves until
//! shutdown and then waits for every task, so no event is dropped half-way.

use crate::auth::{RemoteVerifier, TokenVerifier};
use crate::bus::Bus;
use crate::config::NatsConfig;
use crate::db::{Database, DbError, Migrations};
use crate::dead_letter::DeadLetters;
use crate::grpc::GrpcError;
use crate::outbox::Outbox;
use crate::shutdown::Shutdown;
use crate::tls::TlsConfig;
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::service::Routes;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{service}.database_url: {source}")]
    Database {
        service: &'static str,
        source: DbError,
    },
    #[error("{source}")]
    Bus { source: crate::bus::BusError },
    #[error("{service}.grpc_listen: {source}")]
    Listen {
        service: &'static str,
        source: GrpcError,
    },
    #[error("{0}")]
    Auth(crate::auth::AuthError),
    #[error("{0}")]
    Tls(crate::tls::TlsError),
}

/// How a service verifies the bearer tokens of its callers.
#[derive(Debug, Clone)]
pub enum AuthSource<'a> {
    /// Ask the credentials service at `url` (`TokenService.AuthenticateToken`) with
    /// this service's own service token.
    Credentials {
        url: &'a str,
        service_token: &'a str,
    },
    /// The service verifies tokens itself (the credentials service): it calls
    /// [`ServiceBase::set_verifier`] before `run`.
    Local,
}

/// Settings every service has.
#[derive(Debug, Clone)]
pub struct BaseSettings<'a> {
    pub service: &'static str,
    pub database_url: &'a str,
    pub grpc_listen: &'a str,
    pub nats: &'a NatsConfig,
    pub auth: AuthSource<'a>,
    pub tls: &'a TlsConfig,
}

/// A background task that runs until the shutdown token is cancelled.
pub type Task = Box<dyn FnOnce(Shutdown) -> BoxFuture<'static, ()> + Send>;

#[derive(Debug)]
pub struct ServiceBase {
    pub service: &'static str,
    pub db: Database,
    pub bus: Bus,
    pub outbox: Outbox,
    listener: TcpListener,
    verifier: Option<Arc<dyn TokenVerifier>>,
    tls: Option<tonic::transport::ServerTlsConfig>,
}

impl ServiceBase {
    /// Connects and migrates the database, connects to NATS, ensures `streams`, binds.
    pub async fn start(
        settings: BaseSettings<'_>,
        migrations: &Migrations,
        streams: &[crate::bus::StreamSpec],
    ) -> Result<Self, StartError> {
        let service = settings.service;
        let tls = settings.tls.grpc_server(service).map_err(StartError::Tls)?;
        let verifier: Option<Arc<dyn TokenVerifier>> = match settings.auth {
            AuthSource::Credentials { url, service_token } => {
                let client_tls = settings
                    .tls
                    .grpc_client(service, url)
                    .map_err(StartError::Tls)?;
                Some(Arc::new(
                    RemoteVerifier::new(service, url, service_token, client_tls)
                        .map_err(StartError::Auth)?,
                ))
            }
            AuthSource::Local => None,
        };
        let db = Database::connect(settings.database_url, migrations)
            .await
            .map_err(|source| StartError::Database { service, source })?;
        let bus = Bus::connect(settings.nats)
            .await
            .map_err(|source| StartError::Bus { source })?
            .with_dead_letters(DeadLetters::new(service, db.clone()));
        for stream in streams {
            bus.ensure_stream(stream)
                .await
                .map_err(|source| StartError::Bus { source })?;
        }
        let listener = crate::grpc::bind(settings.grpc_listen)
            .await
            .map_err(|source| StartError::Listen { service, source })?;
        Ok(Self {
            service,
            db,
            bus,
            outbox: Outbox::new(),
            listener,
            verifier,
            tls,
        })
    }

    /// This service's dead letters and the bus to replay them on (a front door that
    /// serves several services combines their targets in one `DeadLetterService`).
    pub fn dead_letter_target(&self) -> crate::dead_letter_grpc::Target {
        crate::dead_letter_grpc::Target {
            store: DeadLetters::new(self.service, self.db.clone()),
            bus: self.bus.clone(),
        }
    }

    /// The token verifier of a service that checks tokens itself.
    pub fn set_verifier(&mut self, verifier: Arc<dyn TokenVerifier>) {
        self.verifier = Some(verifier);
    }

    /// How this service verifies tokens (for another server in the same process).
    pub fn verifier(&self) -> Option<Arc<dyn TokenVerifier>> {
        self.verifier.clone()
    }

    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves gRPC, the outbox relay and `tasks` until `shutdown`, then waits for all.
    pub async fn run(
        self,
        routes: Routes,
        service_names: &[&str],
        tasks: Vec<Task>,
        shutdown: Shutdown,
    ) -> Result<(), GrpcError> {
        let mut handles = Vec::new();
        let relay = self.outbox.clone();
        let service = self.service;
        let (db, bus) = (self.db.clone(), self.bus.clone());
        let relay_shutdown = shutdown.clone();
        handles.push(tokio::spawn(async move {
            relay.run_relay_for(service, db, bus, relay_shutdown).await;
        }));
        for task in tasks {
            handles.push(tokio::spawn(task(shutdown.clone())));
        }
        tracing::info!(service = self.service, addr = ?self.grpc_addr(), "serving grpc");
        // Every service port also answers for its own dead letters.
        let dead_letters =
            crate::dead_letter_grpc::DeadLetterGrpc::new(vec![self.dead_letter_target()]);
        let routes = routes.add_service(dead_letters.into_server());
        let mut service_names = service_names.to_vec();
        service_names.push(crate::dead_letter_grpc::SERVICE_NAME);
        let service_names = service_names.as_slice();
        let served = match self.verifier.clone() {
            Some(verifier) => {
                let options = crate::grpc::ServeOptions {
                    verifier,
                    tls: self.tls.clone(),
                };
                crate::grpc::serve(
                    self.listener,
                    routes,
                    service_names,
                    options,
                    shutdown.clone(),
                )
                .await
            }
            None => Err(GrpcError::Auth(format!(
                "{}: no token verifier was set",
                self.service
            ))),
        };
        // A failed server must still stop the other tasks.
        shutdown.cancel();
        for handle in handles {
            if let Err(error) = handle.await {
                tracing::error!(service = self.service, %error, "task ended abnormally");
            }
        }
        self.db.close().await;
        tracing::info!(service = self.service, "stopped");
        served
    }
}
