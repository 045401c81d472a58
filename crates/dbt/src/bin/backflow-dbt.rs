//! Standalone `backflow-dbt parse DIR --target-schema S ...`, the same code path as
//! `backflow dbt parse`.

use backflow_dbt::cli::{run_parse, ParseCommand};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "backflow-dbt", about = "Parse a dbt project like dbt-core 1.7")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and compile a project; print a dbt-manifest-shaped JSON document
    Parse(ParseCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Parse(cmd) => match run_parse(&cmd) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}
