//! `backflow dbt-run notify`: tell Backflow that a dbt Core `dbt run` / `dbt build`
//! finished (from Airflow, Dagster, cron or CI), so the syncs scheduled "after a dbt Core
//! run" whose models it rebuilt start. It posts `target/run_results.json` to the dbt
//! Core endpoint (`POST /dbt-core/run-results`) with the CLI's usual token, then waits a
//! few seconds for the runs the scheduler makes for that invocation (cause
//! `dbt-core:<invocation_id>`) and prints which syncs were triggered or skipped and why.
//!
//! The endpoint is `--endpoint`, else `BACKFLOW_DBT_CORE_URL`, else the one `backflow
//! dev` wrote to the cli config, else `http://127.0.0.1:8084/dbt-core/run-results`.

use super::client::CliError;
use super::names;
use super::output::{cell, counted, Table, View};
use super::Ctx;
use backflow_proto::retl::v1 as pb;
use secrecy::ExposeSecret;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The dbt Cloud listener's default HTTP address, with the dbt Core path.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8084/dbt-core/run-results";
/// Largest file posted (the endpoint's own limit).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Post a finished dbt Core run's run_results.json; print the syncs it triggered or skipped.
    Notify {
        /// The run's results (`target/run_results.json` of `dbt run` / `dbt build`).
        #[arg(long, value_name = "PATH")]
        run_results: PathBuf,
        /// The dbt project's name (syncs scheduled after runs of one project match it;
        /// without it, the packages of the run's nodes do).
        #[arg(long, value_name = "NAME")]
        project: Option<String>,
        /// The dbt Core endpoint [default: BACKFLOW_DBT_CORE_URL, the cli config, else
        /// http://127.0.0.1:8084/dbt-core/run-results]
        #[arg(long, value_name = "URL", env = "BACKFLOW_DBT_CORE_URL")]
        endpoint: Option<String>,
        /// Seconds to wait for the scheduler's runs (0: print what was accepted only).
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        wait: u64,
    },
}

/// What the endpoint answered.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Accepted {
    /// `announced` or `duplicate` (the invocation was notified before).
    pub status: String,
    pub workspace_id: String,
    pub invocation_id: String,
    pub project: String,
    pub cause_id: String,
    pub succeeded_nodes: i64,
    pub failed_nodes: i64,
}

/// One sync the run triggered or skipped.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub sync_id: String,
    pub sync_name: String,
    pub run_id: String,
    pub status: String,
    /// Why it was skipped (empty when it runs).
    pub reason: String,
}

/// `--output json`: the acceptance and the runs seen.
#[derive(Debug, Serialize)]
struct NotifyJson {
    accepted: Accepted,
    runs: Vec<Outcome>,
}

fn endpoint_of(flag: Option<String>, stored: Option<String>) -> String {
    flag.filter(|url| !url.trim().is_empty())
        .or(stored)
        .map(|url| url.trim().to_string())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
}

/// The runs of `cause_id` among `runs`, with the names of their syncs.
pub fn outcomes(cause_id: &str, runs: &[pb::Run], syncs: &[pb::Sync]) -> Vec<Outcome> {
    let mut out: Vec<Outcome> = runs
        .iter()
        .filter(|run| run.cause_id == cause_id)
        .map(|run| Outcome {
            sync_id: run.sync_id.clone(),
            sync_name: syncs
                .iter()
                .find(|sync| sync.id == run.sync_id)
                .map(|sync| sync.name.clone())
                .unwrap_or_default(),
            run_id: run.id.clone(),
            status: names::run_status(run.status),
            reason: if run.status == pb::RunStatus::Skipped as i32 {
                run.error.clone()
            } else {
                String::new()
            },
        })
        .collect();
    out.sort_by(|a, b| a.sync_name.cmp(&b.sync_name));
    out
}

async fn post(
    endpoint: &str,
    workspace: &str,
    project: Option<&str>,
    token: &str,
    body: Vec<u8>,
) -> Result<Accepted, CliError> {
    let mut url = reqwest::Url::parse(endpoint)
        .map_err(|err| CliError::Usage(format!("--endpoint {endpoint:?} is not a url: {err}")))?;
    url.query_pairs_mut().append_pair("workspace", workspace);
    if let Some(project) = project.map(str::trim).filter(|p| !p.is_empty()) {
        url.query_pairs_mut().append_pair("project", project);
    }
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|err| CliError::Failed(format!("cannot build an http client: {err}")))?
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|err| {
            CliError::Failed(format!(
                "cannot reach the dbt core endpoint {endpoint}: {err} (is backflow running? see --endpoint)"
            ))
        })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        return Err(CliError::Failed(format!(
            "the dbt core endpoint refused the run ({}): {message}",
            status.as_u16()
        )));
    }
    serde_json::from_str(&text).map_err(|err| {
        CliError::Failed(format!(
            "the dbt core endpoint answered something unexpected: {err}"
        ))
    })
}

/// Polls the scheduler until runs of `cause_id` appear (they are written together) or
/// `wait` passes.
async fn wait_for_runs(
    ctx: &Ctx,
    workspace: &str,
    cause_id: &str,
    wait: Duration,
) -> Result<Vec<Outcome>, CliError> {
    let deadline = Instant::now() + wait;
    let mut api = ctx.client.retl()?;
    loop {
        let call = api
            .inner
            .list_runs(pb::ListRunsRequest {
                workspace_id: workspace.to_string(),
                sync_id: String::new(),
                limit: 500,
            })
            .await;
        let runs = api.done(call)?.runs;
        if runs.iter().any(|run| run.cause_id == cause_id) || Instant::now() >= deadline {
            let call = api
                .inner
                .list_syncs(pb::ListSyncsRequest {
                    workspace_id: workspace.to_string(),
                })
                .await;
            let syncs = api.done(call)?.syncs;
            return Ok(outcomes(cause_id, &runs, &syncs));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let Command::Notify {
        run_results,
        project,
        endpoint,
        wait,
    } = command;
    let size = std::fs::metadata(&run_results)
        .map_err(|err| CliError::Usage(format!("{}: {err}", run_results.display())))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(CliError::Usage(format!(
            "{} is {size} bytes; the endpoint takes at most {MAX_FILE_BYTES}",
            run_results.display()
        )));
    }
    let body = std::fs::read(&run_results)
        .map_err(|err| CliError::Usage(format!("{}: {err}", run_results.display())))?;
    let token = ctx
        .client
        .target
        .token
        .as_ref()
        .map(|token| token.expose_secret().trim().to_string())
        .ok_or_else(|| {
            CliError::Usage(
                "no token: pass --token or BACKFLOW_TOKEN (an admin token of the workspace)".into(),
            )
        })?;
    let endpoint = endpoint_of(endpoint, ctx.client.target.dbt_core_url.clone());
    let workspace = ctx.workspace();
    let accepted = post(&endpoint, &workspace, project.as_deref(), &token, body).await?;
    let runs = if wait == 0 || accepted.cause_id.is_empty() {
        Vec::new()
    } else {
        wait_for_runs(
            ctx,
            &workspace,
            &accepted.cause_id,
            Duration::from_secs(wait),
        )
        .await?
    };
    let mut text = format!(
        "dbt core run {} {} ({} succeeded, {} failed)\n",
        accepted.invocation_id,
        if accepted.status == "duplicate" {
            "was notified before"
        } else {
            "accepted"
        },
        counted(accepted.succeeded_nodes, "node"),
        accepted.failed_nodes
    );
    if runs.is_empty() {
        text.push_str(if wait == 0 {
            "not waiting for the scheduler; see backflow sync-runs list\n"
        } else {
            "no sync triggered (no enabled sync scheduled after a dbt core run has a model this run rebuilt)\n"
        });
    } else {
        let mut table = Table::new(&["sync", "name", "run", "status", "reason"]);
        for outcome in &runs {
            table.row(vec![
                outcome.sync_id.clone(),
                cell(&outcome.sync_name),
                outcome.run_id.clone(),
                outcome.status.clone(),
                cell(&outcome.reason),
            ]);
        }
        text.push_str(&table.render());
    }
    // the View's table text is printed as is
    let json = NotifyJson { accepted, runs };
    ctx.print(&View::new(&json, text));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_the_flag_the_config_or_the_default() {
        assert_eq!(
            endpoint_of(Some(" http://h:1/x ".into()), Some("http://c".into())),
            "http://h:1/x"
        );
        assert_eq!(endpoint_of(None, Some("http://c".into())), "http://c");
        assert_eq!(endpoint_of(Some(" ".into()), None), DEFAULT_ENDPOINT);
    }

    #[test]
    fn outcomes_are_the_runs_of_the_invocation_with_sync_names_and_reasons() {
        let run = |id: &str, sync: &str, cause: &str, status: pb::RunStatus, error: &str| pb::Run {
            id: id.into(),
            sync_id: sync.into(),
            cause_id: cause.into(),
            status: status as i32,
            error: error.into(),
            ..Default::default()
        };
        let runs = vec![
            run("r1", "s1", "dbt-core:inv", pb::RunStatus::Queued, ""),
            run(
                "r2",
                "s2",
                "dbt-core:inv",
                pb::RunStatus::Skipped,
                "skipped: tests failed",
            ),
            run("r3", "s1", "dbt-core:other", pb::RunStatus::Queued, ""),
        ];
        let syncs = vec![
            pb::Sync {
                id: "s1".into(),
                name: "b sync".into(),
                ..Default::default()
            },
            pb::Sync {
                id: "s2".into(),
                name: "a sync".into(),
                ..Default::default()
            },
        ];
        let seen = outcomes("dbt-core:inv", &runs, &syncs);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].sync_name, "a sync");
        assert_eq!(seen[0].reason, "skipped: tests failed");
        assert_eq!(seen[1].run_id, "r1");
        assert_eq!(seen[1].reason, "");
    }
}
