//! Runs and what causes them. A run's cause id is deterministic for everything but a
//! manual trigger (`sync:<id>:<tick>`, `dbt:<account>:<run>`), and runs are unique per
//! (sync, cause), so replicas and redeliveries that see the same cause make one run.

use backflow_proto::dbtcloud::v1::RunCompletedEvent;
use backflow_proto::retl::v1::{RunStatus, RunTrigger};

/// Runs listed when the caller gives no limit.
pub const DEFAULT_PAGE: i64 = 50;
/// Most runs listed at once.
pub const MAX_PAGE: i64 = 500;
/// dbt Cloud's `runStatusCode` for a successful run.
pub const DBT_RUN_SUCCESS: i64 = 10;

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
    /// Extracts and diffs, sends nothing, commits nothing.
    pub dry_run: bool,
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
            dry_run: false,
        }
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

/// What a completed dbt Cloud run means for the syncs bound to its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbtRunDecision {
    /// It succeeded: queue one run per bound sync with this cause id.
    Trigger { cause_id: String },
    /// Cancelled or errored: nothing to do.
    Ignore,
}

/// Decides on a completed dbt Cloud run; `Err` names what makes the event unusable.
pub fn decide_dbt_run(event: &RunCompletedEvent) -> Result<DbtRunDecision, String> {
    if event.workspace_id.trim().is_empty() {
        return Err("run completed event without workspace_id".into());
    }
    if event.account_id <= 0 || event.job_id <= 0 || event.run_id <= 0 {
        return Err(format!(
            "run completed event with invalid ids: account {}, job {}, run {}",
            event.account_id, event.job_id, event.run_id
        ));
    }
    if event.run_status_code == DBT_RUN_SUCCESS && event.succeeded {
        Ok(DbtRunDecision::Trigger {
            cause_id: dbt_cause(event.account_id, event.run_id),
        })
    } else {
        Ok(DbtRunDecision::Ignore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(code: i64, succeeded: bool) -> RunCompletedEvent {
        RunCompletedEvent {
            workspace_id: "ws".into(),
            connection_id: "conn".into(),
            account_id: 1,
            job_id: 123,
            run_id: 12345,
            run_status_code: code,
            succeeded,
            ..Default::default()
        }
    }

    #[test]
    fn successful_runs_trigger_with_a_deterministic_cause() {
        assert_eq!(
            decide_dbt_run(&event(10, true)),
            Ok(DbtRunDecision::Trigger {
                cause_id: "dbt:1:12345".into()
            })
        );
    }

    #[test]
    fn errored_cancelled_or_inconsistent_runs_are_ignored() {
        for (code, succeeded) in [(20, false), (30, false), (10, false), (20, true)] {
            assert_eq!(
                decide_dbt_run(&event(code, succeeded)),
                Ok(DbtRunDecision::Ignore)
            );
        }
    }

    #[test]
    fn unusable_events_are_refused() {
        let mut no_workspace = event(10, true);
        no_workspace.workspace_id.clear();
        assert!(decide_dbt_run(&no_workspace).is_err());
        let mut no_job = event(10, true);
        no_job.job_id = 0;
        assert!(decide_dbt_run(&no_job).is_err());
    }

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
    }
}
