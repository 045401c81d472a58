//! The front door of `backflow dev` (contract 1): every service of the process on
//! one gRPC address (`front_door.listen`, default 127.0.0.1:50050) behind the same
//! auth layer as the per-service ports, which stay. It also fills the address
//! directory, so a call on a port that does not serve a service says where it is
//! served, and writes the dev token file the CLI reads (contract 2).

use crate::config::BackflowConfig;
use crate::services::{BuiltService, ServiceName};
use backflow_platform::front_door::Directory;
use backflow_platform::grpc::{GrpcError, ServeOptions};
use backflow_platform::shutdown::Shutdown;
use std::path::Path;

/// Where the CLI looks for the dev address and token (relative to the working dir).
pub const CLI_FILE: &str = "data/cli.json";

pub struct FrontDoor {
    listener: tokio::net::TcpListener,
    routes: tonic::service::Routes,
    names: Vec<&'static str>,
    options: ServeOptions,
}

/// Binds the front door, records every address in the directory, creates the dev
/// token and writes `./data/cli.json`.
pub async fn start(built: &[BuiltService], config: &BackflowConfig) -> anyhow::Result<FrontDoor> {
    let door = &config.front_door;
    let tls = door
        .tls
        .grpc_server("front_door")
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let listener = backflow_platform::grpc::bind(&door.listen)
        .await
        .map_err(|err| anyhow::anyhow!("front_door.listen: {err}"))?;
    let addr = listener
        .local_addr()
        .map_err(|err| anyhow::anyhow!("front_door.listen: {err}"))?;
    let credentials = built
        .iter()
        .find(|service| service.name == ServiceName::Credentials)
        .ok_or_else(|| anyhow::anyhow!("the front door needs the credentials service"))?;
    let verifier = credentials
        .verifier
        .clone()
        .ok_or_else(|| anyhow::anyhow!("credentials has no token verifier"))?;
    let tokens = credentials
        .tokens
        .clone()
        .ok_or_else(|| anyhow::anyhow!("credentials has no token store"))?;
    let mut router = axum::Router::new();
    let mut names = Vec::new();
    for service in built {
        router = router.merge(service.grpc_router.clone());
        for name in service.name.grpc_services() {
            names.push(*name);
            if let Some(own) = service.grpc_addr {
                Directory::add(name, &own.to_string());
            }
            Directory::add(name, &addr.to_string());
        }
    }
    let dead_letters = backflow_platform::dead_letter_grpc::DeadLetterGrpc::new(
        built
            .iter()
            .map(|service| service.dead_letters.clone())
            .collect(),
    );
    let routes = tonic::service::Routes::from(router).add_service(dead_letters.into_server());
    names.push(backflow_platform::dead_letter_grpc::SERVICE_NAME);
    Directory::add(
        backflow_platform::dead_letter_grpc::SERVICE_NAME,
        &addr.to_string(),
    );
    let scheme = if tls.is_some() { "https" } else { "http" };
    let dbt_core_url = built
        .iter()
        .find(|service| service.name == ServiceName::DbtCloudListener)
        .and_then(|service| service.http_addr)
        .map(|http| format!("http://{http}/dbt-core/run-results"));
    crate::tokens::write_dev_token(
        &tokens,
        &format!("{scheme}://{addr}"),
        dbt_core_url.as_deref(),
        Path::new(CLI_FILE),
    )
    .await?;
    println!("backflow: front door (every service) on {addr}");
    println!("backflow: dev admin token for workspace default written to ./{CLI_FILE}");
    Ok(FrontDoor {
        listener,
        routes,
        names,
        options: ServeOptions { verifier, tls },
    })
}

impl FrontDoor {
    pub async fn run(self, shutdown: Shutdown) -> Result<(), GrpcError> {
        backflow_platform::grpc::serve(
            self.listener,
            self.routes,
            &self.names,
            self.options,
            shutdown,
        )
        .await
    }
}

/// `backflow serve X`: where the other services are, from their configured addresses.
pub fn directory_from_config(config: &BackflowConfig) {
    for service in ServiceName::ALL {
        for name in service.grpc_services() {
            Directory::add(name, service.grpc_listen(config));
        }
    }
}
