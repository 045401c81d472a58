//! The scheduler's JetStream consumers. `retl-scheduler-dbt-runs` turns each
//! successful dbt run (dbt Cloud job or dbt Core invocation) into one run per sync that
//! waits on it, or a skipped run with the reason ([`crate::trigger`] decides; a dbt
//! Cloud run's COMPLETED and NODE_RESULTS events each judge their own syncs). Models
//! are looked up in the catalog before the transaction; the inbox claim and the runs
//! are written in one transaction, so a redelivered event changes nothing. A catalog
//! that cannot be reached retries the delivery later.

use crate::error::RetlError;
use crate::schedule::Schedule;
use crate::store::{DbtRunHandled, SyncStore};
use crate::sync::{RetlModelLookup, SyncRecord};
use crate::trigger::{self, DbtRun, ModelFacts, Origin, Verdict};
use backflow_platform::bus::{streams, Bus, ConsumerSpec, Delivery, Outcome};
use backflow_platform::shutdown::Shutdown;
use backflow_proto::dbtcloud::v1::RunCompletedEvent;
use backflow_proto::retl::v1::RunStatus;
use prost::Message;
use std::sync::Arc;
use std::time::Duration;

/// Durable name shared by every replica.
pub const DBT_RUNS_CONSUMER: &str = "retl-scheduler-dbt-runs";

/// Completed dbt runs, from every account and dbt Core.
pub fn dbt_runs_spec() -> ConsumerSpec {
    ConsumerSpec::new(
        streams::EVT_DBT,
        DBT_RUNS_CONSUMER,
        backflow_proto::subjects::DBT_RUN_COMPLETED.all(),
    )
}

/// Consumes completed dbt runs until shutdown; `models` is the catalog.
pub async fn run_dbt_runs(
    bus: Bus,
    store: SyncStore,
    models: Arc<dyn RetlModelLookup>,
    shutdown: Shutdown,
) {
    bus.run_consumer(
        dbt_runs_spec(),
        |delivery| {
            let (store, models) = (store.clone(), models.clone());
            async move { handle_dbt_run(&store, models.as_ref(), delivery).await }
        },
        shutdown,
    )
    .await;
}

/// Handles one delivery of `evt.dbt.run.completed.<account>`.
pub async fn handle_dbt_run(
    store: &SyncStore,
    models: &dyn RetlModelLookup,
    delivery: Delivery,
) -> Outcome {
    let event = match RunCompletedEvent::decode(delivery.payload.as_ref()) {
        Ok(event) => event,
        Err(error) => return Outcome::Reject(format!("undecodable run completed event: {error}")),
    };
    let run = match trigger::dbt_run_of(&event) {
        Ok(Some(run)) => run,
        Ok(None) => {
            tracing::debug!(
                message_id = %delivery.message_id,
                account_id = event.account_id,
                job_id = event.job_id,
                run_id = event.run_id,
                run_status_code = event.run_status_code,
                "dbt run did not succeed; no sync triggered"
            );
            return Outcome::Done;
        }
        Err(reason) => return Outcome::Reject(reason),
    };
    match decide_and_record(store, models, &run, &delivery.message_id).await {
        Ok(DbtRunHandled::Duplicate) => {
            tracing::debug!(message_id = %delivery.message_id, "dbt run already handled");
            Outcome::Done
        }
        Ok(DbtRunHandled::Recorded(runs)) => {
            let skipped = runs
                .iter()
                .filter(|r| r.status == RunStatus::Skipped)
                .count();
            tracing::info!(
                message_id = %delivery.message_id,
                workspace_id = %run.workspace_id,
                cause_id = %run.cause_id(),
                queued = runs.len() - skipped,
                skipped,
                "dbt run triggered syncs"
            );
            Outcome::Done
        }
        Err(error) => {
            let delay = retry_delay(delivery.delivered);
            tracing::warn!(
                message_id = %delivery.message_id,
                %error,
                retry_in_ms = delay.as_millis() as u64,
                "cannot handle dbt run yet"
            );
            Outcome::Retry {
                delay,
                error: error.to_string(),
            }
        }
    }
}

/// The syncs `run` concerns, judged (models looked up in the catalog where needed),
/// then recorded; an unreachable catalog or database is an error to retry.
async fn decide_and_record(
    store: &SyncStore,
    models: &dyn RetlModelLookup,
    run: &DbtRun,
    message_id: &str,
) -> Result<DbtRunHandled, RetlError> {
    if store.already_handled(DBT_RUNS_CONSUMER, message_id).await? {
        return Ok(DbtRunHandled::Duplicate);
    }
    let bound_kind = match &run.origin {
        Origin::Cloud {
            account_id, job_id, ..
        } => Schedule::AfterDbtCloudJob {
            account_id: *account_id,
            job_id: *job_id,
        },
        Origin::Core { .. } => Schedule::AfterDbtCoreRun {
            project_name: String::new(),
        },
    };
    let syncs: Vec<SyncRecord> = store
        .dbt_bound_syncs(&run.workspace_id, &bound_kind)
        .await?
        .into_iter()
        .filter(|sync| run.binds(&sync.schedule))
        .collect();
    let mut decisions = Vec::new();
    for sync in &syncs {
        let facts = if run.needs_model(sync) {
            Some(model_facts(models, sync).await?)
        } else {
            None
        };
        match trigger::judge(run, sync, facts.as_ref()) {
            Verdict::Run => decisions.push((sync.id.clone(), None)),
            Verdict::Skip(reason) => decisions.push((sync.id.clone(), Some(reason))),
            Verdict::NotConcerned => {}
            Verdict::Later => tracing::debug!(
                sync_id = %sync.id,
                cause_id = %run.cause_id(),
                "sync waits for the dbt run's node results"
            ),
        }
    }
    store
        .record_dbt_run(
            DBT_RUNS_CONSUMER,
            message_id,
            &run.workspace_id,
            run.trigger(),
            &run.cause_id(),
            &decisions,
        )
        .await
}

/// What the catalog says about the sync's model: unreachable is an error (retried), a
/// model that is gone or broken is a reason to skip.
async fn model_facts(
    models: &dyn RetlModelLookup,
    sync: &SyncRecord,
) -> Result<ModelFacts, RetlError> {
    match models
        .resolve(&sync.workspace_id, &sync.retl_model_id)
        .await
    {
        Ok(shape) => Ok(match shape.broken_reason {
            Some(reason) => ModelFacts::Unusable(reason),
            None if shape.unique_id.is_empty() => ModelFacts::Unusable(format!(
                "the catalog names no dbt model for reverse etl model {}",
                sync.retl_model_id
            )),
            None => ModelFacts::Known {
                unique_id: shape.unique_id,
                test_unique_ids: shape.test_unique_ids,
            },
        }),
        Err(RetlError::InvalidArgument(reason)) | Err(RetlError::NotFound(reason)) => {
            Ok(ModelFacts::Unusable(reason))
        }
        Err(gone @ RetlError::ModelNotFound(_)) => Ok(ModelFacts::Unusable(gone.to_string())),
        Err(other) => Err(other),
    }
}

/// Redelivery delay after a transient failure: 1 s, doubling, at most a minute.
pub fn retry_delay(delivered: i64) -> Duration {
    let exponent = u32::try_from(delivered.clamp(1, 7) - 1).unwrap_or(0);
    Duration::from_secs((1_u64 << exponent).min(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_caps() {
        assert_eq!(retry_delay(0), Duration::from_secs(1));
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(6), Duration::from_secs(32));
        assert_eq!(retry_delay(7), Duration::from_secs(60));
        assert_eq!(retry_delay(100), Duration::from_secs(60));
    }
}
