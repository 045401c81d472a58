//! Mirror deletes: the keys missing from the extract that Backflow delivered, sent with
//! the key values kept when they were added (a key whose values were not kept fails, it
//! is never guessed).

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
                sender.outcomes.failed.push(*key_hash);
                progress.counts.failed += 1;
                errors.push(RecordError {
                    change: RecordChange::Deleted,
                    key_json: format!("{{\"key_hash\":\"{key_hash:016x}\"}}"),
                    rejected: false,
                    message: "the key values of this record were not kept, so it cannot be deleted"
                        .into(),
                    destination_status: 0,
                    attempts: 0,
                    given_up: false,
                });
                continue;
            };
            let meta = InFlight {
                key_hash: *key_hash,
                row_word: 0,
                change: Change::Deleted,
            };
            if !supported {
                sender.outcomes.failed.push(*key_hash);
                progress.counts.failed += 1;
                errors.push(RecordError {
                    change: RecordChange::Deleted,
                    key_json: key_json.clone(),
                    rejected: false,
                    message: "the destination does not support deletes".into(),
                    destination_status: 0,
                    attempts: 0,
                    given_up: false,
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
            progress.tick().await?;
        }
    }
    Ok(())
}
