//! What git-sync takes from the bus: its own sync commands (`cmd.gitsync.sync.<id>`),
//! one durable consumer shared by every replica, so each queued run is done once; and
//! the catalog's warehouse-source changes (`evt.catalog.source.changed.<id>`), which
//! keep the projection of sources that connections name and parse with.

use crate::sources::KnownSource;
use crate::store::GitSyncStore;
use crate::sync::{SyncOutcome, SyncRunner};
use backflow_platform::bus::{streams, ConsumerSpec, Delivery, Outcome};
use backflow_proto::catalog::v1 as catalog;
use backflow_proto::gitsync::v1 as pb;
use prost::Message;
use std::time::Duration;

pub const SYNC_COMMANDS: &str = "git-sync-sync-commands";

pub fn sync_commands_spec() -> ConsumerSpec {
    let mut spec = ConsumerSpec::new(
        streams::CMD_GITSYNC,
        SYNC_COMMANDS,
        backflow_proto::subjects::SYNC_CONNECTION.all(),
    );
    spec.ack_wait = Duration::from_secs(60);
    spec
}

pub async fn handle_sync_command(runner: &SyncRunner, delivery: Delivery) -> Outcome {
    let command = match pb::SyncCommand::decode(delivery.payload.as_ref()) {
        Ok(command) => command,
        Err(error) => return Outcome::Reject(format!("undecodable sync command: {error}")),
    };
    match runner.run(&command).await {
        Ok(SyncOutcome::AlreadyHandled) => {
            tracing::debug!(run_id = %command.run_id, "sync command already handled");
            Outcome::Done
        }
        Ok(_) => Outcome::Done,
        Err(error) => {
            tracing::warn!(run_id = %command.run_id, %error, "sync command will be retried");
            Outcome::Retry {
                delay: Duration::from_secs(2 * delivery.delivered.clamp(1, 30) as u64),
                error: error.to_string(),
            }
        }
    }
}

/// Durable consumer of the catalog's source changes, shared by every replica.
pub const SOURCE_EVENTS: &str = "git-sync-warehouse-sources";

pub fn source_events_spec() -> ConsumerSpec {
    ConsumerSpec::new(
        streams::EVT_CATALOG,
        SOURCE_EVENTS,
        backflow_proto::subjects::SOURCE_CHANGED.all(),
    )
}

/// Applies one `evt.catalog.source.changed.*` event to the projection (once, through
/// the inbox); re-syncs the connections whose adapter or database it changes.
pub async fn handle_source_event(store: &GitSyncStore, delivery: Delivery) -> Outcome {
    let event = match catalog::WarehouseSourceChangedEvent::decode(delivery.payload.as_ref()) {
        Ok(event) => event,
        Err(error) => return Outcome::Reject(format!("undecodable source event: {error}")),
    };
    let source = match KnownSource::from_event(&event) {
        Ok(source) => source,
        Err(error) => return Outcome::Reject(error.to_string()),
    };
    match store
        .apply_source_event(SOURCE_EVENTS, &delivery.message_id, &source)
        .await
    {
        Ok(applied) => {
            tracing::info!(workspace_id = %source.workspace_id, source_id = %source.source_id, version = source.version, deleted = source.deleted, ?applied, "source event handled");
            Outcome::Done
        }
        Err(error) => {
            tracing::warn!(event_id = %delivery.message_id, %error, "source event will be retried");
            Outcome::Retry {
                delay: Duration::from_millis(500 * delivery.delivered.clamp(1, 20) as u64),
                error: error.to_string(),
            }
        }
    }
}
