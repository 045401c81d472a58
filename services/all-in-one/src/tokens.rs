//! `backflow tokens create|list|revoke`: operator commands for API tokens. They open
//! the credentials database directly with the same configuration as
//! `backflow serve credentials` / `backflow dev`, so bootstrapping needs no token;
//! a new token is printed once and only its hash is stored. Also the dev token that
//! `backflow dev` creates at each start and writes to `./data/cli.json`.

use crate::cli::output::{cell, timestamp, OutputFormat, Table, View};
use crate::config::BackflowConfig;
use backflow_credentials::error::CredentialsError;
use backflow_credentials::tokens::{ApiTokens, TokenRecord};
use backflow_platform::auth::Role;
use backflow_platform::db::Database;
use serde::Serialize;
use std::path::Path;

/// Label of the token `backflow dev` creates; the previous one is revoked at each start.
pub const DEV_TOKEN_LABEL: &str = "backflow dev";

/// The workspace of the dev token and of `./data/cli.json`.
pub const DEV_WORKSPACE: &str = "default";

#[derive(Debug, clap::Args)]
pub struct TokensArgs {
    /// `table` (default) or `json`.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(subcommand)]
    pub command: TokensCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Create a token; it is printed once and cannot be shown again.
    Create {
        /// The workspace the token may act in.
        #[arg(
            long,
            required_unless_present = "operator",
            conflicts_with = "operator"
        )]
        workspace: Option<String>,
        /// A token for every workspace (operators).
        #[arg(long)]
        operator: bool,
        /// admin (read and write) or viewer (read only).
        #[arg(long, value_enum, default_value_t = RoleArg::Admin)]
        role: RoleArg,
        /// Free text shown by `tokens list` (who or what holds it).
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Every token (never the token itself), newest first.
    List,
    /// Revoke a token by id; services stop accepting it within a few seconds.
    Revoke {
        #[arg(value_name = "TOKEN_ID")]
        id: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Admin,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

#[derive(Debug, Serialize)]
struct TokenJson {
    id: String,
    /// Empty for an operator token.
    workspace: String,
    role: &'static str,
    label: String,
    created_at_unix_ms: i64,
    revoked_at_unix_ms: i64,
}

impl From<&TokenRecord> for TokenJson {
    fn from(record: &TokenRecord) -> Self {
        Self {
            id: record.id.clone(),
            workspace: record.workspace_id.clone().unwrap_or_default(),
            role: record.role.as_str(),
            label: record.label.clone(),
            created_at_unix_ms: record.created_at_ms,
            revoked_at_unix_ms: record.revoked_at_ms.unwrap_or(0),
        }
    }
}

async fn open(config: &BackflowConfig) -> anyhow::Result<ApiTokens> {
    let db = Database::connect(
        &config.credentials.database_url,
        &backflow_credentials::app::MIGRATIONS,
    )
    .await
    .map_err(|err| anyhow::anyhow!("credentials.database_url: {err}"))?;
    Ok(ApiTokens::new(db, Vec::new()))
}

fn scope(record: &TokenRecord) -> String {
    record
        .workspace_id
        .clone()
        .unwrap_or_else(|| "(operator: every workspace)".into())
}

/// A `tokens` command that failed, and its exit code (as the client commands': 2 for
/// what to fix on the command line, 1 for a call that failed).
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("{0}")]
    Usage(String),
    #[error("no valid token {0}: it does not exist or is revoked already (`backflow tokens list` shows the ids)")]
    NotFound(String),
    #[error("{0}")]
    Failed(CredentialsError),
}

impl TokensError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::NotFound(_) | Self::Failed(_) => 1,
        }
    }
}

pub async fn run(args: TokensArgs, config: &BackflowConfig) -> anyhow::Result<()> {
    let tokens = open(config).await?;
    let view = match args.command {
        TokensCommand::Create {
            workspace,
            operator,
            role,
            label,
        } => {
            let workspace = if operator { None } else { workspace };
            let created = tokens
                .create(workspace.as_deref(), role.into(), &label)
                .await
                .map_err(|error| match error {
                    CredentialsError::InvalidArgument(message) => TokensError::Usage(message),
                    other => TokensError::Failed(other),
                })?;
            #[derive(Serialize)]
            struct Created {
                #[serde(flatten)]
                record: TokenJson,
                token: String,
            }
            let text = format!(
                "created token {} ({}, {})\n{}\nstore it now: it is not shown again\n",
                created.record.id,
                scope(&created.record),
                created.record.role.as_str(),
                created.token
            );
            View::new(
                &Created {
                    record: TokenJson::from(&created.record),
                    token: created.token,
                },
                text,
            )
        }
        TokensCommand::List => {
            let records = tokens.list().await?;
            let mut table = Table::new(&["id", "workspace", "role", "label", "created", "revoked"]);
            for record in &records {
                table.row(vec![
                    record.id.clone(),
                    record.workspace_id.clone().unwrap_or_else(|| "*".into()),
                    record.role.as_str().into(),
                    cell(&record.label),
                    timestamp(record.created_at_ms),
                    timestamp(record.revoked_at_ms.unwrap_or(0)),
                ]);
            }
            let json: Vec<TokenJson> = records.iter().map(TokenJson::from).collect();
            View::new(&json, table.render())
        }
        TokensCommand::Revoke { id } => {
            tokens.revoke(&id).await.map_err(|error| match error {
                CredentialsError::NotFound(_) => TokensError::NotFound(id.clone()),
                other => TokensError::Failed(other),
            })?;
            View::message(format!("revoked token {id}"))
        }
    };
    crate::cli::output::print_stdout(&view.render(args.output));
    Ok(())
}

/// `./data/cli.json` (contract 2): where the CLI finds the dev front door and token.
#[derive(Debug, Serialize)]
struct CliFile<'a> {
    addr: &'a str,
    token: &'a str,
    workspace: &'a str,
    /// Where `backflow dbt-run notify` posts (the dbt Cloud listener's HTTP port).
    #[serde(skip_serializing_if = "Option::is_none")]
    dbt_core_url: Option<&'a str>,
}

/// Creates this start's dev admin token for workspace `default`, revokes the tokens
/// of earlier starts and writes `path` (mode 0600) for the CLI.
pub async fn write_dev_token(
    tokens: &ApiTokens,
    addr: &str,
    dbt_core_url: Option<&str>,
    path: &Path,
) -> anyhow::Result<()> {
    let created = tokens
        .create(Some(DEV_WORKSPACE), Role::Admin, DEV_TOKEN_LABEL)
        .await?;
    tokens
        .revoke_label_except(DEV_TOKEN_LABEL, &created.record.id)
        .await?;
    let body = serde_json::to_vec_pretty(&CliFile {
        addr,
        token: &created.token,
        workspace: DEV_WORKSPACE,
        dbt_core_url,
    })?;
    write_private(path, &body)
        .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))
}

/// Writes a file readable only by its owner, replacing any earlier one atomically.
fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temp)?;
    file.write_all(body)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)
}
