//! Runs and what causes them. A run's cause id is deterministic for everything but a
//! manual trigger (`sync:<id>:<tick>`, `dbt:<account>:<run>`, `dbt-core:<invocation>`),
//! and runs are unique per
//! (sync, cause), so replicas and redeliveries that see the same cause make one run.

use backflow_proto::retl::v1::{RunPhase, RunStatus, RunTrigger};
use serde::{Deserialize, Serialize};

/// Runs listed when the caller gives no limit.
pub const DEFAULT_PAGE: i64 = 50;
/// Most runs listed at once.
pub const MAX_PAGE: i64 = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub id: String,
    pub workspace_id: String,
    pub sync_id: String,
    pub trigger: RunTrigger,
    pub status: RunStatus,
    pub cause_id: String,
    pub queued_at_ms: i64,
    /// 0 while the run has not finished.
    pub finished_at_ms: i64,
    pub error: String,
    /// Schedule ticks that came while this run was still queued and were folded into it
    /// (they made no run of their own).
    pub coalesced_ticks: i32,
    /// What the executor did with it (all defaults while queued).
    pub exec: RunExecution,
}

/// Per-run counts (the wire `RunCounts`), stored as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunCounts {
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

impl RunCounts {
    pub fn to_proto(self) -> backflow_proto::retl::v1::RunCounts {
        backflow_proto::retl::v1::RunCounts {
            extracted: self.extracted,
            added: self.added,
            updated: self.updated,
            deleted: self.deleted,
            delivered: self.delivered,
            failed: self.failed,
            rejected: self.rejected,
            given_up: self.given_up,
            requests: self.requests,
        }
    }
}

/// A record as a dry run would send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// `RecordChange` wire value.
    pub change: i32,
    pub key_json: String,
    pub fields_json: String,
}

/// Where a run is and what it did so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunExecution {
    pub started_at_ms: i64,
    pub phase: RunPhase,
    pub dry_run: bool,
    /// A guard stopped it and the user approved: the next attempt skips the guards.
    pub approved: bool,
    pub approval_reason: String,
    pub cancel_requested: bool,
    pub resumed: i32,
    pub counts: RunCounts,
    /// Milliseconds per phase, in the order the phases ran.
    pub timings: Vec<(RunPhase, i64)>,
    pub samples: Vec<Sample>,
}

impl Default for RunExecution {
    fn default() -> Self {
        Self {
            started_at_ms: 0,
            phase: RunPhase::Queued,
            dry_run: false,
            approved: false,
            approval_reason: String::new(),
            cancel_requested: false,
            resumed: 0,
            counts: RunCounts::default(),
            timings: Vec::new(),
            samples: Vec::new(),
        }
    }
}

/// `status` as messages to users say it: `succeeded`, `awaiting approval`.
pub fn status_name(status: RunStatus) -> String {
    status
        .as_str_name()
        .trim_start_matches("RUN_STATUS_")
        .to_ascii_lowercase()
        .replace('_', " ")
}

/// Whether a run in `status` has ended for good.
pub fn is_terminal(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Succeeded
            | RunStatus::Failed
            | RunStatus::Cancelled
            | RunStatus::Rejected
            | RunStatus::Skipped
    )
}

impl RunRecord {
    /// A run waiting for a worker.
    pub fn queued(
        workspace_id: &str,
        sync_id: &str,
        trigger: RunTrigger,
        cause_id: String,
        now_ms: i64,
    ) -> Self {
        Self {
            id: backflow_platform::new_id(),
            workspace_id: workspace_id.to_string(),
            sync_id: sync_id.to_string(),
            trigger,
            status: RunStatus::Queued,
            cause_id,
            queued_at_ms: now_ms,
            finished_at_ms: 0,
            error: String::new(),
            coalesced_ticks: 0,
            exec: RunExecution::default(),
        }
    }

    /// A queued dry run: extracts and diffs, sends and commits nothing.
    pub fn dry_run(mut self) -> Self {
        self.exec.dry_run = true;
        self
    }
}

/// Cause of a run a user asked for; unique every time.
pub fn manual_cause(unique: &str) -> String {
    format!("manual:{unique}")
}

/// Cause of the runs a dbt Cloud run triggers.
pub fn dbt_cause(account_id: i64, run_id: i64) -> String {
    format!("dbt:{account_id}:{run_id}")
}

/// Cause of the runs a dbt Core invocation (notified run_results) triggers.
pub fn dbt_core_cause(invocation_id: &str) -> String {
    format!("dbt-core:{invocation_id}")
}

/// Cause of a scheduled run at `tick_ms`.
pub fn schedule_cause(sync_id: &str, tick_ms: i64) -> String {
    format!("sync:{sync_id}:{tick_ms}")
}

/// How many runs to list for a requested limit (0 or less: the default).
pub fn page_size(requested: i32) -> i64 {
    if requested <= 0 {
        DEFAULT_PAGE
    } else {
        i64::from(requested).min(MAX_PAGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_has_a_default_and_a_cap() {
        assert_eq!(page_size(0), 50);
        assert_eq!(page_size(-3), 50);
        assert_eq!(page_size(7), 7);
        assert_eq!(page_size(500), 500);
        assert_eq!(page_size(10_000), 500);
    }

    #[test]
    fn causes_are_shaped_as_documented() {
        assert_eq!(manual_cause("u"), "manual:u");
        assert_eq!(schedule_cause("s", 60_000), "sync:s:60000");
        assert_eq!(dbt_cause(1, 2), "dbt:1:2");
        assert_eq!(dbt_core_cause("inv"), "dbt-core:inv");
    }

    #[test]
    fn statuses_are_named_as_users_read_them() {
        assert_eq!(status_name(RunStatus::Succeeded), "succeeded");
        assert_eq!(
            status_name(RunStatus::AwaitingApproval),
            "awaiting approval"
        );
    }
}
