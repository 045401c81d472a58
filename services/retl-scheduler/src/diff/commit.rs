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
//! On the way the commit can note its [`Delta`] (entries put, keys removed): a run that
//! changed few records then stores only that, not the whole state again.

use super::engine::DiffOutcome;
use super::error::DiffError;
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
    pub fn commit_giving_up(self, failed: Vec<u64>, given_up: Vec<u64>) -> State {
        self.commit_noting(failed, given_up, 0).0
    }

    /// [`Self::commit_giving_up`], also returning what changed against the previous state
    /// when that is at most `max_delta` changes (`None` beyond: noting stops there, so a
    /// run changing most records does not hold a second list of them).
    pub fn commit_noting(
        self,
        mut failed: Vec<u64>,
        mut given_up: Vec<u64>,
        max_delta: usize,
    ) -> (State, Option<Delta>) {
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
        let mut noting = Noting::new(max_delta);
        for (&at, &row_hash) in diff.update_at.iter().zip(&diff.update_row) {
            let entry = &mut entries[at as usize];
            let before = *entry;
            match rules::updated(mode, settled(entry.key)) {
                Next::Put { delivered: true } => *entry = Entry::delivered(entry.key, row_hash),
                Next::Put { delivered: false } => *entry = Entry::observed(entry.key, row_hash),
                Next::PutKeepFlag => {
                    entry.row = (row_hash & ROW_HASH_MASK) | (entry.row & DELIVERED);
                }
                Next::Keep | Next::Drop => {}
            }
            if *entry != before {
                noting.put(*entry);
            }
        }
        // Updates were noted in extract order.
        if let Some(delta) = noting.delta.as_mut() {
            delta.puts.sort_unstable_by_key(|entry| entry.key);
        }
        let mut at = 0;
        entries.retain(|entry| {
            let seen = diff.seen.get(at);
            at += 1;
            let keep = seen
                || rules::missing(mode, entry.is_delivered(), settled(entry.key)) == Next::Keep;
            if !keep {
                noting.remove(entry.key);
            }
            keep
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
        noting.put_all(&adds);
        if entries.is_empty() {
            // A first run (or nothing kept): the additions are the state, no copy.
            entries = adds;
        } else {
            merge_from_back(&mut entries, &adds);
        }
        (State::from_sorted(entries), noting.delta)
    }
}

/// What a commit changed against the state it started from: entries put (new keys, or a
/// new row word for a key) and keys removed, each ascending by key, no key in both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub puts: Vec<Entry>,
    pub removed: Vec<u64>,
}

impl Delta {
    pub fn len(&self) -> usize {
        self.puts.len() + self.removed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.removed.is_empty()
    }

    /// `base` with this delta applied, in `base`'s buffer. A removed key that `base` does
    /// not hold is corruption (the delta was not made from this base).
    pub fn apply(&self, base: State) -> Result<State, DiffError> {
        let corrupt = |what: &str, key: u64| {
            DiffError::Corrupt(format!("delta {what} key {key:#x} its base does not hold"))
        };
        let mut entries = base.into_entries();
        let mut removed = self.removed.iter().peekable();
        let mut missing = None;
        entries.retain(|entry| {
            while let Some(&&key) = removed.peek() {
                if key < entry.key {
                    missing.get_or_insert(key);
                    removed.next();
                } else {
                    break;
                }
            }
            if removed.peek() == Some(&&entry.key) {
                removed.next();
                false
            } else {
                true
            }
        });
        if let Some(key) = missing.or_else(|| removed.next().copied()) {
            return Err(corrupt("removes", key));
        }
        let mut adds = Vec::new();
        let mut at = 0;
        for put in &self.puts {
            while at < entries.len() && entries[at].key < put.key {
                at += 1;
            }
            if at < entries.len() && entries[at].key == put.key {
                entries[at] = *put;
            } else {
                adds.push(*put);
            }
        }
        merge_from_back(&mut entries, &adds);
        Ok(State::from_sorted(entries))
    }

    /// Checks the delta's own shape (sorted, unique, disjoint).
    pub fn check(&self) -> Result<(), DiffError> {
        let puts_increase = self.puts.windows(2).all(|w| w[0].key < w[1].key);
        let removed_increase = self.removed.windows(2).all(|w| w[0] < w[1]);
        if !puts_increase || !removed_increase {
            return Err(DiffError::Corrupt(
                "delta keys are not strictly increasing".into(),
            ));
        }
        if self.removed.iter().any(|key| {
            self.puts
                .binary_search_by_key(key, |entry| entry.key)
                .is_ok()
        }) {
            return Err(DiffError::Corrupt(
                "a delta both puts and removes a key".into(),
            ));
        }
        Ok(())
    }
}

/// A [`Delta`] being noted, given up past its limit.
struct Noting {
    delta: Option<Delta>,
    max: usize,
}

impl Noting {
    fn new(max: usize) -> Self {
        Self {
            delta: (max > 0).then(Delta::default),
            max,
        }
    }

    fn room(&mut self, more: usize) -> Option<&mut Delta> {
        let fits = self
            .delta
            .as_ref()
            .is_some_and(|delta| delta.len() + more <= self.max);
        if !fits {
            self.delta = None;
        }
        self.delta.as_mut()
    }

    fn put(&mut self, entry: Entry) {
        if let Some(delta) = self.room(1) {
            delta.puts.push(entry);
        }
    }

    fn remove(&mut self, key: u64) {
        if let Some(delta) = self.room(1) {
            delta.removed.push(key);
        }
    }

    /// Sorted `adds` (keys apart from every noted put) merged into the sorted puts.
    fn put_all(&mut self, adds: &[Entry]) {
        if adds.is_empty() {
            return;
        }
        if let Some(delta) = self.room(adds.len()) {
            merge_from_back(&mut delta.puts, adds);
        }
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
    fn a_noted_delta_rebuilds_the_committed_state_from_the_previous_one() {
        use crate::diff::{DeliveryMode, Diff, RowSpec};
        use arrow_array::{Int64Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let batch = |rows: &[(i64, String)]| {
            let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
            let names: Vec<&str> = rows.iter().map(|(_, name)| name.as_str()).collect();
            RecordBatch::try_from_iter(vec![
                (
                    "id",
                    Arc::new(Int64Array::from(ids)) as arrow_array::ArrayRef,
                ),
                ("name", Arc::new(StringArray::from(names)) as _),
            ])
            .expect("batch")
        };
        let spec = RowSpec {
            key_columns: vec!["id".into()],
            mapped_columns: vec!["name".into()],
        };
        let run = |state: State, mode, rows: &[(i64, String)], fail_every: usize| {
            let mut diff = Diff::new(state, spec.clone(), mode).expect("diff");
            diff.push(&batch(rows)).expect("push");
            let outcome = diff.finish();
            let mut failed: Vec<u64> = outcome.diff.adds.iter().map(|e| e.key).collect();
            failed.extend(
                outcome
                    .diff
                    .update_at
                    .iter()
                    .map(|&at| outcome.diff.state.entries()[at as usize].key),
            );
            failed.extend(outcome.deletes());
            // fail_every 0: nothing fails
            let failed: Vec<u64> = if fail_every == 0 {
                Vec::new()
            } else {
                failed.into_iter().step_by(fail_every).collect()
            };
            let given_up: Vec<u64> = failed.iter().copied().step_by(3).collect();
            outcome.commit_noting(failed, given_up, usize::MAX)
        };
        for mode in [
            DeliveryMode::Upsert,
            DeliveryMode::Mirror,
            DeliveryMode::Update,
            DeliveryMode::Insert,
        ] {
            // previous: ids 0..300; next: 50..350 with every 7th row changed
            let first: Vec<(i64, String)> = (0..300).map(|id| (id, format!("v{id}"))).collect();
            let (previous, _) = run(State::default(), mode, &first, 0);
            let next: Vec<(i64, String)> = (50..350)
                .map(|id| {
                    (
                        id,
                        if id % 7 == 0 {
                            format!("w{id}")
                        } else {
                            format!("v{id}")
                        },
                    )
                })
                .collect();
            for fail_every in [0, 1, 2, 5] {
                let (committed, delta) = run(previous.clone(), mode, &next, fail_every);
                let delta = delta.expect("under the limit");
                delta.check().expect("well formed");
                assert_eq!(
                    delta.apply(previous.clone()).expect("applies"),
                    committed,
                    "{mode:?}, failing every {fail_every}"
                );
            }
            // nothing changed: an empty delta
            let (same, delta) = run(previous.clone(), mode, &first, 0);
            assert_eq!(same, previous);
            assert_eq!(delta, Some(Delta::default()), "{mode:?}");
        }
    }

    #[test]
    fn noting_stops_past_its_limit_and_a_foreign_delta_is_refused() {
        use crate::diff::{DeliveryMode, Diff, RowSpec};
        use arrow_array::{Int64Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let ids: Vec<i64> = (0..100).collect();
        let names: Vec<String> = ids.iter().map(|id| format!("n{id}")).collect();
        let batch = RecordBatch::try_from_iter(vec![
            (
                "id",
                Arc::new(Int64Array::from(ids)) as arrow_array::ArrayRef,
            ),
            ("name", Arc::new(StringArray::from(names)) as _),
        ])
        .expect("batch");
        let spec = RowSpec {
            key_columns: vec!["id".into()],
            mapped_columns: vec!["name".into()],
        };
        let mut diff = Diff::new(State::default(), spec, DeliveryMode::Upsert).expect("diff");
        diff.push(&batch).expect("push");
        let (state, delta) = diff.finish().commit_noting(Vec::new(), Vec::new(), 99);
        assert_eq!((state.len(), delta), (100, None));

        let removes_unknown = Delta {
            puts: Vec::new(),
            removed: vec![7],
        };
        assert!(matches!(
            removes_unknown.apply(State::default()),
            Err(DiffError::Corrupt(_))
        ));
        let both = Delta {
            puts: vec![Entry::delivered(3, 1)],
            removed: vec![3],
        };
        assert!(both.check().is_err());
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
