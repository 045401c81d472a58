//! The run ledger in the warehouse (issue 10 point 7): when a source has `run_ledger` on
//! (it needs a Backflow schema), every run of a sync reading it writes, when it ends, its
//! row to `<schema>.backflow_runs` (ids, status, trigger, diff strategy, counts, timings,
//! error) and its per-record results to `<schema>.backflow_run_records` (key values,
//! change, outcome `delivered` / `failed` / `given_up` / `rejected`, the destination's
//! status and message, attempts), so users watch their syncs with their own SQL.
//!
//! One transaction per run: the tables are created if missing, the run row is upserted
//! and its records replaced, so a run that resumes or is approved later rewrites its own
//! rows and never duplicates them. A ledger that cannot be written never fails the run;
//! the executor logs it. Delivered records are listed for runs that reached the commit.

use crate::diff::Change;
use crate::executor::error::ExecError;
use crate::run::RunRecord;
use crate::store::runs::{Finish, RecordError};
use crate::warehouse_diff::sql::{CHUNK, RECORDS_TABLE, RUNS_TABLE};
use backflow_proto::retl::v1::RecordChange;
use backflow_warehouse::write::{qualified, quote_ident, Applied, Param, SchemaWriter, Statement};
use std::sync::Arc;
use std::time::Duration;

/// Where a run's ledger goes and what it delivered.
#[derive(Debug)]
pub struct LedgerSink {
    pub writer: Arc<dyn SchemaWriter>,
    /// `backflow` or `warehouse`.
    pub strategy: &'static str,
    /// Key values and change of each delivered record.
    pub delivered: Vec<(String, Change)>,
}

/// One per-record row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    pub key_json: String,
    pub change: &'static str,
    pub outcome: &'static str,
    pub destination_status: i32,
    pub message: String,
    pub attempts: i32,
}

fn wire_name(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_ascii_lowercase()
}

fn change_name(change: Change) -> &'static str {
    match change {
        Change::Added => "added",
        Change::Updated => "updated",
        Change::Deleted => "deleted",
    }
}

fn record_change_name(change: RecordChange) -> &'static str {
    match change {
        RecordChange::Added => "added",
        RecordChange::Updated => "updated",
        RecordChange::Deleted => "deleted",
        RecordChange::Unspecified => "none",
    }
}

/// The rows of a run's records: delivered ones, then errors and rejections.
pub fn records(delivered: &[(String, Change)], errors: &[RecordError]) -> Vec<LedgerRecord> {
    let mut rows: Vec<LedgerRecord> = delivered
        .iter()
        .map(|(key_json, change)| LedgerRecord {
            key_json: key_json.clone(),
            change: change_name(*change),
            outcome: "delivered",
            destination_status: 0,
            message: String::new(),
            attempts: 0,
        })
        .collect();
    rows.extend(errors.iter().map(|error| LedgerRecord {
        key_json: error.key_json.clone(),
        change: record_change_name(error.change),
        outcome: if error.rejected {
            "rejected"
        } else if error.given_up {
            "given_up"
        } else {
            "failed"
        },
        destination_status: error.destination_status,
        message: error.message.clone(),
        attempts: error.attempts,
    }));
    rows
}

/// `to_timestamp(ms / 1000.0)`, NULL for 0.
const TS: &str = "to_timestamp(NULLIF($N::bigint, 0) / 1000.0)";

fn ts(n: usize) -> String {
    TS.replace("$N", &format!("${n}"))
}

/// The statements of one run's ledger transaction.
pub fn statements(
    schema: &str,
    run: &RunRecord,
    finish: &Finish,
    strategy: &str,
    finished_at_ms: i64,
    rows: &[LedgerRecord],
) -> Vec<Statement> {
    let runs = qualified(schema, RUNS_TABLE);
    let records = qualified(schema, RECORDS_TABLE);
    let index = quote_ident("backflow_run_records_by_run");
    let counts = finish.counts;
    let timings: serde_json::Map<String, serde_json::Value> = finish
        .timings
        .iter()
        .map(|(phase, ms)| {
            (
                wire_name(phase.as_str_name(), "RUN_PHASE_"),
                serde_json::Value::from(*ms),
            )
        })
        .collect();
    let mut statements = vec![
        Statement::new(format!(
            "CREATE TABLE IF NOT EXISTS {runs} (run_id text PRIMARY KEY, sync_id text NOT NULL, \
             workspace_id text NOT NULL, status text NOT NULL, trigger text NOT NULL, dry_run boolean NOT NULL, \
             diff_strategy text NOT NULL, queued_at timestamptz, started_at timestamptz, finished_at timestamptz, \
             extracted bigint NOT NULL, added bigint NOT NULL, updated bigint NOT NULL, deleted bigint NOT NULL, \
             delivered bigint NOT NULL, failed bigint NOT NULL, rejected bigint NOT NULL, given_up bigint NOT NULL, \
             requests bigint NOT NULL, error text NOT NULL, approval_reason text NOT NULL, timings_ms jsonb NOT NULL)"
        )),
        Statement::new(format!(
            "CREATE TABLE IF NOT EXISTS {records} (run_id text NOT NULL, sync_id text NOT NULL, \
             key_json text NOT NULL, change text NOT NULL, outcome text NOT NULL, destination_status integer NOT NULL, \
             message text NOT NULL, attempts integer NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())"
        )),
        Statement::new(format!(
            "CREATE INDEX IF NOT EXISTS {index} ON {records} (run_id)"
        )),
        Statement::new(format!(
            "INSERT INTO {runs} (run_id, sync_id, workspace_id, status, trigger, dry_run, diff_strategy, \
             queued_at, started_at, finished_at, extracted, added, updated, deleted, delivered, failed, rejected, \
             given_up, requests, error, approval_reason, timings_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, {}, {}, {}, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22::jsonb) \
             ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, diff_strategy = excluded.diff_strategy, \
             started_at = excluded.started_at, finished_at = excluded.finished_at, extracted = excluded.extracted, \
             added = excluded.added, updated = excluded.updated, deleted = excluded.deleted, \
             delivered = excluded.delivered, failed = excluded.failed, rejected = excluded.rejected, \
             given_up = excluded.given_up, requests = excluded.requests, error = excluded.error, \
             approval_reason = excluded.approval_reason, timings_ms = excluded.timings_ms",
            ts(8),
            ts(9),
            ts(10)
        ))
        .bind(Param::Text(run.id.clone()))
        .bind(Param::Text(run.sync_id.clone()))
        .bind(Param::Text(run.workspace_id.clone()))
        .bind(Param::Text(wire_name(finish.status.as_str_name(), "RUN_STATUS_")))
        .bind(Param::Text(wire_name(run.trigger.as_str_name(), "RUN_TRIGGER_")))
        .bind(Param::Bool(run.exec.dry_run))
        .bind(Param::Text(strategy.to_string()))
        .bind(Param::I64(run.queued_at_ms))
        .bind(Param::I64(run.exec.started_at_ms))
        .bind(Param::I64(finished_at_ms))
        .bind(Param::I64(counts.extracted))
        .bind(Param::I64(counts.added))
        .bind(Param::I64(counts.updated))
        .bind(Param::I64(counts.deleted))
        .bind(Param::I64(counts.delivered))
        .bind(Param::I64(counts.failed))
        .bind(Param::I64(counts.rejected))
        .bind(Param::I64(counts.given_up))
        .bind(Param::I64(counts.requests))
        .bind(Param::Text(finish.error.clone()))
        .bind(Param::Text(finish.approval_reason.clone()))
        .bind(Param::Text(serde_json::Value::Object(timings).to_string())),
        Statement::new(format!("DELETE FROM {records} WHERE run_id = $1"))
            .bind(Param::Text(run.id.clone())),
    ];
    for chunk in rows.chunks(CHUNK) {
        statements.push(
            Statement::new(format!(
                "INSERT INTO {records} (run_id, sync_id, key_json, change, outcome, destination_status, message, attempts) \
                 SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::integer[], $7::text[], $8::integer[])"
            ))
            .bind(Param::Text(run.id.clone()))
            .bind(Param::Text(run.sync_id.clone()))
            .bind(Param::Texts(chunk.iter().map(|r| Some(r.key_json.clone())).collect()))
            .bind(Param::Texts(chunk.iter().map(|r| Some(r.change.to_string())).collect()))
            .bind(Param::Texts(chunk.iter().map(|r| Some(r.outcome.to_string())).collect()))
            .bind(Param::I32s(chunk.iter().map(|r| r.destination_status).collect()))
            .bind(Param::Texts(chunk.iter().map(|r| Some(r.message.clone())).collect()))
            .bind(Param::I32s(chunk.iter().map(|r| r.attempts).collect()))
            .expect(chunk.len() as u64),
        );
    }
    statements
}

/// Writes the ledger of a run that ended with `finish`.
pub async fn write(sink: LedgerSink, run: &RunRecord, finish: &Finish) -> Result<(), ExecError> {
    let rows = records(&sink.delivered, &finish.record_errors);
    let statements = statements(
        sink.writer.schema(),
        run,
        finish,
        sink.strategy,
        backflow_platform::now_unix_ms(),
        &rows,
    );
    sink.writer.ensure_schema(Duration::from_secs(60)).await?;
    match sink
        .writer
        .transaction(&statements, Duration::from_secs(600))
        .await?
    {
        Applied::Committed(_) => Ok(()),
        Applied::Conflict { index, rows } => Err(ExecError::Sync(format!(
            "writing the run ledger: statement {index} changed {rows} rows; nothing was written"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backflow_proto::retl::v1::{RunPhase, RunStatus, RunTrigger};

    #[test]
    fn a_run_and_its_records_replace_earlier_rows_of_the_same_run() {
        let run = RunRecord::queued("ws", "s1", RunTrigger::Manual, "c".into(), 1_000);
        let finish = Finish {
            status: RunStatus::Succeeded,
            error: String::new(),
            approval_reason: String::new(),
            counts: Default::default(),
            timings: vec![(RunPhase::Extracting, 12)],
            samples: Vec::new(),
            record_errors: vec![RecordError {
                change: RecordChange::Updated,
                key_json: "{\"id\":2}".into(),
                rejected: false,
                message: "plan refused".into(),
                destination_status: 422,
                attempts: 5,
                given_up: true,
            }],
            ..finish_defaults()
        };
        let rows = records(
            &[("{\"id\":1}".into(), Change::Added)],
            &finish.record_errors,
        );
        assert_eq!(
            rows.iter()
                .map(|r| (r.change, r.outcome))
                .collect::<Vec<_>>(),
            vec![("added", "delivered"), ("updated", "given_up")]
        );
        let statements = statements("bf", &run, &finish, "warehouse", 2_000, &rows);
        assert_eq!(statements.len(), 6);
        assert!(statements[3].sql.contains("ON CONFLICT (run_id) DO UPDATE"));
        assert_eq!(statements[3].params[3], Param::Text("succeeded".into()));
        assert_eq!(statements[3].params[4], Param::Text("manual".into()));
        assert_eq!(
            statements[3].params[21],
            Param::Text("{\"extracting\":12}".into())
        );
        assert!(statements[4]
            .sql
            .starts_with("DELETE FROM \"bf\".\"backflow_run_records\""));
        assert_eq!(statements[5].expect_rows, Some(2));
    }

    fn finish_defaults() -> Finish {
        Finish {
            status: RunStatus::Succeeded,
            error: String::new(),
            approval_reason: String::new(),
            counts: Default::default(),
            timings: Vec::new(),
            samples: Vec::new(),
            record_errors: Vec::new(),
            outage: false,
        }
    }
}
