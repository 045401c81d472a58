//! What the catalog hears from the bus: git-sync connection changes keep the project
//! projection current, snapshots bring models (and move Reverse ETL models along),
//! run outcomes set the project status, the scheduler's sync changes feed the in-use guard. Each handler is idempotent through the inbox, so redelivery
//! and republishing are harmless.

use crate::store::CatalogStore;
use backflow_platform::bus::{streams, ConsumerSpec, Delivery, Outcome};
use backflow_proto::gitsync::v1 as gitsync;
use backflow_proto::retl::v1 as retl;
use prost::Message;
use std::time::Duration;

/// Durable consumer name shared by every catalog replica.
pub const CONNECTION_EVENTS: &str = "model-catalog-connections";

pub fn connection_events_spec() -> ConsumerSpec {
    ConsumerSpec::new(
        streams::EVT_GITSYNC,
        CONNECTION_EVENTS,
        backflow_proto::subjects::CONNECTION_CHANGED.all(),
    )
}

/// Applies one `evt.gitsync.connection.*` event.
pub async fn handle_connection_event(store: &CatalogStore, delivery: Delivery) -> Outcome {
    let event = match gitsync::ConnectionChangedEvent::decode(delivery.payload.as_ref()) {
        Ok(event) => event,
        Err(error) => return Outcome::Reject(format!("undecodable connection event: {error}")),
    };
    match store
        .apply_connection_event(CONNECTION_EVENTS, &delivery.message_id, &event)
        .await
    {
        Ok(applied) => {
            tracing::info!(subject = %delivery.subject, event_id = %delivery.message_id, ?applied, "connection event handled");
            Outcome::Done
        }
        Err(crate::error::CatalogError::InvalidArgument(reason)) => Outcome::Reject(reason),
        Err(error) => {
            let delay = Duration::from_millis(500 * delivery.delivered.clamp(1, 20) as u64);
            tracing::warn!(event_id = %delivery.message_id, %error, "connection event will be retried");
            Outcome::Retry {
                delay,
                error: error.to_string(),
            }
        }
    }
}

/// Durable consumer of snapshot announcements.
pub const SNAPSHOT_EVENTS: &str = "model-catalog-snapshots";

pub fn snapshot_events_spec() -> ConsumerSpec {
    let mut spec = ConsumerSpec::new(
        streams::EVT_GITSYNC,
        SNAPSHOT_EVENTS,
        backflow_proto::subjects::SNAPSHOT_READY.all(),
    );
    spec.ack_wait = Duration::from_secs(60);
    spec
}

/// Fetches an announced snapshot from git-sync (by reference, streamed) and records
/// its models, once per event.
pub async fn handle_snapshot_event(
    store: &CatalogStore,
    git_sync: &crate::snapshot_fetcher::SnapshotFetcher,
    delivery: Delivery,
) -> Outcome {
    let event = match gitsync::SnapshotReadyEvent::decode(delivery.payload.as_ref()) {
        Ok(event) => event,
        Err(error) => return Outcome::Reject(format!("undecodable snapshot event: {error}")),
    };
    let retry = |error: &dyn std::fmt::Display| {
        tracing::warn!(event_id = %delivery.message_id, connection_id = %event.connection_id, %error, "snapshot will be retried");
        Outcome::Retry {
            delay: Duration::from_millis(500 * delivery.delivered.clamp(1, 20) as u64),
            error: error.to_string(),
        }
    };
    match store
        .already_handled(SNAPSHOT_EVENTS, &delivery.message_id)
        .await
    {
        Ok(true) => return Outcome::Done,
        Ok(false) => {}
        Err(error) => return retry(&error),
    }
    let models = match git_sync
        .fetch(&event.workspace_id, &event.snapshot_ref)
        .await
    {
        Ok(models) => models,
        Err(error) => return retry(&error),
    };
    let outcome =
        crate::store::RunOutcome::succeeded(&event.run_id, &event.commit_sha, &event.node_errors);
    let recorded = store
        .record_run_snapshot(
            Some((SNAPSHOT_EVENTS, &delivery.message_id)),
            &event.workspace_id,
            &event.connection_id,
            &event.commit_sha,
            &models,
            Some(&outcome),
        )
        .await;
    match recorded {
        Ok(_) => {
            tracing::info!(connection_id = %event.connection_id, commit = %event.commit_sha, model_count = models.len(), "catalog snapshot recorded");
            Outcome::Done
        }
        Err(error) => retry(&error),
    }
}

/// Durable consumer of failed-run announcements.
pub const SYNC_FAILURES: &str = "model-catalog-sync-failures";

pub fn sync_failures_spec() -> ConsumerSpec {
    ConsumerSpec::new(
        streams::EVT_GITSYNC,
        SYNC_FAILURES,
        backflow_proto::subjects::SYNC_FAILED.all(),
    )
}

/// Applies one `evt.gitsync.sync.failed.*` event: the project shows it is failing.
pub async fn handle_sync_failed(store: &CatalogStore, delivery: Delivery) -> Outcome {
    let event = match gitsync::SyncFailedEvent::decode(delivery.payload.as_ref()) {
        Ok(event) => event,
        Err(error) => return Outcome::Reject(format!("undecodable sync failure: {error}")),
    };
    match store
        .apply_sync_failed(SYNC_FAILURES, &delivery.message_id, &event)
        .await
    {
        Ok(applied) => {
            tracing::info!(connection_id = %event.connection_id, run_id = %event.run_id, ?applied, "sync failure recorded");
            Outcome::Done
        }
        Err(error) => {
            // NotFound: the connection event is still on its way.
            let delay = Duration::from_millis(500 * delivery.delivered.clamp(1, 20) as u64);
            tracing::warn!(event_id = %delivery.message_id, %error, "sync failure will be retried");
            Outcome::Retry {
                delay,
                error: error.to_string(),
            }
        }
    }
}

/// Durable consumer of the scheduler's sync changes (the in-use guard's projection).
pub const SYNC_CHANGES: &str = "model-catalog-sync-changes";

pub fn sync_changes_spec() -> ConsumerSpec {
    ConsumerSpec::new(
        streams::EVT_RETL,
        SYNC_CHANGES,
        backflow_proto::subjects::SYNC_CHANGED.all(),
    )
}

/// Applies one `evt.retl.sync.changed.*` event: which Reverse ETL model a sync uses,
/// and whether it is enabled (older versions dropped).
pub async fn handle_sync_changed(store: &CatalogStore, delivery: Delivery) -> Outcome {
    let event = match retl::SyncChangedEvent::decode(delivery.payload.as_ref()) {
        Ok(event) => event,
        Err(error) => return Outcome::Reject(format!("undecodable sync change: {error}")),
    };
    match store
        .apply_sync_changed(SYNC_CHANGES, &delivery.message_id, &event)
        .await
    {
        Ok(applied) => {
            tracing::info!(sync_id = %event.sync_id, retl_model_id = %event.retl_model_id, enabled = event.enabled, version = event.version, ?applied, "sync change applied");
            Outcome::Done
        }
        Err(crate::error::CatalogError::InvalidArgument(reason)) => Outcome::Reject(reason),
        Err(error) => {
            let delay = Duration::from_millis(500 * delivery.delivered.clamp(1, 20) as u64);
            tracing::warn!(event_id = %delivery.message_id, %error, "sync change will be retried");
            Outcome::Retry {
                delay,
                error: error.to_string(),
            }
        }
    }
}
