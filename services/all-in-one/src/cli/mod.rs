//! The client half of the `backflow` binary: commands that call a running Backflow
//! over gRPC (`backflow secrets …`, `connections`, `runs`, `projects`, `models`,
//! `sources`).
//!
//! One file per command group; each group is a `Subcommand` enum with a
//! `run(&Ctx, Command)` function, wrapped in [`Group`] so it takes the connection
//! flags (`--addr`, `--token`, `--workspace`, `--cli-config`, `--output`) anywhere
//! on its command line. To add a group (`retl-models`, `syncs`,
//! `dbt-cloud`, `dead-letters`, `tokens`): write `cli/<group>.rs` like
//! `connections.rs`, add a variant to [`ClientCommand`] and one arm to [`run`].
//!
//! Exit codes: 0 ok; 1 the call failed (the server's message is printed); 2 usage
//! (clap's own errors, unreadable files, a bad address).

pub mod client;
mod configured;
mod connections;
mod dbt_cloud;
mod dbt_runs;
mod dead_letters;
mod destinations;
mod model_reads;
mod models;
mod names;
pub mod output;
mod progress;
mod projects;
mod retl_models;
mod runs;
mod secrets;
mod sources;
mod sync_args;
mod sync_runs;
mod syncs;

use client::{CliError, Client, ConnectArgs, Target};
use output::{OutputFormat, View};
use std::process::ExitCode;

/// The client command groups, flattened into `backflow`'s top-level commands.
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Store credentials (Git tokens, SSH keys, ...): create, rotate, list, delete.
    Secrets(Group<secrets::Command>),
    /// Git connections: create, inspect, change settings, delete, sync now.
    Connections(Group<connections::Command>),
    /// Sync runs of Git connections: list, inspect, watch until done.
    Runs(Group<runs::Command>),
    /// Runs of Reverse ETL syncs: list, get, watch (progress), errors, approve, reject, cancel.
    SyncRuns(Group<sync_runs::Command>),
    /// dbt projects as the catalog sees them (one per connection).
    Projects(Group<projects::Command>),
    /// dbt models of a connection: list, or one with compiled SQL, columns and key suggestions.
    Models(Group<models::Command>),
    /// Reverse ETL models: check a key, create, list, get, update, delete.
    RetlModels(Group<retl_models::Command>),
    /// Warehouse sources (the databases models run in): create, list.
    Sources(Group<sources::Command>),
    /// Where syncs deliver (webhook, Segment, HubSpot, Salesforce, PostgreSQL): create, test, list, delete.
    Destinations(Group<destinations::Command>),
    /// Reverse ETL syncs: create, update, pause, resume, trigger, reset, dry-run, delete; approve/reject/cancel runs.
    Syncs(Box<Group<syncs::Command>>),
    /// dbt Cloud: connect an account, test it, list its jobs and runs, and the webhook
    /// subscriptions kept for jobs that syncs wait on.
    DbtCloud(Group<dbt_cloud::Command>),
    /// Messages a service could not handle: list, replay after a fix (operator).
    DeadLetters(Group<dead_letters::Command>),
    /// dbt Core runs (any orchestrator): notify a finished run so its syncs start.
    DbtRun(Group<dbt_runs::Command>),
}

/// A command group with the connection flags.
#[derive(Debug, clap::Args)]
pub struct Group<C: clap::Subcommand> {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub command: C,
}

/// What every command gets: the client and how to print.
pub struct Ctx {
    pub client: Client,
    pub format: OutputFormat,
}

impl Ctx {
    /// Prints a result on stdout in the chosen format.
    pub fn print(&self, view: &View) {
        output::print_stdout(&view.render(self.format));
    }

    pub fn workspace(&self) -> String {
        self.client.workspace()
    }
}

/// `KEY=VALUE` flag values (`--attribute`, `--setting`); the value may hold `=`.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// Runs one client command and maps its outcome to the exit code.
pub fn main(command: ClientCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn ctx(connect: &ConnectArgs) -> Result<Ctx, CliError> {
    Ok(Ctx {
        client: Client::new(Target::resolve(connect)?)?,
        format: connect.output,
    })
}

async fn run(command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Secrets(group) => secrets::run(&ctx(&group.connect)?, group.command).await,
        ClientCommand::Connections(group) => {
            connections::run(&ctx(&group.connect)?, group.command).await
        }
        ClientCommand::Runs(group) => runs::run(&ctx(&group.connect)?, group.command).await,
        ClientCommand::SyncRuns(group) => {
            sync_runs::run(&ctx(&group.connect)?, group.command).await
        }
        ClientCommand::Projects(group) => projects::run(&ctx(&group.connect)?, group.command).await,
        ClientCommand::Models(group) => models::run(&ctx(&group.connect)?, group.command).await,
        ClientCommand::Sources(group) => sources::run(&ctx(&group.connect)?, group.command).await,
        ClientCommand::RetlModels(group) => {
            retl_models::run(&ctx(&group.connect)?, group.command).await
        }
        ClientCommand::Destinations(group) => {
            destinations::run(&ctx(&group.connect)?, group.command).await
        }
        ClientCommand::Syncs(group) => syncs::run(&ctx(&group.connect)?, group.command).await,
        ClientCommand::DbtCloud(group) => {
            dbt_cloud::run(&ctx(&group.connect)?, group.command).await
        }
        ClientCommand::DeadLetters(group) => {
            dead_letters::run(&ctx(&group.connect)?, group.command).await
        }
        ClientCommand::DbtRun(group) => dbt_runs::run(&ctx(&group.connect)?, group.command).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_on_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("known=a=b"),
            Ok(("known".to_string(), "a=b".to_string()))
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }
}
