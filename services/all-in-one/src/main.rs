//! `backflow`: every Backflow service in one binary.
//!
//! - `backflow dev` runs all services in one process with embedded defaults (SQLite
//!   files under `./data`, fixed local ports) for development;
//! - `backflow serve <service>` runs one service, as deployed on Kubernetes;
//! - `backflow migrate <service>` applies a service's migrations and exits;
//! - `backflow dbt parse DIR --target-schema S` prints a dbt project as dbt's manifest;
//! - `backflow secrets|connections|runs|projects|models …` call a running Backflow
//!   over gRPC (see `cli`).
//!
//! - `backflow tokens create|list|revoke` manage API tokens in the credentials database
//!   (operator commands: no running service, no token needed).
//!
//! `backflow dev` also serves every service on one front door (`front_door.listen`,
//! default 127.0.0.1:50050), creates a dev admin token for workspace `default` and
//! writes `./data/cli.json` for the CLI.
//!
//! Start-up errors end the process with one line naming the setting, exit code 2.

/// A sync moves every record through a few short-lived allocations (key and fields text,
/// request bodies, Arrow buffers) on several threads; mimalloc serves them markedly cheaper
/// than glibc's malloc (the sync bench showed ~7% of its samples in malloc/free).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod config;
mod front_door;
mod services;
mod tokens;

use clap::{Parser, Subcommand};
use config::BackflowConfig;
use services::{BuiltService, ServiceName};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "backflow",
    version,
    about = "dbt models in Git, flowing back out to business tools"
)]
struct Cli {
    /// Configuration file (TOML or YAML); `BACKFLOW_<SECTION>__<KEY>` variables override it.
    #[arg(long, global = true, env = "BACKFLOW_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every service in one process (SQLite under ./data; front door 127.0.0.1:50050, services 50051-50055).
    Dev,
    /// Run one service.
    Serve { service: ServiceName },
    /// Apply one service's database migrations and exit.
    Migrate { service: ServiceName },
    /// dbt project tools (no services, no network).
    #[command(subcommand)]
    Dbt(DbtCommand),
    /// API tokens (operator commands; open the credentials database directly).
    Tokens(tokens::TokensArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(Debug, Subcommand)]
enum DbtCommand {
    /// Parse and compile a dbt project like dbt-core 1.7; print manifest-shaped JSON.
    Parse(backflow_dbt::cli::ParseCommand),
}

fn main() -> ExitCode {
    backflow_platform::memory::disable_transparent_huge_pages();
    let cli = Cli::parse();
    if let Command::Client(command) = cli.command {
        return cli::main(command);
    }
    if let Command::Dbt(DbtCommand::Parse(command)) = &cli.command {
        return dbt_parse(command);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("backflow: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("backflow: {error:#}");
            let code = error
                .downcast_ref::<tokens::TokensError>()
                .map_or(2, tokens::TokensError::exit_code);
            ExitCode::from(code)
        }
    }
}

/// `backflow dbt parse`: synchronous, prints the manifest JSON on stdout.
fn dbt_parse(command: &backflow_dbt::cli::ParseCommand) -> ExitCode {
    match backflow_dbt::cli::run_parse(command) {
        Ok(json) => {
            cli::output::print_stdout(&format!("{json}\n"));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("backflow: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let dev = matches!(cli.command, Command::Dev);
    let config = BackflowConfig::load(cli.config.as_deref(), dev)?;
    let _telemetry = backflow_platform::telemetry::init(&config.telemetry, "backflow")?;
    match cli.command {
        Command::Dev => run_services(&ServiceName::ALL, &config, true).await,
        Command::Serve { service } => run_services(&[service], &config, false).await,
        Command::Tokens(args) => tokens::run(args, &config).await,
        Command::Dbt(_) | Command::Client(_) => Ok(()),
        Command::Migrate { service } => {
            services::migrate(service, &config)
                .await
                .map_err(anyhow::Error::msg)?;
            println!("backflow: {} migrated", service.as_str());
            Ok(())
        }
    }
}

/// One Prometheus `/metrics` listener per process (`telemetry.metrics_listen`; empty
/// disables it), bound before the services so a bad address stops start-up.
async fn start_metrics(
    listen: &str,
    shutdown: &backflow_platform::shutdown::Shutdown,
) -> anyhow::Result<Option<std::net::SocketAddr>> {
    if listen.is_empty() {
        return Ok(None);
    }
    let handle = backflow_platform::metrics::install()?;
    let listener = backflow_platform::metrics::bind(listen).await?;
    let addr = listener.local_addr().ok();
    tokio::spawn(backflow_platform::metrics::serve(
        listener,
        handle,
        shutdown.clone(),
    ));
    Ok(addr)
}

/// Builds every service first (any error stops start-up), then runs them until
/// SIGTERM/SIGINT or until one fails.
async fn run_services(
    names: &[ServiceName],
    config: &BackflowConfig,
    dev: bool,
) -> anyhow::Result<()> {
    // Listen for SIGTERM before anything else, so a stop during start-up is honoured.
    let shutdown = backflow_platform::shutdown::on_signal();
    let metrics = start_metrics(&config.telemetry.metrics_listen, &shutdown).await?;
    let mut built: Vec<BuiltService> = Vec::new();
    let mut config = config.clone();
    for name in names {
        let service = services::build(*name, &config)
            .await
            .map_err(anyhow::Error::msg)?;
        if let Some(addr) = service.grpc_addr {
            services::point_at_bound_port(&mut config, *name, addr);
        }
        built.push(service);
    }
    let config = &config;
    for service in &built {
        match service.grpc_addr {
            Some(addr) => println!("backflow: {} grpc on {addr}", service.name.as_str()),
            None => println!("backflow: {} started", service.name.as_str()),
        }
        if let Some(addr) = service.http_addr {
            println!(
                "backflow: {} webhooks on http://{addr}",
                service.name.as_str()
            );
        }
    }
    if let Some(addr) = metrics {
        println!("backflow: metrics on http://{addr}/metrics");
    }
    let front_door = if dev {
        Some(front_door::start(&built, config).await?)
    } else {
        front_door::directory_from_config(config);
        None
    };
    println!("backflow: ready ({} services); ctrl-c to stop", built.len());
    let mut running = tokio::task::JoinSet::new();
    if let Some(door) = front_door {
        let shutdown = shutdown.clone();
        running.spawn(async move {
            let served = door.run(shutdown).await;
            ("front door", served.map_err(|err| err.to_string()))
        });
    }
    for service in built {
        let shutdown = shutdown.clone();
        running.spawn(async move {
            let name = service.name.as_str();
            (name, service.run(shutdown).await)
        });
    }
    let mut first_error = None;
    while let Some(joined) = running.join_next().await {
        let failure = match joined {
            Ok((_, Ok(()))) => None,
            Ok((name, Err(error))) => Some(format!("{name}: {error}")),
            Err(error) => Some(format!("service task failed: {error}")),
        };
        if let Some(failure) = failure {
            tracing::error!(error = %failure, "service stopped with an error");
            shutdown.cancel();
            first_error.get_or_insert(failure);
        }
    }
    println!("backflow: stopped");
    match first_error {
        Some(error) => Err(anyhow::Error::msg(error)),
        None => Ok(()),
    }
}
