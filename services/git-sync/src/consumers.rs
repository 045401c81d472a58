//! What git-sync takes from the bus: its own sync commands (`cmd.gitsync.sync.<id>`),
//! one durable consumer shared by every replica, so each queued run is done once.

use crate::sync::{SyncOutcome, SyncRunner};
use backflow_platform::bus::{streams, ConsumerSpec, Delivery, Outcome};
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
