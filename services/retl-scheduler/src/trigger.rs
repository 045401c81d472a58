//! What a completed dbt run means for each sync that waits on dbt. A dbt Cloud run starts
//! every enabled sync bound to its (account, job); a dbt Core run (run_results notified
//! by any orchestrator) starts every enabled "after a dbt Core run" sync of the workspace
//! whose model it rebuilt (a run that did not touch the model leaves such a sync alone;
//! one in which the model failed records a skip). With `only_if_model_rebuilt` a sync
//! runs only when its model is among the run's succeeded nodes and none of the model's
//! tests failed; otherwise (node results unknown, model not built, model or a test
//! failed) it gets a SKIPPED run whose error says why.
//!
//! A dbt Cloud run whose node results the listener reads from its `run_results.json`
//! comes in two parts (`RunCompletedEvent.part`): COMPLETED starts the bound syncs
//! without the option at once, and leaves the guarded ones waiting ([`Verdict::Later`]);
//! NODE_RESULTS judges only the guarded ones, with the results or the listener's reason
//! for having none. An event without a part (dbt Core, or a job the listener knew no
//! sync waits on) is judged whole. Runs are unique per (sync, cause), so a sync never
//! runs twice for one dbt run whichever part comes first. Pure: the consumer looks the
//! models up in the catalog and writes what [`judge`] decides.

use crate::schedule::Schedule;
use crate::sync::SyncRecord;
use backflow_proto::dbtcloud::v1::{RunCompletedEvent, RunEventPart};
use backflow_proto::retl::v1::RunTrigger;
use std::collections::BTreeSet;

/// `RunCompletedEvent.origin` of a dbt Core run notified to the listener.
pub const DBT_CORE_ORIGIN: &str = "dbt_core";
/// dbt Cloud's `runStatusCode` for a successful run.
pub const DBT_RUN_SUCCESS: i64 = 10;
/// Failed tests named in a skip reason before "and N more".
const NAMED_TESTS: usize = 3;

/// Where a run came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Cloud {
        account_id: i64,
        job_id: i64,
        run_id: i64,
    },
    Core {
        invocation_id: String,
        /// As the notifier named it; empty when it did not.
        project_name: String,
    },
}

/// Which of the bound syncs one event of a run is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Every bound sync (node results, if any, are in the event).
    Whole,
    /// The run succeeded, node results follow: syncs without `only_if_model_rebuilt`.
    Completed,
    /// The node results, or why there are none: syncs with `only_if_model_rebuilt`.
    NodeResults { missing_reason: String },
}

/// A successful dbt run, as the syncs waiting on it see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbtRun {
    pub workspace_id: String,
    pub origin: Origin,
    pub part: Part,
    pub node_results_known: bool,
    pub succeeded: BTreeSet<String>,
    pub failed: BTreeSet<String>,
}

/// What the catalog says about a sync's Reverse ETL model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFacts {
    /// The dbt model's unique id and its data tests' unique ids.
    Known {
        unique_id: String,
        test_unique_ids: Vec<String>,
    },
    /// The model cannot be used (deleted, broken ...), with the catalog's reason.
    Unusable(String),
}

/// What a run means for one sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Queue a run.
    Run,
    /// Record a skipped run with this reason.
    Skip(String),
    /// The run has nothing to do with this sync: no run at all.
    NotConcerned,
    /// Judged by the run's NODE_RESULTS part, still to come: nothing yet.
    Later,
}

/// The dbt run an event announces: `Ok(None)` for one that did not succeed (recorded by
/// the listener, nothing to trigger); `Err` names what makes the event unusable.
pub fn dbt_run_of(event: &RunCompletedEvent) -> Result<Option<DbtRun>, String> {
    if event.workspace_id.trim().is_empty() {
        return Err("run completed event without workspace_id".into());
    }
    let origin = if event.origin == DBT_CORE_ORIGIN {
        if event.invocation_id.trim().is_empty() {
            return Err("dbt core run completed event without invocation_id".into());
        }
        Origin::Core {
            invocation_id: event.invocation_id.clone(),
            project_name: event.project_name.trim().to_string(),
        }
    } else {
        if event.account_id <= 0 || event.job_id <= 0 || event.run_id <= 0 {
            return Err(format!(
                "run completed event with invalid ids: account {}, job {}, run {}",
                event.account_id, event.job_id, event.run_id
            ));
        }
        if event.run_status_code != DBT_RUN_SUCCESS || !event.succeeded {
            return Ok(None);
        }
        Origin::Cloud {
            account_id: event.account_id,
            job_id: event.job_id,
            run_id: event.run_id,
        }
    };
    if !event.succeeded {
        return Ok(None);
    }
    let part = match RunEventPart::try_from(event.part) {
        Ok(RunEventPart::Unspecified) => Part::Whole,
        Ok(RunEventPart::Completed) => Part::Completed,
        Ok(RunEventPart::NodeResults) => Part::NodeResults {
            missing_reason: event.node_results_missing_reason.trim().to_string(),
        },
        Err(_) => {
            return Err(format!(
                "run completed event with unknown part {}",
                event.part
            ))
        }
    };
    if part != Part::Whole && matches!(origin, Origin::Core { .. }) {
        return Err("a dbt core run completed event comes whole, not in parts".into());
    }
    Ok(Some(DbtRun {
        workspace_id: event.workspace_id.clone(),
        origin,
        part,
        node_results_known: event.node_results_known,
        succeeded: event.succeeded_node_ids.iter().cloned().collect(),
        failed: event.failed_node_ids.iter().cloned().collect(),
    }))
}

impl DbtRun {
    /// The cause id of every run it makes (runs are unique per sync and cause).
    pub fn cause_id(&self) -> String {
        match &self.origin {
            Origin::Cloud {
                account_id, run_id, ..
            } => crate::run::dbt_cause(*account_id, *run_id),
            Origin::Core { invocation_id, .. } => crate::run::dbt_core_cause(invocation_id),
        }
    }

    pub fn trigger(&self) -> RunTrigger {
        match self.origin {
            Origin::Cloud { .. } => RunTrigger::DbtCloudJob,
            Origin::Core { .. } => RunTrigger::DbtCore,
        }
    }

    /// How the run is named in reasons.
    fn name(&self) -> String {
        match &self.origin {
            Origin::Cloud { run_id, .. } => format!("dbt cloud run {run_id}"),
            Origin::Core { invocation_id, .. } => format!("dbt core run {invocation_id}"),
        }
    }

    /// Whether `schedule` waits on this run (paused syncs are left out by the store).
    pub fn binds(&self, schedule: &Schedule) -> bool {
        match (&self.origin, schedule) {
            (
                Origin::Cloud {
                    account_id, job_id, ..
                },
                Schedule::AfterDbtCloudJob {
                    account_id: a,
                    job_id: j,
                },
            ) => account_id == a && job_id == j,
            (Origin::Core { project_name, .. }, Schedule::AfterDbtCoreRun { project_name: p }) => {
                p.is_empty() || self.is_of_project(project_name, p)
            }
            _ => false,
        }
    }

    /// A run named for a project is of that project; one that names none is of every
    /// package its nodes come from (`model.<package>.<name>`).
    fn is_of_project(&self, named: &str, wanted: &str) -> bool {
        if !named.is_empty() {
            return named == wanted;
        }
        self.succeeded
            .iter()
            .chain(self.failed.iter())
            .any(|id| id.split('.').nth(1) == Some(wanted))
    }

    /// Whether judging `sync` needs its model's unique id from the catalog.
    pub fn needs_model(&self, sync: &SyncRecord) -> bool {
        match self.origin {
            Origin::Cloud { .. } => sync.only_if_model_rebuilt && self.node_results_known,
            Origin::Core { .. } => true,
        }
    }
}

/// What `run` means for `sync` (one that [`DbtRun::binds`]); `model` is what the
/// catalog said, when [`DbtRun::needs_model`] asked for it.
pub fn judge(run: &DbtRun, sync: &SyncRecord, model: Option<&ModelFacts>) -> Verdict {
    let is_core = matches!(run.origin, Origin::Core { .. });
    match (&run.part, sync.only_if_model_rebuilt) {
        (Part::Completed, true) => return Verdict::Later,
        // started by the run's COMPLETED part
        (Part::NodeResults { .. }, false) => return Verdict::NotConcerned,
        _ => {}
    }
    if !is_core && !sync.only_if_model_rebuilt {
        return Verdict::Run;
    }
    if !run.node_results_known {
        let why = match &run.part {
            Part::NodeResults { missing_reason } if !missing_reason.is_empty() => {
                missing_reason.as_str()
            }
            _ => "its run_results.json was not read",
        };
        return Verdict::Skip(format!(
            "skipped: {} has no node results ({why}), so it does not show that the model was rebuilt",
            run.name()
        ));
    }
    let (unique_id, tests) = match model {
        Some(ModelFacts::Known {
            unique_id,
            test_unique_ids,
        }) => (unique_id, test_unique_ids),
        Some(ModelFacts::Unusable(reason)) => {
            return Verdict::Skip(format!(
                "skipped: cannot tell whether {} rebuilt the model: {reason}",
                run.name()
            ))
        }
        None => {
            return Verdict::Skip(format!(
            "skipped: the model of the sync is not known, so {} does not show that it was rebuilt",
            run.name()
        ))
        }
    };
    if run.failed.contains(unique_id) {
        return Verdict::Skip(format!(
            "skipped: model {unique_id} failed or was skipped in {}",
            run.name()
        ));
    }
    if !run.succeeded.contains(unique_id) {
        if is_core && !sync.only_if_model_rebuilt {
            return Verdict::NotConcerned;
        }
        return Verdict::Skip(format!(
            "skipped: {} did not build model {unique_id}",
            run.name()
        ));
    }
    if !sync.only_if_model_rebuilt {
        return Verdict::Run;
    }
    let failed: Vec<&String> = tests.iter().filter(|t| run.failed.contains(*t)).collect();
    if failed.is_empty() {
        return Verdict::Run;
    }
    let mut named = failed
        .iter()
        .take(NAMED_TESTS)
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if failed.len() > NAMED_TESTS {
        named.push_str(&format!(" and {} more", failed.len() - NAMED_TESTS));
    }
    Verdict::Skip(format!(
        "skipped: model {unique_id} was rebuilt in {} but {} of its tests failed: {named}",
        run.name(),
        failed.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{validate_new, NewSync};
    use backflow_proto::retl::v1::SyncMode;

    const MODEL: &str = "model.shop.customers";
    const TEST: &str = "test.shop.unique_customers_id.a1";

    fn cloud(code: i64, succeeded: bool) -> RunCompletedEvent {
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

    fn core(succeeded: &[&str], failed: &[&str], project: &str) -> DbtRun {
        DbtRun {
            workspace_id: "ws".into(),
            origin: Origin::Core {
                invocation_id: "inv".into(),
                project_name: project.into(),
            },
            node_results_known: true,
            succeeded: succeeded.iter().map(|s| s.to_string()).collect(),
            failed: failed.iter().map(|s| s.to_string()).collect(),
            part: Part::Whole,
        }
    }

    fn with_results(mut run: DbtRun, succeeded: &[&str], failed: &[&str]) -> DbtRun {
        run.node_results_known = true;
        run.succeeded = succeeded.iter().map(|s| s.to_string()).collect();
        run.failed = failed.iter().map(|s| s.to_string()).collect();
        run
    }

    fn sync(schedule: Schedule, only_if: bool) -> SyncRecord {
        let mut new = NewSync::basic("ws", "s", "m", "d", SyncMode::Upsert, Vec::new(), schedule);
        new.only_if_model_rebuilt = only_if;
        validate_new(new, "s1".into(), 0).expect("valid")
    }

    fn job() -> Schedule {
        Schedule::AfterDbtCloudJob {
            account_id: 1,
            job_id: 123,
        }
    }

    fn known() -> ModelFacts {
        ModelFacts::Known {
            unique_id: MODEL.into(),
            test_unique_ids: vec![TEST.into()],
        }
    }

    fn cloud_run() -> DbtRun {
        dbt_run_of(&cloud(10, true)).ok().flatten().expect("a run")
    }

    #[test]
    fn successful_cloud_runs_have_a_deterministic_cause_and_bind_their_job() {
        let run = cloud_run();
        assert_eq!(run.cause_id(), "dbt:1:12345");
        assert_eq!(run.trigger(), RunTrigger::DbtCloudJob);
        assert!(run.binds(&job()));
        assert!(!run.binds(&Schedule::AfterDbtCloudJob {
            account_id: 1,
            job_id: 124
        }));
        assert!(!run.binds(&Schedule::AfterDbtCoreRun {
            project_name: String::new()
        }));
    }

    #[test]
    fn errored_cancelled_or_inconsistent_runs_trigger_nothing() {
        for (code, succeeded) in [(20, false), (30, false), (10, false), (20, true)] {
            assert_eq!(dbt_run_of(&cloud(code, succeeded)), Ok(None));
        }
    }

    #[test]
    fn unusable_events_are_refused() {
        let mut no_workspace = cloud(10, true);
        no_workspace.workspace_id.clear();
        assert!(dbt_run_of(&no_workspace).is_err());
        let mut no_job = cloud(10, true);
        no_job.job_id = 0;
        assert!(dbt_run_of(&no_job).is_err());
        let core_without_invocation = RunCompletedEvent {
            workspace_id: "ws".into(),
            origin: DBT_CORE_ORIGIN.into(),
            succeeded: true,
            ..Default::default()
        };
        assert!(dbt_run_of(&core_without_invocation).is_err_and(|e| e.contains("invocation_id")));
    }

    #[test]
    fn core_runs_are_caused_by_their_invocation() {
        let event = RunCompletedEvent {
            workspace_id: "ws".into(),
            origin: DBT_CORE_ORIGIN.into(),
            succeeded: true,
            node_results_known: true,
            invocation_id: "inv-9".into(),
            succeeded_node_ids: vec![MODEL.into()],
            ..Default::default()
        };
        let run = dbt_run_of(&event).ok().flatten().expect("a run");
        assert_eq!(run.cause_id(), "dbt-core:inv-9");
        assert_eq!(run.trigger(), RunTrigger::DbtCore);
    }

    #[test]
    fn without_the_option_every_bound_cloud_sync_runs_and_needs_no_model() {
        let run = cloud_run();
        let plain = sync(job(), false);
        assert!(!run.needs_model(&plain));
        assert_eq!(judge(&run, &plain, None), Verdict::Run);
    }

    #[test]
    fn only_if_rebuilt_skips_with_the_reason() {
        let guarded = sync(job(), true);
        // node results unknown
        let unknown = cloud_run();
        assert!(!unknown.needs_model(&guarded));
        assert!(matches!(
            judge(&unknown, &guarded, None),
            Verdict::Skip(m) if m.contains("dbt cloud run 12345 has no node results")
        ));
        // the model is not among the nodes
        let other = with_results(cloud_run(), &["model.shop.orders"], &[]);
        assert!(other.needs_model(&guarded));
        assert_eq!(
            judge(&other, &guarded, Some(&known())),
            Verdict::Skip(
                "skipped: dbt cloud run 12345 did not build model model.shop.customers".into()
            )
        );
        // the model failed
        let failed = with_results(cloud_run(), &[], &[MODEL]);
        assert!(matches!(
            judge(&failed, &guarded, Some(&known())),
            Verdict::Skip(m) if m.contains("failed or was skipped")
        ));
        // built, but a test failed
        let test_failed = with_results(cloud_run(), &[MODEL], &[TEST]);
        assert!(matches!(
            judge(&test_failed, &guarded, Some(&known())),
            Verdict::Skip(m) if m.contains("1 of its tests failed: test.shop.unique_customers_id.a1")
        ));
        // the catalog cannot say
        assert!(matches!(
            judge(&test_failed, &guarded, Some(&ModelFacts::Unusable("model x is broken".into()))),
            Verdict::Skip(m) if m.ends_with("model x is broken")
        ));
        // built and tested: runs (a test of another model failing does not matter)
        let good = with_results(cloud_run(), &[MODEL, TEST], &["test.shop.other.b2"]);
        assert_eq!(judge(&good, &guarded, Some(&known())), Verdict::Run);
    }

    #[test]
    fn core_runs_start_the_syncs_whose_model_they_rebuilt() {
        let any = sync(
            Schedule::AfterDbtCoreRun {
                project_name: String::new(),
            },
            false,
        );
        let built = core(&[MODEL], &[TEST], "");
        assert!(built.needs_model(&any));
        assert_eq!(judge(&built, &any, Some(&known())), Verdict::Run);
        let elsewhere = core(&["model.shop.orders"], &[], "");
        assert_eq!(
            judge(&elsewhere, &any, Some(&known())),
            Verdict::NotConcerned
        );
        let failed = core(&[], &[MODEL], "");
        assert!(matches!(
            judge(&failed, &any, Some(&known())),
            Verdict::Skip(m) if m.contains("dbt core run inv")
        ));
        let guarded = sync(
            Schedule::AfterDbtCoreRun {
                project_name: String::new(),
            },
            true,
        );
        assert!(matches!(
            judge(&built, &guarded, Some(&known())),
            Verdict::Skip(_)
        ));
        assert_eq!(
            judge(&elsewhere, &guarded, Some(&known())),
            Verdict::Skip(
                "skipped: dbt core run inv did not build model model.shop.customers".into()
            )
        );
    }

    #[test]
    fn core_schedules_follow_the_named_project_or_the_nodes_packages() {
        let shop = Schedule::AfterDbtCoreRun {
            project_name: "shop".into(),
        };
        let finance = Schedule::AfterDbtCoreRun {
            project_name: "finance".into(),
        };
        let any = Schedule::AfterDbtCoreRun {
            project_name: String::new(),
        };
        let unnamed = core(&[MODEL], &[], "");
        assert!(unnamed.binds(&shop) && unnamed.binds(&any) && !unnamed.binds(&finance));
        let named = core(&[MODEL], &[], "finance");
        assert!(!named.binds(&shop) && named.binds(&finance) && named.binds(&any));
        assert!(!named.binds(&job()));
    }

    fn part(mut run: DbtRun, part: Part) -> DbtRun {
        run.part = part;
        run
    }

    #[test]
    fn a_cloud_run_in_two_parts_judges_each_sync_once() {
        let plain = sync(job(), false);
        let guarded = sync(job(), true);
        // COMPLETED: plain syncs start, guarded ones wait
        let completed = part(cloud_run(), Part::Completed);
        assert_eq!(judge(&completed, &plain, None), Verdict::Run);
        assert!(!completed.needs_model(&guarded));
        assert_eq!(judge(&completed, &guarded, None), Verdict::Later);
        // NODE_RESULTS: only guarded syncs are judged
        let results = part(
            with_results(cloud_run(), &[MODEL, TEST], &[]),
            Part::NodeResults {
                missing_reason: String::new(),
            },
        );
        assert_eq!(judge(&results, &plain, None), Verdict::NotConcerned);
        assert!(results.needs_model(&guarded));
        assert_eq!(judge(&results, &guarded, Some(&known())), Verdict::Run);
        // given up: the listener's reason is the skip's
        let missing = part(
            cloud_run(),
            Part::NodeResults {
                missing_reason:
                    "run_results.json of dbt cloud run 12345 could not be had after 3 attempts: 404"
                        .into(),
            },
        );
        assert_eq!(
            judge(&missing, &guarded, None),
            Verdict::Skip("skipped: dbt cloud run 12345 has no node results (run_results.json of dbt cloud run 12345 could not be had after 3 attempts: 404), so it does not show that the model was rebuilt".into())
        );
    }

    #[test]
    fn parts_are_read_from_the_event() {
        let mut event = cloud(10, true);
        event.part = RunEventPart::NodeResults as i32;
        event.node_results_missing_reason = " no artifact ".into();
        let run = dbt_run_of(&event).ok().flatten().expect("a run");
        assert_eq!(
            run.part,
            Part::NodeResults {
                missing_reason: "no artifact".into()
            }
        );
        event.part = 9;
        assert!(dbt_run_of(&event).is_err_and(|e| e.contains("unknown part 9")));
        let core_in_parts = RunCompletedEvent {
            workspace_id: "ws".into(),
            origin: DBT_CORE_ORIGIN.into(),
            succeeded: true,
            invocation_id: "inv".into(),
            part: RunEventPart::Completed as i32,
            ..Default::default()
        };
        assert!(dbt_run_of(&core_in_parts).is_err());
    }
}
