//! The listener's JetStream consumer of the scheduler's `evt.retl.sync.changed.<sync>`:
//! which dbt Cloud job each sync waits on. The projection is written with the inbox
//! claim in one transaction (`store/sync_jobs.rs`); then the jobs concerned are brought
//! in line with dbt Cloud (`watch.rs`). That second step runs on redeliveries too (it is
//! idempotent), so a crash after the projection was written but before dbt Cloud was
//! called is completed when NATS delivers the event again. A dbt Cloud or credentials
//! failure does not hold the event: it is stored as the job's problem and the periodic
//! sweep retries it.

use crate::error::DbtCloudError;
use crate::store::{JobKey, SyncJobApplied};
use crate::watch::Watcher;
use backflow_platform::bus::{streams, Bus, ConsumerSpec, Delivery, Outcome};
use backflow_platform::shutdown::Shutdown;
use backflow_proto::retl::v1::SyncChangedEvent;
use prost::Message;
use std::time::Duration;

/// Durable name shared by every replica.
pub const SYNC_CHANGES_CONSUMER: &str = "dbt-cloud-listener-sync-changes";

pub fn sync_changes_spec() -> ConsumerSpec {
    ConsumerSpec::new(
        streams::EVT_RETL,
        SYNC_CHANGES_CONSUMER,
        backflow_proto::subjects::SYNC_CHANGED.all(),
    )
}

/// Consumes sync changes until shutdown.
pub async fn run_sync_changes(bus: Bus, watcher: Watcher, shutdown: Shutdown) {
    bus.run_consumer(
        sync_changes_spec(),
        |delivery| {
            let watcher = watcher.clone();
            async move { handle_sync_changed(&watcher, delivery).await }
        },
        shutdown,
    )
    .await;
}

/// Handles one delivery of `evt.retl.sync.changed.<sync>`.
pub async fn handle_sync_changed(watcher: &Watcher, delivery: Delivery) -> Outcome {
    let event = match SyncChangedEvent::decode(delivery.payload.as_ref()) {
        Ok(event) => event,
        Err(error) => return Outcome::Reject(format!("undecodable sync change: {error}")),
    };
    let applied = watcher
        .store()
        .apply_sync_changed(
            SYNC_CHANGES_CONSUMER,
            &delivery.message_id,
            &event,
            backflow_platform::now_unix_ms(),
        )
        .await;
    let jobs = match applied {
        Ok(SyncJobApplied::Applied { jobs }) => jobs,
        Ok(SyncJobApplied::Duplicate | SyncJobApplied::Stale) => event_job(&event),
        Err(DbtCloudError::InvalidArgument(reason)) => return Outcome::Reject(reason),
        Err(error) => {
            let delay = Duration::from_millis(500 * delivery.delivered.clamp(1, 20) as u64);
            tracing::warn!(message_id = %delivery.message_id, %error, "sync change will be retried");
            return Outcome::Retry {
                delay,
                error: error.to_string(),
            };
        }
    };
    tracing::info!(
        sync_id = %event.sync_id,
        enabled = event.enabled,
        deleted = event.deleted,
        version = event.version,
        jobs = jobs.len(),
        "sync change applied"
    );
    for job in jobs {
        // Failures are logged and stored as the job's problem by `follow`.
        let _ = watcher.follow(&job).await;
    }
    Outcome::Done
}

fn event_job(event: &SyncChangedEvent) -> Vec<JobKey> {
    event
        .after_dbt_cloud_job
        .as_ref()
        .filter(|job| job.account_id > 0 && job.job_id > 0)
        .map(|job| JobKey {
            workspace_id: event.workspace_id.clone(),
            account_id: job.account_id,
            job_id: job.job_id,
        })
        .into_iter()
        .collect()
}
