//! `backflow sync-runs`: runs of Reverse ETL syncs (`backflow runs` are Git sync runs).
//! `watch` follows the server's `WatchRun` stream: a progress bar on a terminal (records
//! delivered of those to send, once the diff knows), one line per phase change otherwise;
//! its exit code is the run's outcome. `errors` lists rejected and failed records with
//! the destination's message. `approve` / `reject` settle a run a guard stopped; `cancel`
//! stops one.

use super::client::CliError;
use super::names;
use super::output::{cell, duration, timestamp, Details, Table, View};
use super::progress::{Progress, Step};
use super::Ctx;
use backflow_proto::retl::v1 as pb;
use serde::Serialize;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Recent runs, newest first.
    List {
        /// Only this sync's runs.
        #[arg(long = "sync", value_name = "ID")]
        sync_id: Option<String>,
        /// At most this many runs [default: 50, at most 500]
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One run: status, counts, phase timings, samples of a dry run.
    Get { id: String },
    /// Follow a run until it ends; exit 0 if it succeeded, 1 otherwise.
    Watch { id: String },
    /// Records the run rejected (bad keys, null policy) or the destination refused.
    Errors {
        id: String,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Let a run a guard stopped go on delivering.
    Approve { id: String },
    /// End a run a guard stopped: nothing is delivered or committed.
    Reject { id: String },
    /// Stop a queued, running or guarded run.
    Cancel { id: String },
}

fn enum_name(full: &str, prefix: &str) -> String {
    names::short(full, prefix)
}

fn status_name(value: i32) -> String {
    pb::RunStatus::try_from(value)
        .map(|s| enum_name(s.as_str_name(), "RUN_STATUS_"))
        .unwrap_or_else(|_| format!("unknown({value})"))
}

fn phase_name(value: i32) -> String {
    pb::RunPhase::try_from(value)
        .map(|s| enum_name(s.as_str_name(), "RUN_PHASE_"))
        .unwrap_or_else(|_| format!("unknown({value})"))
}

fn change_name(value: i32) -> String {
    pb::RecordChange::try_from(value)
        .map(|s| enum_name(s.as_str_name(), "RECORD_CHANGE_"))
        .unwrap_or_else(|_| format!("unknown({value})"))
}

/// `--output json` shape of a sync run: the one shape every command prints a run in
/// (`sync-runs get|list|watch|approve|reject|cancel`, `syncs trigger|dry-run|approve|…`).
#[derive(Debug, Clone, Serialize)]
pub struct SyncRunJson {
    pub id: String,
    pub sync_id: String,
    /// `manual`, `schedule`, `dbt-cloud-job`, `dbt-core`
    pub trigger: String,
    /// What caused it (a manual request, a schedule tick, a dbt run).
    pub cause_id: String,
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled`, `awaiting-approval`, `rejected`, `skipped`
    pub status: String,
    pub phase: String,
    pub dry_run: bool,
    pub error: String,
    pub approval_reason: String,
    pub counts: CountsJson,
    /// Milliseconds per phase.
    pub timings: Vec<(String, i64)>,
    pub samples: Vec<SampleJson>,
    pub resumed: i32,
    /// Schedule ticks folded into this run while it was queued (they made no run).
    pub coalesced_ticks: i32,
    pub queued_at_unix_ms: i64,
    pub started_at_unix_ms: i64,
    pub finished_at_unix_ms: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CountsJson {
    pub extracted: i64,
    pub added: i64,
    pub updated: i64,
    pub deleted: i64,
    pub delivered: i64,
    pub failed: i64,
    pub rejected: i64,
    pub given_up: i64,
    pub requests: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SampleJson {
    pub change: String,
    pub key: String,
    pub fields: String,
}

impl From<pb::Run> for SyncRunJson {
    fn from(run: pb::Run) -> Self {
        let counts = run.counts.unwrap_or_default();
        Self {
            id: run.id,
            sync_id: run.sync_id,
            trigger: pb::RunTrigger::try_from(run.trigger)
                .map(|t| enum_name(t.as_str_name(), "RUN_TRIGGER_"))
                .unwrap_or_else(|_| format!("unknown({})", run.trigger)),
            cause_id: run.cause_id,
            status: status_name(run.status),
            phase: phase_name(run.phase),
            dry_run: run.dry_run,
            error: run.error,
            approval_reason: run.approval_reason,
            counts: CountsJson {
                extracted: counts.extracted,
                added: counts.added,
                updated: counts.updated,
                deleted: counts.deleted,
                delivered: counts.delivered,
                failed: counts.failed,
                rejected: counts.rejected,
                given_up: counts.given_up,
                requests: counts.requests,
            },
            timings: run
                .timings
                .iter()
                .map(|t| (phase_name(t.phase), t.millis))
                .collect(),
            samples: run
                .samples
                .into_iter()
                .map(|s| SampleJson {
                    change: change_name(s.change),
                    key: s.key_json,
                    fields: s.fields_json,
                })
                .collect(),
            resumed: run.resumed,
            coalesced_ticks: run.coalesced_ticks,
            queued_at_unix_ms: run.queued_at_unix_ms,
            started_at_unix_ms: run.started_at_unix_ms,
            finished_at_unix_ms: run.finished_at_unix_ms,
        }
    }
}

impl SyncRunJson {
    fn to_send(&self) -> i64 {
        self.counts.added + self.counts.updated + self.counts.deleted
    }

    fn counts_line(&self) -> String {
        let c = &self.counts;
        format!(
            "extracted {}, added {}, updated {}, deleted {}, delivered {}, failed {}, rejected {}",
            c.extracted, c.added, c.updated, c.deleted, c.delivered, c.failed, c.rejected
        )
    }
}

pub fn details(run: &SyncRunJson) -> Details {
    let timings: String = run
        .timings
        .iter()
        .map(|(phase, ms)| format!("{phase}: {}\n", duration(*ms)))
        .collect();
    let samples: String = run
        .samples
        .iter()
        .map(|s| format!("{} {} {}\n", s.change, s.key, s.fields))
        .collect();
    let c = &run.counts;
    Details::new()
        .field("id", &run.id)
        .field("sync", &run.sync_id)
        .field("trigger", &run.trigger)
        .field("cause", &run.cause_id)
        .field("status", &run.status)
        .field("phase", &run.phase)
        .field("dry run", run.dry_run.to_string())
        .field("error", &run.error)
        .field("approval reason", &run.approval_reason)
        .field("extracted", c.extracted.to_string())
        .field("added", c.added.to_string())
        .field("updated", c.updated.to_string())
        .field("deleted", c.deleted.to_string())
        .field("delivered", c.delivered.to_string())
        .field("failed", c.failed.to_string())
        .field("rejected", c.rejected.to_string())
        .field("given up", c.given_up.to_string())
        .field("requests", c.requests.to_string())
        .field("resumed", run.resumed.to_string())
        .field("coalesced ticks", run.coalesced_ticks.to_string())
        .field("queued", timestamp(run.queued_at_unix_ms))
        .field("started", timestamp(run.started_at_unix_ms))
        .field("finished", timestamp(run.finished_at_unix_ms))
        .section("timings", timings)
        .section("samples", samples)
}

async fn get_run(ctx: &Ctx, id: &str) -> Result<SyncRunJson, CliError> {
    let mut api = ctx.client.retl()?;
    let call = api
        .inner
        .get_run(pb::GetRunRequest {
            workspace_id: ctx.workspace(),
            run_id: id.to_string(),
        })
        .await;
    api.done(call)?
        .run
        .map(SyncRunJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the run".into()))
}

/// What the progress line shows of a run.
fn step<'a>(run: &SyncRunJson, state: &'a str) -> Step<'a> {
    let total = run.to_send();
    Step {
        state,
        message: format!(
            "run {}: {} {} · {}",
            run.id,
            run.status,
            run.phase,
            run.counts_line()
        ),
        position: (run.phase == "delivering" && total > 0).then(|| {
            (
                u64::try_from(run.counts.delivered + run.counts.failed).unwrap_or(0),
                u64::try_from(total).unwrap_or(0),
            )
        }),
    }
}

pub(super) async fn watch(ctx: &Ctx, id: &str) -> Result<(), CliError> {
    let mut api = ctx.client.retl()?;
    let call = api
        .inner
        .watch_run(pb::WatchRunRequest {
            workspace_id: ctx.workspace(),
            run_id: id.to_string(),
        })
        .await;
    let mut stream = api.done(call)?;
    let mut progress = Progress::new(id);
    let mut last = None;
    loop {
        let message = stream.message().await.map_err(|status| CliError::Call {
            status,
            addr: api.addr.clone(),
        })?;
        let Some(message) = message else { break };
        let Some(run) = message.run.map(SyncRunJson::from) else {
            continue;
        };
        // `queued`, `running extracting`, `succeeded` (the phase when it says more)
        let state = if matches!(run.phase.as_str(), "queued" | "done") {
            run.status.clone()
        } else {
            format!("{} {}", run.status, run.phase)
        };
        progress.update(step(&run, &state));
        let finished = message.finished;
        last = Some(run);
        if finished {
            break;
        }
    }
    let run = match last {
        Some(run) => run,
        None => get_run(ctx, id).await?,
    };
    progress.finish(format!(
        "run {}: {} ({})",
        run.id,
        run.status,
        run.counts_line()
    ));
    ctx.print(&View::new(&run, details(&run).render()));
    if run.status != "succeeded" {
        return Err(CliError::Failed(format!(
            "run {} ended {}{}",
            run.id,
            run.status,
            if run.error.is_empty() {
                String::new()
            } else {
                format!(": {}", run.error)
            }
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
struct RecordErrorJson {
    change: String,
    key: String,
    rejected: bool,
    message: String,
    destination_status: i32,
    attempts: i32,
    given_up: bool,
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::List { sync_id, limit } => {
            let mut api = ctx.client.retl()?;
            let call = api
                .inner
                .list_runs(pb::ListRunsRequest {
                    workspace_id: ctx.workspace(),
                    sync_id: sync_id.unwrap_or_default(),
                    limit: limit.map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX)),
                })
                .await;
            let runs: Vec<SyncRunJson> = api
                .done(call)?
                .runs
                .into_iter()
                .map(SyncRunJson::from)
                .collect();
            let mut table = Table::new(&[
                "id",
                "sync",
                "trigger",
                "status",
                "extracted",
                "delivered",
                "failed",
                "rejected",
                "queued",
                "error",
            ]);
            for run in &runs {
                table.row(vec![
                    run.id.clone(),
                    run.sync_id.clone(),
                    run.trigger.clone(),
                    if run.dry_run {
                        format!("{} (dry run)", run.status)
                    } else {
                        run.status.clone()
                    },
                    run.counts.extracted.to_string(),
                    run.counts.delivered.to_string(),
                    run.counts.failed.to_string(),
                    run.counts.rejected.to_string(),
                    timestamp(run.queued_at_unix_ms),
                    cell(if run.error.is_empty() {
                        &run.approval_reason
                    } else {
                        &run.error
                    }),
                ]);
            }
            ctx.print(&View::new(&runs, table.render()));
            Ok(())
        }
        Command::Get { id } => {
            let run = get_run(ctx, &id).await?;
            ctx.print(&View::new(&run, details(&run).render()));
            Ok(())
        }
        Command::Watch { id } => watch(ctx, &id).await,
        Command::Errors { id, limit } => {
            let mut api = ctx.client.retl()?;
            let call = api
                .inner
                .list_run_record_errors(pb::ListRunRecordErrorsRequest {
                    workspace_id: ctx.workspace(),
                    run_id: id,
                    limit: limit.map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX)),
                })
                .await;
            let errors: Vec<RecordErrorJson> = api
                .done(call)?
                .errors
                .into_iter()
                .map(|e| RecordErrorJson {
                    change: change_name(e.change),
                    key: e.key_json,
                    rejected: e.rejected,
                    message: e.message,
                    destination_status: e.destination_status,
                    attempts: e.attempts,
                    given_up: e.given_up,
                })
                .collect();
            let mut table = Table::new(&["key", "change", "kind", "status", "attempts", "message"]);
            for e in &errors {
                table.row(vec![
                    e.key.clone(),
                    e.change.clone(),
                    if e.rejected {
                        "rejected".into()
                    } else if e.given_up {
                        "given up".into()
                    } else {
                        "failed".into()
                    },
                    e.destination_status.to_string(),
                    e.attempts.to_string(),
                    cell(&e.message),
                ]);
            }
            ctx.print(&View::new(&errors, table.render()));
            Ok(())
        }
        Command::Approve { id } => {
            let mut api = ctx.client.retl()?;
            let call = api
                .inner
                .approve_run(pb::ApproveRunRequest {
                    workspace_id: ctx.workspace(),
                    run_id: id,
                })
                .await;
            print_run(ctx, api.done(call)?.run)
        }
        Command::Reject { id } => {
            let mut api = ctx.client.retl()?;
            let call = api
                .inner
                .reject_run(pb::RejectRunRequest {
                    workspace_id: ctx.workspace(),
                    run_id: id,
                })
                .await;
            print_run(ctx, api.done(call)?.run)
        }
        Command::Cancel { id } => {
            let mut api = ctx.client.retl()?;
            let call = api
                .inner
                .cancel_run(pb::CancelRunRequest {
                    workspace_id: ctx.workspace(),
                    run_id: id,
                })
                .await;
            print_run(ctx, api.done(call)?.run)
        }
    }
}

fn print_run(ctx: &Ctx, run: Option<pb::Run>) -> Result<(), CliError> {
    let run = run
        .map(SyncRunJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the run".into()))?;
    ctx.print(&View::new(&run, details(&run).render()));
    Ok(())
}
