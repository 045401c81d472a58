//! Mirror deletes: the keys missing from the extract that Backflow delivered, sent with
//! the key values kept when they were added (a key whose values were not kept fails, it
//! is never guessed). A delete that cannot be sent fails like a refused one: counted, its
//! attempts told (the commit counts them), given up on its last one.

use super::sender::{InFlight, Sender};
use super::{Progress, RunContext};
use crate::destinations::{JsonObject, Operation, OutboundRecord};
use crate::diff::Change;
use crate::executor::checkpoint::Checkpoint;
use crate::executor::error::ExecError;
use crate::run::RunRecord;
use crate::store::runs::RecordError;
use backflow_proto::retl::v1::RecordChange;
use std::collections::HashMap;

#[allow(clippy::too_many_arguments)]
pub(super) async fn deliver(
    ctx: &RunContext,
    run: &RunRecord,
    deletes: &[u64],
    known_keys: Option<&HashMap<u64, String>>,
    sender: &mut Sender<'_>,
    progress: &mut Progress<'_>,
    checkpoint: &mut Checkpoint,
    errors: &mut Vec<RecordError>,
) -> Result<(), ExecError> {
    let supported = sender.deliverer.destination().capabilities().deletes;
    for chunk in deletes.chunks(500) {
        let known: HashMap<u64, String> = match known_keys {
            Some(keys) => chunk
                .iter()
                .filter_map(|key| keys.get(key).map(|json| (*key, json.clone())))
                .collect(),
            None => ctx
                .store
                .load_keys(&run.sync_id, chunk)
                .await?
                .into_iter()
                .collect(),
        };
        for key_hash in chunk {
            let Some(key_json) = known.get(key_hash) else {
                let (attempts, given_up) = failed_attempt(sender, progress, *key_hash);
                errors.push(RecordError {
                    change: RecordChange::Deleted,
                    key_json: format!("{{\"key_hash\":\"{key_hash:016x}\"}}"),
                    rejected: false,
                    message: "the key values of this record were not kept, so it cannot be deleted"
                        .into(),
                    destination_status: 0,
                    attempts,
                    given_up,
                });
                continue;
            };
            let meta = InFlight {
                key_hash: *key_hash,
                row_word: 0,
                change: Change::Deleted,
            };
            if !supported {
                let (attempts, given_up) = failed_attempt(sender, progress, *key_hash);
                errors.push(RecordError {
                    change: RecordChange::Deleted,
                    key_json: key_json.clone(),
                    rejected: false,
                    message: "the destination does not support deletes".into(),
                    destination_status: 0,
                    attempts,
                    given_up,
                });
                continue;
            }
            let record = OutboundRecord {
                key_hash: *key_hash,
                key: JsonObject::from_text(key_json.as_str()).unwrap_or_default(),
                fields: JsonObject::default(),
            };
            sender
                .push(
                    Operation::Delete,
                    record,
                    meta,
                    &mut progress.counts,
                    checkpoint,
                    &progress.cancel,
                )
                .await?;
            progress.tick_record().await?;
        }
    }
    Ok(())
}

/// Notes a delete that failed without being sent, as the sender notes a refused record:
/// its attempt (this run's included) and whether it was the last one allowed.
fn failed_attempt(
    sender: &mut Sender<'_>,
    progress: &mut Progress<'_>,
    key_hash: u64,
) -> (i32, bool) {
    sender.outcomes.failed.push(key_hash);
    progress.counts.failed += 1;
    let tries = sender.attempts.get(&key_hash).copied().unwrap_or(0) + 1;
    let given_up = tries >= sender.max_attempts;
    if given_up {
        progress.counts.given_up += 1;
    }
    (tries, given_up)
}
