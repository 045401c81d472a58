//! The state a run commits once delivery is over: the previous state updated with what
//! was delivered, minus what failed, so failures are retried next run with fresh values.
//!
//! Per record, with `failed` the key hashes the destination refused:
//! - added: delivered → entry `(key, row hash, DELIVERED)`; failed → absent (added again next
//!   run); a mode that does not deliver additions (update) records it as observed only, so its
//!   later changes are updates;
//! - updated: delivered → new row hash, DELIVERED; failed or not delivered by the mode
//!   (insert) → the old entry is kept, so the destination's old version is still what the
//!   state says and the change is retried;
//! - missing from the extract: mirror deletes delivered entries (dropped; a failed delete keeps
//!   the entry so it is retried); other modes keep delivered entries (the destination still
//!   holds them); entries only observed are dropped;
//! - rejected (NULL or duplicate key): the previous entry, if any, is kept unchanged.
//!
//! The new state is built in the previous state's buffer: compacted in place, grown by the
//! number of additions, and merged from the back, so there is never a second full copy.

use super::engine::DiffOutcome;
use super::rules::{self, Next, Settled};
use super::state::{Entry, State, DELIVERED, ROW_HASH_MASK};

impl DiffOutcome {
    /// The state to store for the next run; `failed` holds key hashes of records the
    /// destination did not accept (any order, any class).
    pub fn commit(self, failed: Vec<u64>) -> State {
        self.commit_giving_up(failed, Vec::new())
    }

    /// [`Self::commit`], where the failed records in `given_up` (they failed too many runs
    /// in a row) are not retried: their new row hash is recorded as it is, so only a
    /// later change sends them again. A given-up addition is recorded as observed, not
    /// delivered, so a mirror sync never deletes it.
    pub fn commit_giving_up(self, mut failed: Vec<u64>, mut given_up: Vec<u64>) -> State {
        failed.sort_unstable();
        given_up.sort_unstable();
        let settled = |key: u64| {
            if !given_up.is_empty() && given_up.binary_search(&key).is_ok() {
                Settled::GivenUp
            } else if !failed.is_empty() && failed.binary_search(&key).is_ok() {
                Settled::Failed
            } else {
                Settled::Delivered
            }
        };
        let diff = self.diff;
        let mode = diff.mode;
        let mut entries = diff.state.into_entries();
        for (&at, &row_hash) in diff.update_at.iter().zip(&diff.update_row) {
            let entry = &mut entries[at as usize];
            match rules::updated(mode, settled(entry.key)) {
                Next::Put { delivered: true } => *entry = Entry::delivered(entry.key, row_hash),
                Next::Put { delivered: false } => *entry = Entry::observed(entry.key, row_hash),
                Next::PutKeepFlag => {
                    entry.row = (row_hash & ROW_HASH_MASK) | (entry.row & DELIVERED);
                }
                Next::Keep | Next::Drop => {}
            }
        }
        let mut at = 0;
        entries.retain(|entry| {
            let seen = diff.seen.get(at);
            at += 1;
            seen || rules::missing(mode, entry.is_delivered(), settled(entry.key)) == Next::Keep
        });
        let mut adds = diff.adds;
        adds.retain_mut(|entry| match rules::added(mode, settled(entry.key)) {
            Next::Put { delivered } => {
                *entry = if delivered {
                    Entry::delivered(entry.key, entry.row)
                } else {
                    Entry::observed(entry.key, entry.row)
                };
                true
            }
            Next::Drop => false,
            Next::Keep | Next::PutKeepFlag => true,
        });
        if entries.is_empty() {
            // A first run (or nothing kept): the additions are the state, no copy.
            entries = adds;
        } else {
            merge_from_back(&mut entries, &adds);
        }
        State::from_sorted(entries)
    }
}

/// Merges sorted `adds` (keys not in `base`) into sorted `base`, in `base`'s buffer.
fn merge_from_back(base: &mut Vec<Entry>, adds: &[Entry]) {
    if adds.is_empty() {
        return;
    }
    let old_len = base.len();
    base.reserve_exact(adds.len());
    base.resize(old_len + adds.len(), Entry::default());
    let (mut from, mut add, mut to) = (old_len, adds.len(), base.len());
    while add > 0 {
        to -= 1;
        if from > 0 && base[from - 1].key > adds[add - 1].key {
            base[to] = base[from - 1];
            from -= 1;
        } else {
            base[to] = adds[add - 1];
            add -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_up_records_are_recorded_without_being_retried() {
        use crate::diff::{DeliveryMode, Diff, RowSpec};
        use arrow_array::{Int64Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let batch = |ids: &[i64], names: &[&str]| {
            RecordBatch::try_from_iter(vec![
                (
                    "id",
                    Arc::new(Int64Array::from(ids.to_vec())) as arrow_array::ArrayRef,
                ),
                ("name", Arc::new(StringArray::from(names.to_vec())) as _),
            ])
            .expect("batch")
        };
        let spec = RowSpec {
            key_columns: vec!["id".into()],
            mapped_columns: vec!["name".into()],
        };
        let mut diff =
            Diff::new(State::default(), spec.clone(), DeliveryMode::Mirror).expect("diff");
        diff.push(&batch(&[1, 2], &["a", "b"])).expect("push");
        let outcome = diff.finish();
        let keys: Vec<u64> = outcome.diff.adds.iter().map(|e| e.key).collect();
        // key 0 failed and is retried; key 1 failed and is given up
        let state = outcome.commit_giving_up(keys.clone(), vec![keys[1]]);
        assert_eq!(state.len(), 1);
        let kept = state.get(keys[1]).expect("given up kept");
        assert!(!kept.is_delivered());
        // the next run sees the given-up row unchanged and retries the failed one
        let mut diff = Diff::new(state, spec, DeliveryMode::Mirror).expect("diff");
        diff.push(&batch(&[1, 2], &["a", "b"])).expect("push");
        let outcome = diff.finish();
        assert_eq!((outcome.counts.added, outcome.counts.unchanged), (1, 1));
        assert_eq!(outcome.deletes().count(), 0);
    }

    #[test]
    fn merge_from_back_keeps_order() {
        let e = |k| Entry::delivered(k, k);
        for (base, adds) in [
            (vec![], vec![1, 2]),
            (vec![3, 5], vec![]),
            (vec![3, 5], vec![1, 4, 9]),
            (vec![1, 2], vec![7, 8]),
            (vec![7, 8], vec![1, 2]),
        ] {
            let mut merged: Vec<Entry> = base.iter().map(|&k| e(k)).collect();
            let adds: Vec<Entry> = adds.iter().map(|&k| e(k)).collect();
            merge_from_back(&mut merged, &adds);
            let mut expected: Vec<u64> = base.clone();
            expected.extend(adds.iter().map(|a| a.key));
            expected.sort_unstable();
            assert_eq!(merged.iter().map(|m| m.key).collect::<Vec<_>>(), expected);
        }
    }
}
