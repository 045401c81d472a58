//! `backflow dbt-cloud`: the dbt Cloud accounts a workspace listens to. `connect`
//! stores the API token in credentials (read from a file or stdin, never the command
//! line) and creates the connection, which is checked against dbt Cloud first (a
//! refused token leaves nothing behind); `test` checks again; `jobs` and `runs` read
//! the account; `subscriptions` shows the webhook subscriptions Backflow keeps for jobs
//! that syncs wait on, and why one is not active. Connections are named by id or name.

use super::client::CliError;
use super::output::{cell, short_sha, timestamp, Details, Table, View};
use super::secrets::{read_material, strip_final_newline};
use super::{names, Ctx};
use backflow_proto::credentials::v1 as credentials;
use backflow_proto::dbtcloud::v1 as pb;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Connect a dbt Cloud account: the token and account are checked before anything is kept.
    Connect {
        /// A name unique in the workspace.
        name: String,
        /// The dbt Cloud account id (the number after `/deploy/` in dbt Cloud's urls).
        #[arg(long = "account", value_name = "ID")]
        account_id: i64,
        /// Custom subdomain (`acme` → acme.getdbt.com) or full host (`ab123.us1.dbt.com`)
        /// [default: cloud.getdbt.com]
        #[arg(long, value_name = "SUBDOMAIN_OR_HOST", default_value = "")]
        access_url: String,
        /// File holding a dbt Cloud service token; `-` reads stdin. Stored in credentials.
        #[arg(long, value_name = "FILE", conflicts_with = "credential")]
        token_file: Option<PathBuf>,
        /// An existing secret (kind dbt-cloud-token) instead of --token-file.
        #[arg(long, value_name = "SECRET_ID")]
        credential: Option<String>,
    },
    /// List the workspace's dbt Cloud connections.
    List,
    /// Show one connection with its last test.
    Get { connection: String },
    /// Check the token and account again now (exit 1 when the check fails).
    Test { connection: String },
    /// Every job of the account (or of one project), with the syncs waiting on each.
    Jobs {
        connection: String,
        /// Only this project's jobs.
        #[arg(long = "project", value_name = "ID")]
        project_id: Option<i64>,
    },
    /// The newest runs of a job.
    Runs {
        connection: String,
        #[arg(long = "job", value_name = "ID")]
        job_id: i64,
        /// How many (at most 100).
        #[arg(long, default_value_t = 10)]
        limit: i32,
    },
    /// Webhook subscriptions kept in dbt Cloud for jobs that syncs wait on.
    Subscriptions {
        /// Only this connection's.
        #[arg(long)]
        connection: Option<String>,
    },
    /// Delete a connection (its webhook subscriptions are deleted in dbt Cloud).
    Delete { connection: String },
}

/// `--output json` shape of a connection.
#[derive(Debug, Serialize)]
pub struct ConnectionJson {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub access_url: String,
    pub account_id: i64,
    pub api_token_credential_id: String,
    pub created_at_unix_ms: i64,
    pub last_test: Option<TestJson>,
}

/// `--output json` shape of a check of the token and account.
#[derive(Debug, Serialize)]
pub struct TestJson {
    pub ok: bool,
    /// `unauthenticated`, `forbidden`, `missing-permission`, `unreachable`,
    /// `rate-limited`, `unexpected-response`; `unspecified` when ok.
    pub problem: String,
    pub message: String,
    pub tested_at_unix_ms: i64,
    pub account_name: String,
}

impl From<pb::ConnectionTestResult> for TestJson {
    fn from(test: pb::ConnectionTestResult) -> Self {
        Self {
            ok: test.ok,
            problem: names::connection_problem(test.problem),
            message: test.message,
            tested_at_unix_ms: test.tested_at_unix_ms,
            account_name: test.account_name,
        }
    }
}

impl From<pb::Connection> for ConnectionJson {
    fn from(c: pb::Connection) -> Self {
        Self {
            id: c.id,
            workspace_id: c.workspace_id,
            name: c.name,
            access_url: c.access_url,
            account_id: c.account_id,
            api_token_credential_id: c.api_token_credential_id,
            created_at_unix_ms: c.created_at_unix_ms,
            last_test: c.last_test.map(TestJson::from),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct JobJson {
    pub id: i64,
    pub name: String,
    pub project_id: i64,
    pub environment_id: i64,
    pub job_type: String,
    pub state: i64,
    pub bound_sync_count: i32,
}

#[derive(Debug, Serialize)]
pub struct RunJson {
    pub id: i64,
    pub job_id: i64,
    pub status_code: i64,
    pub status: String,
    pub created_at: String,
    pub finished_at: String,
    pub git_sha: String,
    pub href: String,
}

#[derive(Debug, Serialize)]
pub struct SubscriptionJson {
    pub id: String,
    pub connection_id: String,
    pub account_id: i64,
    pub job_id: i64,
    pub state: String,
    pub problem: String,
    pub dbt_webhook_id: String,
    pub url: String,
    pub hmac_secret_credential_id: String,
    pub sync_ids: Vec<String>,
    pub created_at_unix_ms: i64,
}

fn test_line(test: &Option<TestJson>) -> String {
    match test {
        None => "-".into(),
        Some(test) if test.ok => format!("ok {}", timestamp(test.tested_at_unix_ms)),
        Some(test) => format!("{} {}", test.problem, timestamp(test.tested_at_unix_ms)),
    }
}

fn connection_details(c: &ConnectionJson) -> String {
    let mut details = Details::new()
        .field("id", c.id.clone())
        .field("name", c.name.clone())
        .field("access url", c.access_url.clone())
        .field("account", c.account_id.to_string())
        .field("token secret", c.api_token_credential_id.clone())
        .field("created", timestamp(c.created_at_unix_ms));
    if let Some(test) = &c.last_test {
        details = details
            .field("last test", test_line(&c.last_test))
            .field("account name", test.account_name.clone());
        if !test.ok {
            details = details.field("problem", test.message.clone());
        }
    }
    details.render()
}

/// The id of a connection named by id or name.
async fn resolve(ctx: &Ctx, connection: &str) -> Result<String, CliError> {
    let mut api = ctx.client.dbt_cloud()?;
    let call = api
        .inner
        .list_connections(pb::ListConnectionsRequest {
            workspace_id: ctx.workspace(),
        })
        .await;
    let listed = api.done(call)?.connections;
    listed
        .iter()
        .find(|c| c.id == connection)
        .or_else(|| listed.iter().find(|c| c.name == connection))
        .map(|c| c.id.clone())
        .ok_or_else(|| {
            CliError::Failed(format!(
                "no dbt cloud connection {connection:?} in workspace {} (see `backflow dbt-cloud list`)",
                ctx.workspace()
            ))
        })
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let workspace_id = ctx.workspace();
    match command {
        Command::Connect {
            name,
            account_id,
            access_url,
            token_file,
            credential,
        } => {
            let (credential_id, stored) = match (credential, token_file) {
                (Some(id), _) => (id, false),
                (None, Some(path)) => {
                    let material = strip_final_newline(read_material(&path, "token")?);
                    let mut secrets = ctx.client.credentials()?;
                    let call = secrets
                        .inner
                        .create_secret(credentials::CreateSecretRequest {
                            workspace_id: workspace_id.clone(),
                            name: format!("dbt-cloud-token-{name}"),
                            kind: credentials::SecretKind::DbtCloudToken as i32,
                            material,
                            attributes: Default::default(),
                        })
                        .await;
                    let secret = secrets.done(call)?.secret.ok_or_else(|| {
                        CliError::Failed("credentials answered without the secret".into())
                    })?;
                    (secret.id, true)
                }
                (None, None) => {
                    return Err(CliError::Usage(
                        "give the dbt cloud service token with --token-file FILE (or - for stdin), or an existing secret with --credential SECRET_ID".into(),
                    ))
                }
            };
            let mut api = ctx.client.dbt_cloud()?;
            let call = api
                .inner
                .create_connection(pb::CreateConnectionRequest {
                    workspace_id: workspace_id.clone(),
                    name,
                    access_url,
                    account_id,
                    api_token_credential_id: credential_id.clone(),
                })
                .await;
            let created = match api.done(call) {
                Ok(created) => created,
                Err(error) => {
                    if stored {
                        // The token was refused (or the call failed): keep nothing.
                        let mut secrets = ctx.client.credentials()?;
                        let _ = secrets
                            .inner
                            .delete_secret(credentials::DeleteSecretRequest {
                                workspace_id: workspace_id.clone(),
                                secret_id: credential_id,
                            })
                            .await;
                    }
                    return Err(error);
                }
            };
            let connection: ConnectionJson = created
                .connection
                .ok_or_else(|| {
                    CliError::Failed("the listener answered without the connection".into())
                })?
                .into();
            let text = connection_details(&connection);
            ctx.print(&View::new(&connection, text));
        }
        Command::List => {
            let mut api = ctx.client.dbt_cloud()?;
            let call = api
                .inner
                .list_connections(pb::ListConnectionsRequest { workspace_id })
                .await;
            let connections: Vec<ConnectionJson> = api
                .done(call)?
                .connections
                .into_iter()
                .map(ConnectionJson::from)
                .collect();
            let mut table = Table::new(&["id", "name", "access url", "account", "last test"]);
            for c in &connections {
                table.row(vec![
                    c.id.clone(),
                    cell(&c.name),
                    cell(&c.access_url),
                    c.account_id.to_string(),
                    test_line(&c.last_test),
                ]);
            }
            ctx.print(&View::new(&connections, table.render()));
        }
        Command::Get { connection } => {
            let connection_id = resolve(ctx, &connection).await?;
            let mut api = ctx.client.dbt_cloud()?;
            let call = api
                .inner
                .get_connection(pb::GetConnectionRequest {
                    workspace_id,
                    connection_id,
                })
                .await;
            let connection: ConnectionJson = api
                .done(call)?
                .connection
                .ok_or_else(|| {
                    CliError::Failed("the listener answered without the connection".into())
                })?
                .into();
            let text = connection_details(&connection);
            ctx.print(&View::new(&connection, text));
        }
        Command::Test { connection } => {
            let connection_id = resolve(ctx, &connection).await?;
            let mut api = ctx.client.dbt_cloud()?;
            let call = api
                .inner
                .test_connection(pb::TestConnectionRequest {
                    workspace_id,
                    connection_id,
                })
                .await;
            let test: TestJson = api
                .done(call)?
                .result
                .ok_or_else(|| CliError::Failed("the listener answered without a result".into()))?
                .into();
            let text = if test.ok {
                format!("ok: the token reads account {:?}\n", test.account_name)
            } else {
                format!("{}: {}\n", test.problem, test.message)
            };
            let failed = !test.ok;
            ctx.print(&View::new(&test, text));
            if failed {
                return Err(CliError::Failed(
                    "the dbt cloud connection check failed".into(),
                ));
            }
        }
        Command::Jobs {
            connection,
            project_id,
        } => {
            let connection_id = resolve(ctx, &connection).await?;
            let mut api = ctx.client.dbt_cloud()?;
            let call = api
                .inner
                .list_jobs(pb::ListJobsRequest {
                    workspace_id,
                    connection_id,
                    project_id: project_id.unwrap_or(0),
                })
                .await;
            let jobs: Vec<JobJson> = api
                .done(call)?
                .jobs
                .into_iter()
                .map(|j| JobJson {
                    id: j.id,
                    name: j.name,
                    project_id: j.project_id,
                    environment_id: j.environment_id,
                    job_type: j.job_type,
                    state: j.state,
                    bound_sync_count: j.bound_sync_count,
                })
                .collect();
            let mut table = Table::new(&[
                "id",
                "name",
                "project",
                "environment",
                "type",
                "state",
                "syncs",
            ]);
            for j in &jobs {
                table.row(vec![
                    j.id.to_string(),
                    cell(&j.name),
                    j.project_id.to_string(),
                    j.environment_id.to_string(),
                    cell(&j.job_type),
                    match j.state {
                        1 => "active".into(),
                        2 => "deleted".into(),
                        other => other.to_string(),
                    },
                    j.bound_sync_count.to_string(),
                ]);
            }
            ctx.print(&View::new(&jobs, table.render()));
        }
        Command::Runs {
            connection,
            job_id,
            limit,
        } => {
            let connection_id = resolve(ctx, &connection).await?;
            let mut api = ctx.client.dbt_cloud()?;
            let call = api
                .inner
                .list_job_runs(pb::ListJobRunsRequest {
                    workspace_id,
                    connection_id,
                    job_id,
                    limit,
                })
                .await;
            let runs: Vec<RunJson> = api
                .done(call)?
                .runs
                .into_iter()
                .map(|r| RunJson {
                    id: r.id,
                    job_id: r.job_id,
                    status_code: r.status_code,
                    status: r.status,
                    created_at: r.created_at,
                    finished_at: r.finished_at,
                    git_sha: r.git_sha,
                    href: r.href,
                })
                .collect();
            let mut table = Table::new(&["id", "status", "code", "finished", "git sha", "url"]);
            for r in &runs {
                table.row(vec![
                    r.id.to_string(),
                    cell(&r.status),
                    r.status_code.to_string(),
                    cell(&r.finished_at),
                    short_sha(&r.git_sha),
                    cell(&r.href),
                ]);
            }
            ctx.print(&View::new(&runs, table.render()));
        }
        Command::Subscriptions { connection } => {
            let connection_id = match connection {
                Some(connection) => resolve(ctx, &connection).await?,
                None => String::new(),
            };
            let mut api = ctx.client.dbt_cloud()?;
            let call = api
                .inner
                .list_subscriptions(pb::ListSubscriptionsRequest {
                    workspace_id,
                    connection_id,
                })
                .await;
            let subscriptions: Vec<SubscriptionJson> = api
                .done(call)?
                .subscriptions
                .into_iter()
                .map(|s| SubscriptionJson {
                    id: s.id,
                    connection_id: s.connection_id,
                    account_id: s.account_id,
                    job_id: s.job_id,
                    state: s.state,
                    problem: s.problem,
                    dbt_webhook_id: s.dbt_webhook_id,
                    url: s.url,
                    hmac_secret_credential_id: s.hmac_secret_credential_id,
                    sync_ids: s.sync_ids,
                    created_at_unix_ms: s.created_at_unix_ms,
                })
                .collect();
            let mut table = Table::new(&[
                "account",
                "job",
                "state",
                "syncs",
                "dbt webhook",
                "url",
                "problem",
            ]);
            for s in &subscriptions {
                table.row(vec![
                    s.account_id.to_string(),
                    s.job_id.to_string(),
                    cell(&s.state),
                    s.sync_ids.len().to_string(),
                    cell(&s.dbt_webhook_id),
                    cell(&s.url),
                    cell(&s.problem),
                ]);
            }
            ctx.print(&View::new(&subscriptions, table.render()));
        }
        Command::Delete { connection } => {
            let connection_id = resolve(ctx, &connection).await?;
            let mut api = ctx.client.dbt_cloud()?;
            let call = api
                .inner
                .delete_connection(pb::DeleteConnectionRequest {
                    workspace_id,
                    connection_id: connection_id.clone(),
                })
                .await;
            api.done(call)?;
            ctx.print(&View::message(format!(
                "deleted dbt cloud connection {connection_id}"
            )));
        }
    }
    Ok(())
}
