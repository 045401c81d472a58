//! The scheduler's JetStream consumers. `retl-scheduler-dbt-runs` turns each
//! successful dbt Cloud run into one run per bound sync; the inbox claim and the runs
//! are written in one transaction, so a redelivered event changes nothing.

use crate::run::{decide_dbt_run, DbtRunDecision};
use crate::store::{DbtRunHandled, SyncStore};
use backflow_platform::bus::{streams, Bus, ConsumerSpec, Delivery, Outcome};
use backflow_platform::shutdown::Shutdown;
use backflow_proto::dbtcloud::v1::RunCompletedEvent;
use prost::Message;
use std::time::Duration;

/// Durable name shared by every replica.
pub const DBT_RUNS_CONSUMER: &str = "retl-scheduler-dbt-runs";

/// Completed dbt Cloud runs, from every account.
pub fn dbt_runs_spec() -> ConsumerSpec {
    ConsumerSpec::new(
        streams::EVT_DBT,
        DBT_RUNS_CONSUMER,
        backflow_proto::subjects::DBT_RUN_COMPLETED.all(),
    )
}

/// Consumes completed dbt Cloud runs until shutdown.
pub async fn run_dbt_runs(bus: Bus, store: SyncStore, shutdown: Shutdown) {
    bus.run_consumer(
        dbt_runs_spec(),
        |delivery| {
            let store = store.clone();
            async move { handle_dbt_run(&store, delivery).await }
        },
        shutdown,
    )
    .await;
}

/// Handles one delivery of `evt.dbt.run.completed.<account>`.
pub async fn handle_dbt_run(store: &SyncStore, delivery: Delivery) -> Outcome {
    let event = match RunCompletedEvent::decode(delivery.payload.as_ref()) {
        Ok(event) => event,
        Err(error) => return Outcome::Reject(format!("undecodable run completed event: {error}")),
    };
    let cause_id = match decide_dbt_run(&event) {
        Ok(DbtRunDecision::Trigger { cause_id }) => cause_id,
        Ok(DbtRunDecision::Ignore) => {
            tracing::debug!(
                message_id = %delivery.message_id,
                account_id = event.account_id,
                job_id = event.job_id,
                run_id = event.run_id,
                run_status_code = event.run_status_code,
                "dbt cloud run did not succeed; no sync triggered"
            );
            return Outcome::Done;
        }
        Err(reason) => return Outcome::Reject(reason),
    };
    let handled = store
        .queue_dbt_runs(
            DBT_RUNS_CONSUMER,
            &delivery.message_id,
            &event.workspace_id,
            event.account_id,
            event.job_id,
            &cause_id,
        )
        .await;
    match handled {
        Ok(DbtRunHandled::Duplicate) => {
            tracing::debug!(message_id = %delivery.message_id, "dbt cloud run already handled");
            Outcome::Done
        }
        Ok(DbtRunHandled::Queued(runs)) => {
            tracing::info!(
                message_id = %delivery.message_id,
                workspace_id = %event.workspace_id,
                account_id = event.account_id,
                job_id = event.job_id,
                run_id = event.run_id,
                runs = runs.len(),
                "dbt cloud run triggered syncs"
            );
            Outcome::Done
        }
        Err(error) => {
            let delay = retry_delay(delivery.delivered);
            tracing::warn!(
                message_id = %delivery.message_id,
                %error,
                retry_in_ms = delay.as_millis() as u64,
                "cannot handle dbt cloud run yet"
            );
            Outcome::Retry {
                delay,
                error: error.to_string(),
            }
        }
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
