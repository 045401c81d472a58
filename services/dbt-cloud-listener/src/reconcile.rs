//! Reconciliation: webhooks get lost (Backflow down, a proxy refusing, dbt Cloud giving
//! up), so every `reconcile_interval_secs` the newest runs of each job enabled syncs
//! wait on are listed, and each successful run (status 10) that finished after the
//! first of those syncs started waiting, and within `reconcile_lookback_secs`, is
//! recorded and announced exactly like a webhook delivery: the same store call, the
//! same claim on (workspace, account, job, run) and the same outbox. A run the webhook
//! already announced is recorded as seen and announces nothing; a run reconciliation
//! announced first makes the late webhook announce nothing.
//!
//! The same periodic pass also sweeps the webhook subscriptions (`watch.rs`), so a
//! subscription that failed to be created, or was deleted in dbt Cloud, is retried.

use crate::api::{Run, RunStatus};
use crate::store::{ConnectionStore, Received, ReceivedEventRecord};
use crate::watch::Watcher;
use backflow_platform::shutdown::Shutdown;
use std::time::Duration;

/// Runs listed per job and pass (newest first).
pub const RUNS_PER_JOB: usize = 10;

/// When a run finished, in unix ms, from dbt Cloud's `finished_at`
/// (`2021-12-07 10:34:14.435474+00:00` in API v2, RFC 3339 elsewhere).
pub fn finished_at_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()?;
    Some(parsed.timestamp_millis())
}

/// The successful runs among `runs` that finished at or after `not_before_ms`. A run
/// without a readable finish time is left out: it cannot be shown to be new.
pub fn to_announce(runs: &[Run], not_before_ms: i64) -> Vec<&Run> {
    runs.iter()
        .filter(|run| run.run_status() == RunStatus::Success)
        .filter(|run| {
            run.finished_at
                .as_deref()
                .and_then(finished_at_ms)
                .is_some_and(|at| at >= not_before_ms)
        })
        .collect()
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub jobs: usize,
    pub announced: usize,
    pub already_announced: usize,
    pub failed_jobs: usize,
}

/// One reconciliation pass over every watched job.
pub async fn reconcile_runs(watcher: &Watcher, lookback: Duration, now_ms: i64) -> Pass {
    let store = watcher.store();
    let mut pass = Pass::default();
    let watched = match store.watched_jobs().await {
        Ok(watched) => watched,
        Err(error) => {
            tracing::error!(%error, "watched jobs not read");
            pass.failed_jobs += 1;
            return pass;
        }
    };
    let lookback_ms = i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX);
    for job in watched {
        pass.jobs += 1;
        let not_before = job.waiting_since_ms.max(now_ms.saturating_sub(lookback_ms));
        match reconcile_job(watcher, store, &job.key, not_before, now_ms).await {
            Ok((announced, already)) => {
                pass.announced += announced;
                pass.already_announced += already;
            }
            Err(error) => {
                pass.failed_jobs += 1;
                tracing::warn!(
                    workspace_id = %job.key.workspace_id,
                    account_id = job.key.account_id,
                    job_id = job.key.job_id,
                    %error,
                    "dbt cloud runs not reconciled"
                );
            }
        }
    }
    pass
}

async fn reconcile_job(
    watcher: &Watcher,
    store: &ConnectionStore,
    key: &crate::store::JobKey,
    not_before_ms: i64,
    now_ms: i64,
) -> Result<(usize, usize), crate::error::DbtCloudError> {
    let Some(connection) = store
        .connection_for_account(&key.workspace_id, key.account_id)
        .await?
    else {
        // Shown as the subscription's problem; nothing to poll with.
        return Ok((0, 0));
    };
    let api = watcher.api_for(&connection).await?;
    let runs = api
        .recent_runs(key.job_id, RUNS_PER_JOB)
        .await
        .map_err(|error| {
            crate::error::DbtCloudError::DbtCloud(crate::connection_check::failure_of(
                crate::connection_check::Step::Jobs,
                &error,
                api.base_url(),
                api.account_id(),
            ))
        })?;
    let (mut announced, mut already) = (0, 0);
    for run in to_announce(&runs, not_before_ms) {
        if run.job_definition_id.is_some_and(|job| job != key.job_id) {
            continue;
        }
        let record = ReceivedEventRecord {
            event_id: format!("poll:{}", run.id),
            connection_id: connection.id.clone(),
            event_type: "job.run.completed".into(),
            job_id: key.job_id,
            run_id: run.id,
            run_status_code: run.status,
            received_at_ms: now_ms,
        };
        let event = crate::webhook::successful_run(
            &key.workspace_id,
            &connection.id,
            key.account_id,
            key.job_id,
            run.id,
        );
        match store
            .record_received_via(&key.workspace_id, &record, Some(&event), "poll")
            .await?
        {
            Received::Announced => {
                announced += 1;
                tracing::info!(
                    workspace_id = %key.workspace_id,
                    account_id = key.account_id,
                    job_id = key.job_id,
                    run_id = run.id,
                    "missed dbt cloud run announced by reconciliation"
                );
            }
            Received::RunAlreadyAnnounced => already += 1,
            Received::Duplicate | Received::Recorded => {}
        }
    }
    Ok((announced, already))
}

/// Every `interval`: sweep subscriptions, then reconcile runs; the first pass at start.
pub async fn run_periodically(
    watcher: Watcher,
    interval: Duration,
    lookback: Duration,
    shutdown: Shutdown,
) {
    loop {
        let (subscribed, problems) = watcher.sweep(None).await;
        let pass = reconcile_runs(&watcher, lookback, backflow_platform::now_unix_ms()).await;
        tracing::info!(
            subscribed_jobs = subscribed,
            subscription_problems = problems,
            jobs = pass.jobs,
            announced = pass.announced,
            already_announced = pass.already_announced,
            failed_jobs = pass.failed_jobs,
            "dbt cloud reconciliation pass"
        );
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: i64, status: i64, finished_at: Option<&str>) -> Run {
        Run {
            id,
            job_definition_id: Some(7),
            status,
            status_humanized: None,
            created_at: None,
            finished_at: finished_at.map(str::to_string),
            git_sha: None,
            environment_id: None,
            project_id: None,
            href: None,
        }
    }

    #[test]
    fn dbt_cloud_times_parse() {
        assert_eq!(
            finished_at_ms("2021-12-07 10:34:14.435474+00:00"),
            Some(1_638_873_254_435)
        );
        assert_eq!(
            finished_at_ms("2023-01-31T19:29:32Z"),
            Some(1_675_193_372_000)
        );
        assert_eq!(
            finished_at_ms("2021-12-07 10:34:14+00:00"),
            Some(1_638_873_254_000)
        );
        assert_eq!(finished_at_ms(""), None);
        assert_eq!(finished_at_ms("yesterday"), None);
    }

    #[test]
    fn only_successful_runs_finished_since_the_cutoff_are_announced() {
        let cutoff = finished_at_ms("2021-12-07 10:00:00+00:00").unwrap_or(0);
        let runs = vec![
            run(5, 10, Some("2021-12-07 10:34:14.435474+00:00")),
            run(4, 20, Some("2021-12-07 10:30:00+00:00")),
            run(3, 30, Some("2021-12-07 10:20:00+00:00")),
            run(2, 10, Some("2021-12-07 09:59:59+00:00")),
            run(1, 10, None),
            run(6, 3, None),
        ];
        let ids: Vec<i64> = to_announce(&runs, cutoff).iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![5]);
    }

    #[test]
    fn the_fixture_runs_list_gives_its_successful_run() {
        let text = include_str!("../../../fixtures/payloads/dbt-cloud-runs-list.json");
        let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let runs: Vec<Run> = serde_json::from_value(value["data"].clone()).unwrap_or_default();
        let ids: Vec<i64> = to_announce(&runs, 0).iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![36053848]);
    }
}
