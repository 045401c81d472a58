//! Node results of dbt Cloud runs, read after the webhook is acknowledged, for syncs
//! that run "only if the model was rebuilt".
//!
//! Contract (`evt.dbt.run.completed.<account>`, `RunCompletedEvent.part`):
//! * A successful run of a job some enabled sync waits on is announced twice. COMPLETED
//!   goes out with the webhook's (or reconciliation's) own transaction, without node
//!   results: the scheduler starts every bound sync *without* `only_if_model_rebuilt`
//!   from it at once, so those are never delayed by dbt Cloud's artifact API. The same
//!   transaction leaves a pending fetch (`dbt_artifact_fetches`).
//! * This worker reads the run's `run_results.json` (`GET /api/v2/accounts/{a}/runs/{r}/
//!   artifacts/run_results.json`, the connection's token from the credentials service,
//!   429s waited out by the API client) and publishes NODE_RESULTS — the succeeded and
//!   failed node ids, or, when it gives up, `node_results_known = false` with
//!   `node_results_missing_reason` — in the transaction that deletes the pending fetch.
//!   The scheduler judges the bound syncs *with* `only_if_model_rebuilt` from it only.
//! * A run of a job no enabled sync waits on is announced once, whole (UNSPECIFIED),
//!   with no node results and no fetch; dbt Core runs are always whole (their results
//!   come with the notification).
//!
//! Attempts follow [`RetrySchedule`] (data, not code): failures that may pass (dbt
//! Cloud unreachable or answering 5xx, still rate limiting, credentials service down)
//! are retried after each delay in turn, then given up; a 404 (the artifact is not
//! there: the run's steps wrote none, or dbt Cloud has not stored it yet) is retried
//! only `not_found_attempts` times; a refused token, an unreadable file, or a file from
//! a step that builds nothing (dbt Cloud serves the *last* step's artifact, e.g. `dbt
//! docs generate` when the job generates docs) are given up at once. A fetch pending
//! across a restart is picked up again. The step logic is pure ([`next_step`]); the
//! loop at the bottom is the I/O.

use crate::api::ApiError;
use crate::error::DbtCloudError;
use crate::run_results::{self, NodeResults};
use crate::store::{ConnectionStore, PendingFetch};
use crate::watch::Watcher;
use backflow_platform::shutdown::Shutdown;
use backflow_proto::dbtcloud::v1::{RunCompletedEvent, RunEventPart};
use futures::StreamExt;
use std::time::Duration;

/// When to try again, and when to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Delay after failed attempt n (1-based) before attempt n + 1; after the last, give up.
    pub delays: Vec<Duration>,
    /// Attempts answered 404 before giving up (dbt Cloud may store the artifact a moment
    /// after the webhook, but a job whose steps write none never gets one).
    pub not_found_attempts: i64,
}

impl Default for RetrySchedule {
    /// Seven attempts over about 21 minutes; a 404 three times over about 6 s.
    fn default() -> Self {
        Self {
            delays: [1, 5, 15, 60, 300, 900]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            not_found_attempts: 3,
        }
    }
}

/// Fetches worked on at once.
pub const CONCURRENT_FETCHES: usize = 4;
/// Due fetches read per pass.
const BATCH: i64 = 64;
/// Longest sleep when nothing is due (a missed wake-up is caught by then).
const IDLE: Duration = Duration::from_secs(30);

/// dbt commands whose `run_results.json` shows which nodes were built and tested.
const BUILDING_COMMANDS: [&str; 6] = ["run", "build", "seed", "snapshot", "test", "retry"];

/// Why one attempt did not give node results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 404: no artifact (yet).
    NotFound(String),
    /// Will not get better by waiting: a refused token, a deleted connection or secret.
    Refused(String),
    /// May pass: unreachable, 5xx, rate limited, credentials service down.
    Transient(String),
}

/// What to do after one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Publish these node results.
    Publish(NodeResults),
    /// Try again at this time; the error is kept on the pending fetch.
    Retry { at_ms: i64, error: String },
    /// Publish that there are no node results, with this reason.
    GiveUp(String),
}

/// The step after attempt number `attempts + 1` of `fetch` came back as `outcome`.
pub fn next_step(
    schedule: &RetrySchedule,
    fetch: &PendingFetch,
    outcome: Result<serde_json::Value, Failure>,
    now_ms: i64,
) -> Step {
    let attempt = fetch.attempts + 1;
    let run = fetch.run_id;
    let (error, limit) = match outcome {
        Ok(file) => return read(run, &file),
        Err(Failure::Refused(error)) => {
            return Step::GiveUp(format!(
                "run_results.json of dbt cloud run {run} cannot be read: {error}"
            ))
        }
        Err(Failure::NotFound(error)) => {
            (error, schedule.not_found_attempts.min(schedule.attempts()))
        }
        Err(Failure::Transient(error)) => (error, schedule.attempts()),
    };
    let delay = usize::try_from(attempt - 1)
        .ok()
        .and_then(|index| schedule.delays.get(index));
    match delay {
        Some(delay) if attempt < limit => Step::Retry {
            at_ms: now_ms.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            error,
        },
        _ => Step::GiveUp(format!(
            "run_results.json of dbt cloud run {run} could not be had after {attempt} attempts: {error}"
        )),
    }
}

impl RetrySchedule {
    /// Attempts before giving up on failures that may pass.
    pub fn attempts(&self) -> i64 {
        i64::try_from(self.delays.len()).unwrap_or(i64::MAX) + 1
    }
}

/// The node results a fetched file gives, or why it gives none.
fn read(run_id: i64, file: &serde_json::Value) -> Step {
    match run_results::from_value(file) {
        Err(error) => Step::GiveUp(format!("dbt cloud run {run_id}: {error}")),
        Ok(results)
            if !results.command.is_empty()
                && !BUILDING_COMMANDS.contains(&results.command.as_str()) =>
        {
            Step::GiveUp(format!(
                "the run_results.json dbt cloud serves for run {run_id} is from its last step, `dbt {}`, \
                 which builds nothing (e.g. the job generates docs after its build)",
                results.command
            ))
        }
        Ok(results) => Step::Publish(results),
    }
}

/// The NODE_RESULTS part for `fetch`: its results, or why there are none.
pub fn node_results_event(
    fetch: &PendingFetch,
    results: Result<NodeResults, String>,
) -> RunCompletedEvent {
    let mut event = crate::webhook::successful_run(
        &fetch.workspace_id,
        &fetch.connection_id,
        fetch.account_id,
        fetch.job_id,
        fetch.run_id,
    );
    event.part = RunEventPart::NodeResults as i32;
    match results {
        Ok(results) => {
            event.node_results_known = true;
            event.invocation_id = results.invocation_id;
            event.succeeded_node_ids = results.succeeded;
            event.failed_node_ids = results.failed;
        }
        Err(reason) => event.node_results_missing_reason = reason,
    }
    event
}

fn failure_of_api(error: ApiError) -> Failure {
    match error {
        ApiError::NotFound { .. } => Failure::NotFound(error.to_string()),
        ApiError::Unauthorized { .. } | ApiError::Forbidden { .. } => {
            Failure::Refused(error.to_string())
        }
        // A 200 whose body is not json will not change either.
        ApiError::Protocol { .. } => Failure::Refused(error.to_string()),
        ApiError::RateLimited { .. } | ApiError::Unreachable { .. } | ApiError::Status { .. } => {
            Failure::Transient(error.to_string())
        }
    }
}

fn failure_of_service(error: DbtCloudError) -> Failure {
    match error {
        DbtCloudError::Credentials {
            transient: false,
            message,
        } => Failure::Refused(message),
        DbtCloudError::InvalidArgument(message) | DbtCloudError::NotFound(message) => {
            Failure::Refused(message)
        }
        other => Failure::Transient(other.to_string()),
    }
}

/// One attempt at `fetch`'s artifact.
async fn attempt(watcher: &Watcher, fetch: &PendingFetch) -> Result<serde_json::Value, Failure> {
    let connection = watcher
        .store()
        .get(&fetch.workspace_id, &fetch.connection_id)
        .await
        .map_err(failure_of_service)?
        .ok_or_else(|| {
            Failure::Refused(format!(
                "dbt cloud connection {} was deleted",
                fetch.connection_id
            ))
        })?;
    let api = watcher
        .api_for(&connection)
        .await
        .map_err(failure_of_service)?;
    api.run_results(fetch.run_id).await.map_err(failure_of_api)
}

/// Works on one due fetch: an attempt, then the step it leads to.
async fn work_on(
    watcher: &Watcher,
    schedule: &RetrySchedule,
    fetch: PendingFetch,
) -> Result<(), DbtCloudError> {
    let outcome = attempt(watcher, &fetch).await;
    let now_ms = backflow_platform::now_unix_ms();
    let store = watcher.store();
    let results = match next_step(schedule, &fetch, outcome, now_ms) {
        Step::Retry { at_ms, error } => {
            tracing::warn!(
                workspace_id = %fetch.workspace_id,
                run_id = fetch.run_id,
                attempt = fetch.attempts + 1,
                retry_in_ms = at_ms - now_ms,
                %error,
                "dbt cloud run_results.json not read yet"
            );
            store.retry_fetch(&fetch, at_ms, &error).await?;
            return Ok(());
        }
        Step::Publish(results) => Ok(results),
        Step::GiveUp(reason) => Err(reason),
    };
    let event = node_results_event(&fetch, results);
    let published = store.finish_fetch(&fetch, &event).await?;
    tracing::info!(
        workspace_id = %fetch.workspace_id,
        account_id = fetch.account_id,
        job_id = fetch.job_id,
        run_id = fetch.run_id,
        node_results_known = event.node_results_known,
        succeeded_nodes = event.succeeded_node_ids.len(),
        failed_nodes = event.failed_node_ids.len(),
        reason = %event.node_results_missing_reason,
        published,
        "dbt cloud run node results announced"
    );
    Ok(())
}

/// Drains pending fetches until shutdown: due ones at once (woken by the store after
/// each queuing commit), the rest when their next attempt is due.
pub async fn run_fetches(watcher: Watcher, schedule: RetrySchedule, shutdown: Shutdown) {
    let store: ConnectionStore = watcher.store().clone();
    loop {
        let now_ms = backflow_platform::now_unix_ms();
        let due = match store.due_fetches(now_ms, BATCH).await {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "pending dbt cloud artifact fetches not read");
                Vec::new()
            }
        };
        let full = due.len() as i64 == BATCH;
        let work = futures::stream::iter(due).for_each_concurrent(CONCURRENT_FETCHES, |fetch| {
            let (watcher, schedule) = (&watcher, &schedule);
            async move {
                let run_id = fetch.run_id;
                if let Err(error) = work_on(watcher, schedule, fetch).await {
                    tracing::error!(run_id, %error, "dbt cloud artifact fetch not recorded");
                }
            }
        });
        // Work cut off by shutdown stays pending: the next start takes it up again.
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = work => {}
        }
        if full {
            continue;
        }
        let wait = match store.next_fetch_due_ms().await {
            Ok(Some(at)) => Duration::from_millis(
                u64::try_from(at - backflow_platform::now_unix_ms()).unwrap_or(0),
            )
            .min(IDLE),
            Ok(None) => IDLE,
            Err(_) => Duration::from_secs(1),
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = store.fetches_queued().notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(attempts: i64) -> PendingFetch {
        PendingFetch {
            workspace_id: "ws".into(),
            account_id: 1,
            job_id: 123,
            run_id: 77,
            connection_id: "conn".into(),
            attempts,
            last_error: String::new(),
            created_at_ms: 0,
        }
    }

    fn file(which: &str, results: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v5.json",
                         "invocation_id": "inv-77"},
            "results": results,
            "args": {"which": which}
        })
    }

    #[test]
    fn a_fetched_file_of_a_build_is_published() {
        let schedule = RetrySchedule::default();
        let built = file(
            "build",
            serde_json::json!([{"unique_id": "model.p.a", "status": "success"},
                               {"unique_id": "test.p.t", "status": "fail"}]),
        );
        let Step::Publish(results) = next_step(&schedule, &fetch(0), Ok(built), 0) else {
            panic!("expected publish");
        };
        let event = node_results_event(&fetch(0), Ok(results));
        assert_eq!(event.part, RunEventPart::NodeResults as i32);
        assert!(event.node_results_known);
        assert_eq!(event.succeeded_node_ids, ["model.p.a"]);
        assert_eq!(event.failed_node_ids, ["test.p.t"]);
        assert_eq!(event.invocation_id, "inv-77");
        assert_eq!((event.account_id, event.job_id, event.run_id), (1, 123, 77));
    }

    #[test]
    fn files_that_show_no_build_are_given_up_at_once() {
        let schedule = RetrySchedule::default();
        assert!(matches!(
            next_step(&schedule, &fetch(0), Ok(file("generate", serde_json::json!([]))), 0),
            Step::GiveUp(reason) if reason.contains("`dbt generate`, which builds nothing")
        ));
        assert!(matches!(
            next_step(&schedule, &fetch(0), Ok(serde_json::json!({"results": []})), 0),
            Step::GiveUp(reason) if reason == "dbt cloud run 77: run_results.json has no metadata"
        ));
        assert!(matches!(
            next_step(&schedule, &fetch(0), Err(Failure::Refused("403".into())), 0),
            Step::GiveUp(reason) if reason == "run_results.json of dbt cloud run 77 cannot be read: 403"
        ));
    }

    #[test]
    fn transient_failures_follow_the_schedule_then_give_up() {
        let schedule = RetrySchedule {
            delays: vec![Duration::from_secs(1), Duration::from_secs(5)],
            not_found_attempts: 2,
        };
        let down = || Err(Failure::Transient("503".into()));
        assert_eq!(
            next_step(&schedule, &fetch(0), down(), 1_000),
            Step::Retry {
                at_ms: 2_000,
                error: "503".into()
            }
        );
        assert_eq!(
            next_step(&schedule, &fetch(1), down(), 1_000),
            Step::Retry {
                at_ms: 6_000,
                error: "503".into()
            }
        );
        assert_eq!(
            next_step(&schedule, &fetch(2), down(), 1_000),
            Step::GiveUp(
                "run_results.json of dbt cloud run 77 could not be had after 3 attempts: 503"
                    .into()
            )
        );
        // a 404 stops sooner
        let missing = || Err(Failure::NotFound("404".into()));
        assert!(matches!(
            next_step(&schedule, &fetch(0), missing(), 0),
            Step::Retry { at_ms: 1_000, .. }
        ));
        assert!(matches!(
            next_step(&schedule, &fetch(1), missing(), 0),
            Step::GiveUp(reason) if reason.ends_with("after 2 attempts: 404")
        ));
        let given_up = node_results_event(&fetch(1), Err("gone".into()));
        assert!(!given_up.node_results_known);
        assert_eq!(given_up.node_results_missing_reason, "gone");
        assert_eq!(given_up.part, RunEventPart::NodeResults as i32);
    }

    #[test]
    fn the_default_schedule_is_bounded() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 7);
        let total: Duration = schedule.delays.iter().sum();
        assert_eq!(total, Duration::from_secs(1_281));
    }
}
