//! The streaming diff: classifies every extracted row against the committed state as it
//! arrives, batch by batch, keeping only hashes and bits, so the extract itself is never
//! held in memory.
//!
//! Memory per key (N = state entries, M = extracted rows):
//! - the previous state, moved in: 16 B × N (`Vec<Entry>`), plus its [`KeyIndex`] (≤ 0.25 B × N);
//! - a seen bit per state entry (N / 8 B) and an added and an updated bit per extracted row
//!   (M / 4 B): together with the batch offsets, they say which rows of which batch to deliver;
//! - per updated row 12 B (state position `u32` + new row hash `u64`, two columns);
//! - per added row 16 B (the new entry, later merged into the state in place).
//!
//! So a run with few changes costs ~17 B per key, a first run ~16.4 B; the worst case (every
//! row updated) is ~29 B. Duplicate keys cannot be known before the end of the extract, so
//! [`Diff::finish`] settles them: later occurrences of a state key are seen through the seen
//! bit, duplicates among new keys by sorting the added entries (which the commit merges
//! sorted anyway). Rows are then picked for delivery on a second pass over the batches
//! ([`super::select`]).

use super::bitset::Bitset;
use super::encode::{BatchHashes, RowHasher, RowSpec};
use super::error::DiffError;
use super::mode::{Change, DeliveryMode};
use super::state::{prefetch, Bucket, Entry, KeyIndex, State};

/// How many rows ahead a lookup prefetches its bucket: enough DRAM accesses in flight to
/// hide their latency, few enough that the lines are still cached when used.
const PREFETCH_AHEAD: usize = 16;
use arrow_array::RecordBatch;

/// What the diff found, per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Entries of the previous state.
    pub previous: u64,
    pub extracted: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// State entries not in the extract (whether or not the mode deletes them).
    pub missing: u64,
    /// Missing entries Backflow delivered: what a mirror sync deletes.
    pub deleted: u64,
    /// Rows rejected for a NULL key column.
    pub null_keys: u64,
    /// Distinct keys appearing more than once (every occurrence is rejected).
    pub duplicate_keys: u64,
}

/// What one pushed batch looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    pub batch: usize,
    pub rows: usize,
    /// Rows that may be delivered (added or updated; duplicates are settled at the end).
    pub candidates: usize,
    /// Rows already known to be rejected (NULL key, repeated state key).
    pub rejected: usize,
}

/// A diff in progress over the current extract.
#[derive(Debug)]
pub struct Diff {
    pub(super) mode: DeliveryMode,
    pub(super) state: State,
    pub(super) index: KeyIndex,
    pub(super) seen: Bitset,
    pub(super) update_at: Vec<u32>,
    pub(super) update_row: Vec<u64>,
    pub(super) adds: Vec<Entry>,
    pub(super) added_rows: Bitset,
    pub(super) updated_rows: Bitset,
    /// `batch_starts[b]` is batch `b`'s first row number; the last element is the total.
    pub(super) batch_starts: Vec<u64>,
    /// Batches holding rows rejected while pushing, ascending.
    pub(super) rejected_batches: Vec<usize>,
    pub(super) dup_keys: Vec<u64>,
    pub(super) null_keys: u64,
    pub(super) hasher: RowHasher,
    /// Hashes of the batch classified last (what `last_*` read), reused for the next one.
    hashes: BatchHashes,
    /// The batch `hashes` belong to: the last one pushed, `None` before the first push and
    /// after a failed one (the `last_*` accessors then answer nothing, never stale rows).
    hashes_of: Option<usize>,
    /// Directory buckets of the batch being classified (reused).
    buckets: Vec<Bucket>,
    /// Rows of the batch pushed last that repeated a state key seen earlier.
    last_repeats: Vec<usize>,
}

/// Entries doubled up to, before the additions grow by an eighth.
const ADDS_DOUBLE_UP_TO: usize = 2 << 20;

/// How many entries the additions grow by when full at `len`: doubling while small (each
/// growth copies every entry into fresh, page-faulted memory, and growing 1M additions by
/// eighths from the start copied ~9× their size: 4% of a 1M-row first sync's CPU), then
/// by an eighth past 2M entries (32 MiB), so a first run of many keys leaves at most an
/// eighth unused instead of up to 16 B per key.
fn adds_growth(len: usize) -> usize {
    if len < ADDS_DOUBLE_UP_TO {
        len.max(4096)
    } else {
        len / 8
    }
}

impl Diff {
    pub fn new(previous: State, spec: RowSpec, mode: DeliveryMode) -> Result<Self, DiffError> {
        let index = KeyIndex::build(previous.entries());
        Ok(Self {
            mode,
            seen: Bitset::with_len(previous.len()),
            index,
            state: previous,
            update_at: Vec::new(),
            update_row: Vec::new(),
            adds: Vec::new(),
            added_rows: Bitset::default(),
            updated_rows: Bitset::default(),
            batch_starts: vec![0],
            rejected_batches: Vec::new(),
            dup_keys: Vec::new(),
            null_keys: 0,
            hasher: RowHasher::new(spec)?,
            hashes: BatchHashes::default(),
            hashes_of: None,
            buckets: Vec::new(),
            last_repeats: Vec::new(),
        })
    }

    /// Hashes and classifies the next batch of the extract.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<BatchSummary, DiffError> {
        let mut hashes = std::mem::take(&mut self.hashes);
        let summary = self
            .hasher
            .hash_batch(batch, &mut hashes)
            .and_then(|()| self.classify(&hashes));
        self.hashes = hashes;
        self.hashes_of = summary.as_ref().ok().map(|summary| summary.batch);
        summary
    }

    /// Classifies the next batch from hashes computed elsewhere (what [`Diff::push`] does
    /// after hashing). The diff keeps them for the `last_*` accessors by swapping buffers,
    /// so nothing is copied: `hashes` comes back holding the vectors of the batch before
    /// (empty at first), for the next `RowHasher::hash_batch` to overwrite.
    pub fn push_hashes(&mut self, hashes: &mut BatchHashes) -> Result<BatchSummary, DiffError> {
        let summary = self.classify(hashes);
        std::mem::swap(&mut self.hashes, hashes);
        self.hashes_of = summary.as_ref().ok().map(|summary| summary.batch);
        summary
    }

    /// Classifies one batch from its hashes.
    fn classify(&mut self, hashes: &BatchHashes) -> Result<BatchSummary, DiffError> {
        let batch = self.batch_starts.len() - 1;
        let start = self.batch_starts[batch] as usize;
        let rows = hashes.keys.len();
        let end = start + rows;
        if u32::try_from(end).is_err() {
            return Err(DiffError::TooManyRows);
        }
        self.added_rows.grow(end);
        self.updated_rows.grow(end);
        let entries = self.state.entries();
        let mut nulls = hashes.null_keys.iter().map(|null| null.row).peekable();
        let mut candidates = 0;
        let mut rejected = hashes.null_keys.len();
        self.last_repeats.clear();
        // Directory reads for the whole batch first (independent loads that overlap), then
        // the searches, each prefetching the bucket PREFETCH_AHEAD rows later.
        let mut buckets = std::mem::take(&mut self.buckets);
        buckets.clear();
        if !entries.is_empty() {
            buckets.extend(hashes.keys.iter().map(|&key| self.index.bucket(key)));
            for bucket in buckets.iter().take(PREFETCH_AHEAD) {
                prefetch(entries, *bucket);
            }
        }
        for row in 0..rows {
            if let Some(ahead) = buckets.get(row + PREFETCH_AHEAD) {
                prefetch(entries, *ahead);
                // the seen bit of the guess: the same 64-bit word as the entry's, nearly always
                self.seen.prefetch(ahead.guess as usize);
            }
            if nulls.peek() == Some(&row) {
                nulls.next();
                continue;
            }
            let key = hashes.keys[row];
            let row_hash = hashes.rows[row];
            let found = match buckets.get(row) {
                Some(bucket) => KeyIndex::find_in(entries, *bucket, key),
                None => None,
            };
            match found {
                Some(at) => {
                    if self.seen.set(at) {
                        self.dup_keys.push(key);
                        self.last_repeats.push(row);
                        rejected += 1;
                    } else if entries[at].row_hash() != row_hash {
                        self.update_at.push(at as u32);
                        self.update_row.push(row_hash);
                        self.updated_rows.set(start + row);
                        candidates += 1;
                    }
                }
                None => {
                    if self.adds.len() == self.adds.capacity() {
                        self.adds.reserve_exact(adds_growth(self.adds.len()));
                    }
                    self.adds.push(Entry::observed(key, row_hash));
                    self.added_rows.set(start + row);
                    candidates += 1;
                }
            }
        }
        self.buckets = buckets;
        self.null_keys += hashes.null_keys.len() as u64;
        if rejected > 0 {
            self.rejected_batches.push(batch);
        }
        self.batch_starts.push(end as u64);
        Ok(BatchSummary {
            batch,
            rows,
            candidates,
            rejected,
        })
    }

    /// The rows of the batch pushed last that may be delivered, with their hashes:
    /// `(row, change, key hash, row hash)`. Duplicates are not settled yet (see
    /// [`DiffOutcome::duplicate_keys`]); an executor that spills candidates as it goes
    /// uses this instead of a second pass with [`DiffOutcome::select`].
    pub fn last_candidates(&self) -> Vec<(usize, Change, u64, u64)> {
        let Some(batch) = self.hashes_of else {
            return Vec::new();
        };
        let start = self.batch_starts[batch] as usize;
        let end = self.batch_starts[batch + 1] as usize;
        let mut found = Vec::new();
        for global in start..end {
            let change = if self.added_rows.get(global) {
                Change::Added
            } else if self.updated_rows.get(global) {
                Change::Updated
            } else {
                continue;
            };
            let row = global - start;
            found.push((row, change, self.hashes.keys[row], self.hashes.rows[row]));
        }
        found
    }

    /// Rows of the batch pushed last with a NULL key column, and that column's name.
    pub fn last_null_keys(&self) -> Vec<(usize, String)> {
        if self.hashes_of.is_none() {
            return Vec::new();
        }
        self.hashes
            .null_keys
            .iter()
            .map(|null| {
                (
                    null.row,
                    self.hasher.spec().key_columns[null.key_column].clone(),
                )
            })
            .collect()
    }

    /// Rows of the batch pushed last whose key repeats a state key seen earlier in this
    /// extract, with the key hash (every occurrence of such a key is rejected).
    pub fn last_repeats(&self) -> Vec<(usize, u64)> {
        if self.hashes_of.is_none() {
            return Vec::new();
        }
        self.last_repeats
            .iter()
            .map(|&row| (row, self.hashes.keys[row]))
            .collect()
    }

    /// Rows pushed so far.
    pub fn rows_pushed(&self) -> u64 {
        *self.batch_starts.last().unwrap_or(&0)
    }

    /// Settles duplicates once the whole extract was seen.
    pub fn finish(mut self) -> DiffOutcome {
        self.adds.shrink_to_fit();
        self.adds.sort_unstable_by_key(|entry| entry.key);
        drop_duplicate_adds(&mut self.adds, &mut self.dup_keys);
        self.dup_keys.sort_unstable();
        self.dup_keys.dedup();
        if !self.dup_keys.is_empty() {
            let entries = self.state.entries();
            let dups = &self.dup_keys;
            let keep: Vec<bool> = self
                .update_at
                .iter()
                .map(|&at| dups.binary_search(&entries[at as usize].key).is_err())
                .collect();
            let mut flags = keep.iter();
            self.update_at
                .retain(|_| flags.next().copied().unwrap_or(false));
            let mut flags = keep.iter();
            self.update_row
                .retain(|_| flags.next().copied().unwrap_or(false));
        }
        let counts = self.counts();
        DiffOutcome { diff: self, counts }
    }

    fn counts(&self) -> Counts {
        let entries = self.state.entries();
        let seen = self.seen.count_ones() as u64;
        let extracted = *self.batch_starts.last().unwrap_or(&0);
        let deleted = entries
            .iter()
            .enumerate()
            .filter(|(at, entry)| entry.is_delivered() && !self.seen.get(*at))
            .count() as u64;
        let updated = self.update_at.len() as u64;
        let duplicated_rows_in_state = self
            .dup_keys
            .iter()
            .filter(|key| self.state.get(**key).is_some())
            .count() as u64;
        Counts {
            previous: entries.len() as u64,
            extracted,
            added: self.adds.len() as u64,
            updated,
            unchanged: seen
                .saturating_sub(updated)
                .saturating_sub(duplicated_rows_in_state),
            missing: entries.len() as u64 - seen,
            deleted,
            null_keys: self.null_keys,
            duplicate_keys: self.dup_keys.len() as u64,
        }
    }

    /// Bytes this diff holds on the heap (state included), for the bench and run metrics.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(self.state.entries())
            + self.index.heap_bytes()
            + self.seen.heap_bytes()
            + self.update_at.capacity() * 4
            + self.update_row.capacity() * 8
            + self.adds.capacity() * std::mem::size_of::<Entry>()
            + self.added_rows.heap_bytes()
            + self.updated_rows.heap_bytes()
            + self.batch_starts.capacity() * 8
    }
}

/// Removes every entry whose key occurs more than once in the sorted `adds`, noting the key.
fn drop_duplicate_adds(adds: &mut Vec<Entry>, dup_keys: &mut Vec<u64>) {
    let len = adds.len();
    let mut write = 0;
    let mut at = 0;
    while at < len {
        let key = adds[at].key;
        let mut next = at + 1;
        while next < len && adds[next].key == key {
            next += 1;
        }
        if next - at > 1 {
            dup_keys.push(key);
        } else {
            adds[write] = adds[at];
            write += 1;
        }
        at = next;
    }
    adds.truncate(write);
}

/// A finished diff: counts, what to select on the replay, what to commit.
#[derive(Debug)]
pub struct DiffOutcome {
    pub(super) diff: Diff,
    pub counts: Counts,
}

impl DiffOutcome {
    pub fn mode(&self) -> DeliveryMode {
        self.diff.mode
    }

    /// Keys of state entries to delete at the destination (mirror mode only): missing from
    /// the extract and delivered by Backflow. Ascending.
    pub fn deletes(&self) -> impl Iterator<Item = u64> + '_ {
        let mirror = self.diff.mode == DeliveryMode::Mirror;
        self.diff
            .state
            .entries()
            .iter()
            .enumerate()
            .filter(move |(at, entry)| mirror && entry.is_delivered() && !self.diff.seen.get(*at))
            .map(|(_, entry)| entry.key)
    }

    /// Keys rejected as duplicates, ascending.
    pub fn duplicate_keys(&self) -> &[u64] {
        &self.diff.dup_keys
    }

    pub fn batches(&self) -> usize {
        self.diff.batch_starts.len() - 1
    }

    pub fn heap_bytes(&self) -> usize {
        self.diff.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additions_double_while_small_then_grow_by_an_eighth() {
        assert_eq!(adds_growth(0), 4096);
        assert_eq!(adds_growth(4096), 4096);
        assert_eq!(adds_growth(1 << 20), 1 << 20);
        assert_eq!(adds_growth(ADDS_DOUBLE_UP_TO), ADDS_DOUBLE_UP_TO / 8);
        assert_eq!(adds_growth(10_000_000), 1_250_000);
    }

    fn spec() -> RowSpec {
        RowSpec {
            key_columns: vec!["id".into()],
            mapped_columns: vec!["name".into()],
        }
    }

    fn hashes(rows: &[(u64, u64)]) -> BatchHashes {
        BatchHashes {
            keys: rows.iter().map(|row| row.0).collect(),
            rows: rows.iter().map(|row| row.1).collect(),
            null_keys: Vec::new(),
        }
    }

    /// Pushes `rows` as one batch of external hashes.
    fn push(diff: &mut Diff, rows: &[(u64, u64)]) -> BatchSummary {
        diff.push_hashes(&mut hashes(rows)).expect("push")
    }

    fn state(keys: &[u64]) -> State {
        let entries = keys.iter().map(|&k| Entry::delivered(k, 7)).collect();
        State::from_unsorted(entries).unwrap_or_else(|err| panic!("{err}"))
    }

    fn candidates(diff: &Diff) -> Vec<(usize, Change, u64)> {
        diff.last_candidates()
            .into_iter()
            .map(|(row, change, key, _)| (row, change, key))
            .collect()
    }

    #[test]
    fn empty_state_adds_every_key_including_the_extreme_hashes() {
        let mut diff = Diff::new(State::default(), spec(), DeliveryMode::Mirror).expect("diff");
        push(&mut diff, &[(u64::MAX, 1), (0, 2), (5, 3)]);
        assert_eq!(
            candidates(&diff),
            vec![
                (0, Change::Added, u64::MAX),
                (1, Change::Added, 0),
                (2, Change::Added, 5)
            ]
        );
        let outcome = diff.finish();
        assert_eq!((outcome.counts.added, outcome.counts.missing), (3, 0));
    }

    #[test]
    fn keys_at_both_ends_of_the_hash_range_are_found() {
        // a state big enough for a many-slot directory, with 0 and u64::MAX in it
        let mut keys: Vec<u64> = (1..5000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        keys.extend([0, u64::MAX]);
        keys.sort_unstable();
        keys.dedup();
        let total = keys.len() as u64;
        let mut diff = Diff::new(state(&keys), spec(), DeliveryMode::Mirror).expect("diff");
        // every key unchanged except 0 (updated) and u64::MAX (updated); one new key
        let mut rows: Vec<(u64, u64)> = keys.iter().map(|&k| (k, 7)).collect();
        rows[0].1 = 8;
        let last = rows.len() - 1;
        rows[last].1 = 9;
        let new_key = (1u64 << 63) + 12_345;
        assert!(keys.binary_search(&new_key).is_err());
        rows.push((new_key, 1));
        push(&mut diff, &rows);
        assert_eq!(
            candidates(&diff),
            vec![
                (0, Change::Updated, 0),
                (last, Change::Updated, u64::MAX),
                (last + 1, Change::Added, new_key)
            ]
        );
        let outcome = diff.finish();
        let counts = outcome.counts;
        assert_eq!(
            (
                counts.added,
                counts.updated,
                counts.unchanged,
                counts.missing
            ),
            (1, 2, total - 2, 0)
        );
    }

    #[test]
    fn all_keys_new_against_a_large_state() {
        let keys: Vec<u64> = (0..3000u64).map(|i| i * 4 + 2).collect();
        let mut diff = Diff::new(state(&keys), spec(), DeliveryMode::Mirror).expect("diff");
        let rows: Vec<(u64, u64)> = (0..3000u64).map(|i| (i * 4 + 3, 1)).collect();
        push(&mut diff, &rows);
        assert_eq!(diff.last_candidates().len(), 3000);
        let outcome = diff.finish();
        assert_eq!(
            (
                outcome.counts.added,
                outcome.counts.missing,
                outcome.deletes().count()
            ),
            (3000, 3000, 3000)
        );
    }

    #[test]
    fn duplicates_within_a_batch_and_across_batches_are_rejected() {
        let mut diff = Diff::new(state(&[10, 20, 30]), spec(), DeliveryMode::Mirror).expect("diff");
        // 10 twice in one batch, 20 in both batches, 40 (new) twice across batches
        push(&mut diff, &[(10, 7), (40, 1), (10, 7), (20, 8)]);
        assert_eq!(diff.last_repeats(), vec![(2, 10)]);
        push(&mut diff, &[(40, 1), (20, 8), (30, 7)]);
        assert_eq!(diff.last_repeats(), vec![(1, 20)]);
        let outcome = diff.finish();
        assert_eq!(outcome.duplicate_keys(), &[10, 20, 40]);
        let counts = outcome.counts;
        assert_eq!(
            (
                counts.added,
                counts.updated,
                counts.unchanged,
                counts.missing
            ),
            (0, 0, 1, 0)
        );
    }

    #[test]
    fn the_last_batch_accessors_read_the_hashes_push_hashes_was_given() {
        use crate::diff::encode::NullKey;
        let mut diff = Diff::new(state(&[10, 20]), spec(), DeliveryMode::Mirror).expect("diff");
        // 10 unchanged then repeated, 30 new
        let mut first = hashes(&[(10, 7), (30, 1), (10, 7)]);
        diff.push_hashes(&mut first).expect("push");
        assert_eq!(
            diff.last_candidates(),
            vec![(1, Change::Added, 30, 1)],
            "the batch just classified, not the diff's own (empty) hash buffers"
        );
        assert_eq!(diff.last_repeats(), vec![(2, 10)]);
        assert_eq!(diff.last_null_keys(), Vec::<(usize, String)>::new());
        // a shorter batch: 20 updated, a NULL key; the caller's buffer came back for reuse
        let mut second = first;
        second.keys = vec![20, 0];
        second.rows = vec![8, 5];
        second.null_keys = vec![NullKey {
            row: 1,
            key_column: 0,
        }];
        diff.push_hashes(&mut second).expect("push");
        assert_eq!(diff.last_candidates(), vec![(0, Change::Updated, 20, 8)]);
        assert_eq!(diff.last_null_keys(), vec![(1, "id".to_string())]);
        assert_eq!(diff.last_repeats(), Vec::<(usize, u64)>::new());
        let outcome = diff.finish();
        assert_eq!(
            (
                outcome.counts.added,
                outcome.counts.updated,
                outcome.counts.null_keys
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn after_a_failed_push_the_last_batch_accessors_answer_nothing() {
        use arrow_array::{ArrayRef, Int64Array, StringArray};
        use std::sync::Arc;
        let mut diff = Diff::new(State::default(), spec(), DeliveryMode::Mirror).expect("diff");
        let three = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            (
                "name",
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as _,
            ),
        ])
        .expect("batch");
        diff.push(&three).expect("push");
        assert_eq!(diff.last_candidates().len(), 3);
        // the key hashes a shorter batch, then its mapped column is missing
        let no_name = RecordBatch::try_from_iter(vec![(
            "id",
            Arc::new(Int64Array::from(vec![4])) as ArrayRef,
        )])
        .expect("batch");
        assert!(diff.push(&no_name).is_err());
        assert_eq!(diff.last_candidates(), Vec::new());
        assert_eq!(diff.last_repeats(), Vec::new());
        assert_eq!(diff.last_null_keys(), Vec::new());
        // the diff goes on from what it classified
        diff.push(&three).expect("push");
        assert_eq!(diff.last_repeats().len(), 0);
        assert_eq!(diff.finish().duplicate_keys().len(), 3);
    }
}
