//! Standalone `backflow-dbt parse DIR --target-schema S ...`, the same code path as
//! `backflow dbt parse`.

use backflow_dbt::cli::{run_parse, ParseCommand};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The parse is allocation-heavy (YAML trees, JSON values, rendered strings); mimalloc is
/// markedly faster than the system allocator for it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// mimalloc's `mi_option_purge_delay`: the process is short-lived, so freed memory is never
/// handed back to the OS (purging costs more system time than the parse saves).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // SAFETY: sets a plain integer option of the allocator; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
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
