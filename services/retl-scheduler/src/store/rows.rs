//! How sync and run records map to table rows and back; a row that does not decode
//! (unknown enum value, bad JSON, unknown schedule kind) is reported as corrupt.

use crate::error::RetlError;
use crate::run::{RunExecution, RunRecord};
use crate::schedule::Schedule;
use crate::sync::{Guards, SyncRecord};
use backflow_proto::retl::v1::{DiffStrategy, RunPhase, RunStatus, RunTrigger, SyncMode};

pub(super) const SYNC_COLUMNS: &str = "id, workspace_id, name, retl_model_id, destination_id, mode, mappings, \
     schedule_kind, interval_seconds, cron_expression, time_zone, dbt_account_id, dbt_job_id, paused, \
     created_at_ms, updated_at_ms, destination_options, max_delete_share, allow_empty_extract, diff_strategy, \
     max_record_attempts, only_if_model_rebuilt, state_epoch, model_primary_key, version, dbt_project_name, paused_reason";

pub(super) const RUN_COLUMNS: &str =
    "id, workspace_id, sync_id, run_trigger, status, cause_id, queued_at_ms, finished_at_ms, error, \
     started_at_ms, phase, dry_run, approved, approval_reason, cancel_requested, resumed, counts, timings, samples, \
     coalesced_ticks";

/// Columns a queued run is inserted with (the rest start at their defaults).
pub(super) const RUN_INSERT_COLUMNS: &str =
    "id, workspace_id, sync_id, run_trigger, status, cause_id, queued_at_ms, finished_at_ms, error, dry_run";

/// Columns of [`SYNC_COLUMNS`], in order.
#[derive(sqlx::FromRow)]
pub(super) struct SyncRow {
    id: String,
    workspace_id: String,
    name: String,
    retl_model_id: String,
    destination_id: String,
    mode: i32,
    mappings: String,
    schedule_kind: String,
    interval_seconds: i64,
    cron_expression: String,
    time_zone: String,
    dbt_account_id: i64,
    dbt_job_id: i64,
    paused: i32,
    created_at_ms: i64,
    updated_at_ms: i64,
    destination_options: String,
    max_delete_share: f64,
    allow_empty_extract: i32,
    diff_strategy: i32,
    max_record_attempts: i32,
    only_if_model_rebuilt: i32,
    state_epoch: i64,
    model_primary_key: String,
    version: i64,
    dbt_project_name: String,
    paused_reason: String,
}

pub(super) fn sync_of(row: SyncRow) -> Result<SyncRecord, RetlError> {
    let corrupt = |what: String| RetlError::Corrupt(format!("sync {}: {what}", row.id));
    let mode = SyncMode::try_from(row.mode).map_err(|_| corrupt(format!("mode {}", row.mode)))?;
    let mappings =
        serde_json::from_str(&row.mappings).map_err(|err| corrupt(format!("mappings: {err}")))?;
    let schedule = match row.schedule_kind.as_str() {
        "manual" => Schedule::Manual,
        "interval" => Schedule::Interval {
            seconds: row.interval_seconds,
        },
        "cron" => Schedule::Cron {
            expression: row.cron_expression,
            time_zone: row.time_zone,
        },
        "after_dbt_cloud_job" => Schedule::AfterDbtCloudJob {
            account_id: row.dbt_account_id,
            job_id: row.dbt_job_id,
        },
        "after_dbt_core_run" => Schedule::AfterDbtCoreRun {
            project_name: row.dbt_project_name,
        },
        other => return Err(corrupt(format!("schedule kind {other:?}"))),
    };
    let destination_options = serde_json::from_str(&row.destination_options)
        .map_err(|err| corrupt(format!("destination_options: {err}")))?;
    let primary_key = serde_json::from_str(&row.model_primary_key)
        .map_err(|err| corrupt(format!("model_primary_key: {err}")))?;
    let diff_strategy = DiffStrategy::try_from(row.diff_strategy)
        .map_err(|_| corrupt(format!("diff strategy {}", row.diff_strategy)))?;
    Ok(SyncRecord {
        id: row.id,
        workspace_id: row.workspace_id,
        name: row.name,
        retl_model_id: row.retl_model_id,
        destination_id: row.destination_id,
        mode,
        mappings,
        schedule,
        paused: row.paused != 0,
        paused_reason: row.paused_reason,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
        destination_options,
        guards: Guards {
            max_delete_share: row.max_delete_share,
            allow_empty_extract: row.allow_empty_extract != 0,
        },
        diff_strategy,
        max_record_attempts: row.max_record_attempts,
        only_if_model_rebuilt: row.only_if_model_rebuilt != 0,
        state_epoch: row.state_epoch,
        primary_key,
        version: row.version,
    })
}

/// Columns of [`RUN_COLUMNS`], in order.
#[derive(sqlx::FromRow)]
pub(super) struct RunRow {
    id: String,
    workspace_id: String,
    sync_id: String,
    run_trigger: i32,
    status: i32,
    cause_id: String,
    queued_at_ms: i64,
    finished_at_ms: i64,
    error: String,
    started_at_ms: i64,
    phase: i32,
    dry_run: i32,
    approved: i32,
    approval_reason: String,
    cancel_requested: i32,
    resumed: i32,
    counts: String,
    timings: String,
    samples: String,
    coalesced_ticks: i32,
}

pub(super) fn run_of(row: RunRow) -> Result<RunRecord, RetlError> {
    let corrupt = |what: String| RetlError::Corrupt(format!("run {}: {what}", row.id));
    let trigger = RunTrigger::try_from(row.run_trigger)
        .map_err(|_| corrupt(format!("trigger {}", row.run_trigger)))?;
    let status =
        RunStatus::try_from(row.status).map_err(|_| corrupt(format!("status {}", row.status)))?;
    let phase =
        RunPhase::try_from(row.phase).map_err(|_| corrupt(format!("phase {}", row.phase)))?;
    let counts =
        serde_json::from_str(&row.counts).map_err(|err| corrupt(format!("counts: {err}")))?;
    let timings: Vec<(i32, i64)> =
        serde_json::from_str(&row.timings).map_err(|err| corrupt(format!("timings: {err}")))?;
    let timings = timings
        .into_iter()
        .map(|(phase, millis)| {
            RunPhase::try_from(phase)
                .map(|phase| (phase, millis))
                .map_err(|_| corrupt(format!("timing phase {phase}")))
        })
        .collect::<Result<_, _>>()?;
    let samples =
        serde_json::from_str(&row.samples).map_err(|err| corrupt(format!("samples: {err}")))?;
    Ok(RunRecord {
        id: row.id,
        workspace_id: row.workspace_id,
        sync_id: row.sync_id,
        trigger,
        status,
        cause_id: row.cause_id,
        queued_at_ms: row.queued_at_ms,
        finished_at_ms: row.finished_at_ms,
        error: row.error,
        coalesced_ticks: row.coalesced_ticks,
        exec: RunExecution {
            started_at_ms: row.started_at_ms,
            phase,
            dry_run: row.dry_run != 0,
            approved: row.approved != 0,
            approval_reason: row.approval_reason,
            cancel_requested: row.cancel_requested != 0,
            resumed: row.resumed,
            counts,
            timings,
            samples,
        },
    })
}
