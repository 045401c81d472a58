//! Mirror deletes across a diff strategy change. A state belongs to one strategy (their
//! hashes differ), so the first run under a new strategy starts from an empty state and
//! sends every row again; on its own it would never delete the records whose rows left
//! the model between the last run under the old strategy and this one. The old
//! strategy's state is still whole at the sync's epoch (the first commit under the new
//! strategy is what moves the sync on), so the run reads from it which records the
//! destination was delivered, with their key values (`CarriedKeys::load`), crosses off
//! every key the extract still holds (`CarriedKeys::seen`), and deletes the rest.
//!
//! A carried delete the destination does not take (refused, or failing past the retry
//! schedule) cannot wait in the old state, which that first commit voids, nor in the new
//! one, which keys records by another hash and holds only what the extract held. It is
//! owed instead (`retl_carried_deletes`, written with the epoch move, see
//! `SyncStore::settle_carried_deletes`): the next mirror runs carry it too
//! (`CarriedKeys::owed`), cross it off if its key is back in the model and try it again
//! otherwise, its attempts counted by its key hash like every failed record's, until it
//! goes through or is given up. Crossing off still sees every key that matters: an owed
//! key is in no later state (it was not extracted since), so an extract holding it again
//! holds it as an addition, which every mirror run spills. For the same reason a carried
//! key the extract holds whose record does not make it into the new state (its upsert
//! failed, the mapping refused it, its key is duplicated) stays owed: the destination holds
//! the old version, and only a delete removes it if the row leaves later.
//!
//! After a reset nothing is carried: the reset removed the Backflow-side state and its
//! key values and moved the epoch past the warehouse-side one. Keys are compared as
//! JSON objects (member order aside), as both strategies write them from the same cells.

use crate::executor::error::ExecError;
use crate::executor::pipeline::RunContext;
use crate::executor::resolve::ResolvedModel;
use crate::executor::settings::SyncSettings;
use crate::run::RunRecord;
use crate::warehouse_diff::sql;
use crate::warehouse_diff::Strategy;
use backflow_warehouse::write::{table_name, Param};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Reading the old warehouse-side state's delivered keys.
const READ_TIMEOUT: Duration = Duration::from_secs(600);

/// The records the old strategy's state says were delivered, not yet seen in the extract.
#[derive(Debug, Default)]
pub(crate) struct CarriedKeys {
    /// Canonical key text → (the old state's key hash, the key values as kept).
    delivered: HashMap<String, (u64, String)>,
    /// Those the extract held, by the key hash of the record it holds them as.
    crossed: HashMap<u64, (u64, String)>,
}

/// What is left of a carried set once the extract was read.
#[derive(Debug, Default)]
pub(crate) struct Orphans {
    /// The records to delete: their carried key hashes, ascending.
    pub hashes: Vec<u64>,
    /// Their key values.
    pub keys: HashMap<u64, String>,
    /// The carried records the extract still holds, by the key hash of the record it holds
    /// them as. One that does not enter the new state (failed, refused, a duplicated key) is
    /// owed again: the destination still holds the old strategy's version of it.
    pub crossed: HashMap<u64, (u64, String)>,
}

/// The key as compared: members sorted, no whitespace; the text itself when not JSON.
fn canonical(key_json: &str) -> String {
    match serde_json::from_str::<BTreeMap<String, serde_json::Value>>(key_json) {
        Ok(members) => serde_json::to_string(&members).unwrap_or_else(|_| key_json.to_string()),
        Err(_) => key_json.to_string(),
    }
}

impl CarriedKeys {
    /// From (old key hash, key values) pairs.
    pub(crate) fn of(keys: impl IntoIterator<Item = (u64, String)>) -> Self {
        Self {
            delivered: keys
                .into_iter()
                .map(|(hash, json)| (canonical(&json), (hash, json)))
                .collect(),
            crossed: HashMap::new(),
        }
    }

    /// What the other strategy's state (if current at the sync's epoch) says was delivered;
    /// `None` when there is nothing to carry. For mirror runs: warehouse-side once the run's
    /// own state proved void; Backflow-side before the extract (cheap: two small queries),
    /// as a warehouse-side state at the sync's epoch implies the Backflow-side one is void
    /// (the first commit under a strategy moves the sync past the other's epoch) and the
    /// extract must then spill every key instead of delivering as it reads.
    pub(crate) async fn load(
        ctx: &RunContext,
        run: &RunRecord,
        settings: &SyncSettings,
        strategy: &Strategy,
        model: &ResolvedModel,
    ) -> Result<Option<Self>, ExecError> {
        let keys = match strategy {
            // the old state is Backflow-side: its delivered entries, with the key values
            // the service kept when they were added
            Strategy::Warehouse(_) => {
                let loaded = ctx
                    .states
                    .load_at(&run.sync_id, settings.state_epoch)
                    .await?;
                let delivered: Vec<u64> = loaded
                    .state
                    .entries()
                    .iter()
                    .filter(|entry| entry.is_delivered())
                    .map(|entry| entry.key)
                    .collect();
                ctx.store.load_keys(&run.sync_id, &delivered).await?
            }
            // the old state is in the warehouse, if the source still lets Backflow read it
            Strategy::Backflow => {
                let writer = match &model.writable {
                    Ok(writer) => writer.clone(),
                    Err(why) => {
                        tracing::debug!(run_id = %run.id, sync_id = %run.sync_id, %why, "no warehouse-side state to carry deleted keys from");
                        return Ok(None);
                    }
                };
                // no bookkeeping table, or no row: the sync never ran warehouse-side
                let exists = writer
                    .query_text(
                        sql::TABLE_EXISTS,
                        &[Param::Text(sql::syncs_table(writer.schema()))],
                        1,
                        READ_TIMEOUT,
                    )
                    .await?;
                if exists
                    .first()
                    .and_then(|row| row.first())
                    .is_none_or(Option::is_none)
                {
                    return Ok(None);
                }
                let epoch = writer
                    .query_text(
                        &sql::state_epoch(writer.schema()),
                        &[Param::Text(run.sync_id.clone())],
                        1,
                        READ_TIMEOUT,
                    )
                    .await?
                    .first()
                    .and_then(|row| row.first().cloned().flatten())
                    .and_then(|text| text.parse::<i64>().ok());
                if epoch != Some(settings.state_epoch) {
                    return Ok(None);
                }
                let table = table_name(sql::STATE_PREFIX, &run.sync_id);
                let rows = writer
                    .query_text(
                        &sql::delivered_keys(writer.schema(), &table),
                        &[],
                        usize::MAX,
                        READ_TIMEOUT,
                    )
                    .await?;
                rows.into_iter()
                    .filter_map(|row| {
                        let mut cells = row.into_iter();
                        let hash = cells.next().flatten()?.parse::<i64>().ok()? as u64;
                        Some((hash, cells.next().flatten()?))
                    })
                    .collect()
            }
        };
        if keys.is_empty() {
            return Ok(None);
        }
        tracing::info!(run_id = %run.id, sync_id = %run.sync_id, delivered = keys.len(), "carrying the delivered keys of the previous diff strategy");
        Ok(Some(Self::of(keys)))
    }

    /// The deletes owed since a refused carried delete (see the module docs), when any.
    pub(crate) async fn owed(
        ctx: &RunContext,
        run: &RunRecord,
        settings: &SyncSettings,
    ) -> Result<Option<Self>, ExecError> {
        let keys = ctx
            .store
            .carried_deletes(&run.sync_id, settings.state_epoch)
            .await?;
        if keys.is_empty() {
            return Ok(None);
        }
        tracing::info!(run_id = %run.id, sync_id = %run.sync_id, owed = keys.len(), "carrying the deletes owed since a diff strategy change");
        Ok(Some(Self::of(keys)))
    }

    /// Both sets; for a key in both, `owed`'s key hash (the one its attempts count under).
    pub(crate) fn join(carried: Option<Self>, owed: Option<Self>) -> Option<Self> {
        match (carried, owed) {
            (Some(mut carried), Some(owed)) => {
                carried.delivered.extend(owed.delivered);
                Some(carried)
            }
            (carried, owed) => carried.or(owed),
        }
    }

    /// The key hashes of the set, as loaded (before anything was crossed off).
    pub(crate) fn key_hashes(&self) -> Vec<u64> {
        self.delivered.values().map(|(hash, _)| *hash).collect()
    }

    /// A key the extract holds, as the record of key hash `key_hash`: it is not deleted.
    pub(crate) fn seen(&mut self, key_json: &str, key_hash: u64) {
        if !self.delivered.is_empty() {
            if let Some(carried) = self.delivered.remove(&canonical(key_json)) {
                self.crossed.insert(key_hash, carried);
            }
        }
    }

    /// Delivered records not seen yet.
    pub(crate) fn unseen(&self) -> usize {
        self.delivered.len()
    }

    /// The delivered records the extract no longer holds, and those it held.
    pub(crate) fn into_orphans(self) -> Orphans {
        let keys: HashMap<u64, String> = self.delivered.into_values().collect();
        let mut hashes: Vec<u64> = keys.keys().copied().collect();
        hashes.sort_unstable();
        Orphans {
            hashes,
            keys,
            crossed: self.crossed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_left_unseen_are_the_ones_to_delete() {
        let mut carried = CarriedKeys::of([
            (1, r#"{"id":1}"#.to_string()),
            (2, r#"{"id":2}"#.to_string()),
            (3, r#"{"a":"x","b":2}"#.to_string()),
        ]);
        carried.seen(r#"{"id":1}"#, 11);
        // member order and spacing do not matter
        carried.seen(r#"{"b": 2, "a": "x"}"#, 13);
        carried.seen(r#"{"id":4}"#, 14);
        let orphans = carried.into_orphans();
        assert_eq!(orphans.hashes, vec![2]);
        assert_eq!(orphans.keys[&2], r#"{"id":2}"#);
        // the held ones, by the key hash the extract holds them as
        let mut crossed: Vec<(u64, u64)> = orphans
            .crossed
            .iter()
            .map(|(new, (old, _))| (*new, *old))
            .collect();
        crossed.sort_unstable();
        assert_eq!(crossed, vec![(11, 1), (13, 3)]);
        assert_eq!(orphans.crossed[&13].1, r#"{"a":"x","b":2}"#);
    }

    #[test]
    fn an_owed_delete_joins_the_carried_keys_under_its_own_hash() {
        let carried = CarriedKeys::of([
            (1, r#"{"id":1}"#.to_string()),
            (2, r#"{"id":2}"#.to_string()),
        ]);
        let owed = CarriedKeys::of([(20, r#"{ "id": 2 }"#.to_string())]);
        let mut joined = CarriedKeys::join(Some(carried), Some(owed)).expect("joined");
        let mut hashes = joined.key_hashes();
        hashes.sort_unstable();
        assert_eq!(hashes, vec![1, 20]);
        joined.seen(r#"{"id":1}"#, 11);
        let orphans = joined.into_orphans();
        assert_eq!(orphans.hashes, vec![20]);
        assert_eq!(orphans.keys[&20], r#"{ "id": 2 }"#);
        assert!(CarriedKeys::join(None, None).is_none());
        let only = CarriedKeys::join(None, Some(CarriedKeys::of([(3, "{}".to_string())])));
        assert_eq!(only.map(|keys| keys.unseen()), Some(1));
    }

    #[test]
    fn values_of_another_type_are_another_key() {
        let mut carried = CarriedKeys::of([(7, r#"{"id":7}"#.to_string())]);
        carried.seen(r#"{"id":"7"}"#, 8);
        assert_eq!(carried.into_orphans().hashes, vec![7]);
        assert_eq!(canonical("not json"), "not json");
    }
}
