//! A sync's committed diff state: what Backflow believes each record of the destination
//! holds, as `(key hash, row hash)` pairs sorted by key hash, 16 bytes per key.
//!
//! The row hash's top bit is the [`DELIVERED`] flag: set when Backflow itself delivered the
//! record (so a later delete may touch it), clear when the row was only observed (an
//! `update`-mode sync sees new keys without sending them). Row hashes are 63 bits.
//!
//! Lookups go through a [`KeyIndex`]: key hashes are uniform, so a directory of the first
//! position per top-bits prefix (one `u32` per 16 to 32 entries, under 0.25 byte per key)
//! narrows any key to a slot, and the key's lower bits interpolate its place in the slot,
//! most often to within two entries: one or two random cache lines instead of a binary
//! search's twenty-odd. The diff looks up a whole batch at once: directory reads first, then
//! the searches, each [`prefetch`]ing the bucket of a row a few rows ahead, so the DRAM accesses
//! of a large state overlap instead of queueing (they are what a run with few changes spends
//! its time on).

use super::error::DiffError;

/// Row-hash bit saying Backflow delivered this record.
pub const DELIVERED: u64 = 1 << 63;
/// The bits of a row hash that hash the row.
pub const ROW_HASH_MASK: u64 = !DELIVERED;

/// One record of the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[repr(C)]
pub struct Entry {
    pub key: u64,
    /// Row hash (63 bits) with [`DELIVERED`] on top.
    pub row: u64,
}

impl Entry {
    pub fn delivered(key: u64, row_hash: u64) -> Self {
        Self {
            key,
            row: (row_hash & ROW_HASH_MASK) | DELIVERED,
        }
    }

    pub fn observed(key: u64, row_hash: u64) -> Self {
        Self {
            key,
            row: row_hash & ROW_HASH_MASK,
        }
    }

    pub fn row_hash(&self) -> u64 {
        self.row & ROW_HASH_MASK
    }

    pub fn is_delivered(&self) -> bool {
        self.row & DELIVERED != 0
    }
}

/// Entries sorted by strictly increasing key hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    entries: Vec<Entry>,
}

impl State {
    /// Checks that keys strictly increase (one entry per key).
    pub fn new(entries: Vec<Entry>) -> Result<Self, DiffError> {
        if let Some(at) = entries.windows(2).position(|w| w[0].key >= w[1].key) {
            return Err(DiffError::Corrupt(format!(
                "state keys are not strictly increasing at entry {}",
                at + 1
            )));
        }
        if u32::try_from(entries.len()).is_err() {
            return Err(DiffError::TooManyRows);
        }
        Ok(Self { entries })
    }

    /// Sorts `entries` by key; `Err` if two share a key.
    pub fn from_unsorted(mut entries: Vec<Entry>) -> Result<Self, DiffError> {
        entries.sort_unstable_by_key(|entry| entry.key);
        Self::new(entries)
    }

    /// Callers guarantee sorted, unique keys (the diff's own merge).
    pub(crate) fn from_sorted(entries: Vec<Entry>) -> Self {
        debug_assert!(entries.windows(2).all(|w| w[0].key < w[1].key));
        Self { entries }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: u64) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(&key, |entry| entry.key)
            .ok()
            .map(|at| &self.entries[at])
    }
}

/// Directory over a sorted state: `starts[p]` is the first entry whose key's top `bits`
/// bits are at least `p`.
#[derive(Debug, Clone, Default)]
pub struct KeyIndex {
    bits: u32,
    starts: Vec<u32>,
}

/// Entries per directory slot the index aims at (between this and twice it).
const ENTRIES_PER_SLOT: usize = 16;

impl KeyIndex {
    /// 16 to 32 entries per directory slot (under 0.25 byte per key).
    pub fn build(entries: &[Entry]) -> Self {
        let len = entries.len();
        let bits = if len < ENTRIES_PER_SLOT {
            0
        } else {
            (usize::BITS - (len / ENTRIES_PER_SLOT).leading_zeros() - 1).min(28)
        };
        let slots = 1usize << bits;
        let mut starts = Vec::with_capacity(slots + 1);
        let mut at = 0usize;
        for slot in 0..slots as u64 {
            while at < len && prefix(entries[at].key, bits) < slot {
                at += 1;
            }
            starts.push(at as u32);
        }
        starts.push(len as u32);
        Self { bits, starts }
    }

    /// Position of `key` in `entries` (the slice the index was built over).
    #[inline]
    pub fn find(&self, entries: &[Entry], key: u64) -> Option<usize> {
        Self::find_in(entries, self.bucket(key), key)
    }

    /// Where `key` would be (a directory read only): its slot's entries, and a guess
    /// within them. The keys of a slot share their top `bits` bits and are uniform below,
    /// so a key's rank in its slot is about its remaining bits' share of the slot's range:
    /// the guess is most often within two entries of the key (one or two cache lines),
    /// where a scan of the slot would read all of its lines.
    #[inline]
    pub fn bucket(&self, key: u64) -> Bucket {
        let slot = prefix(key, self.bits) as usize;
        let start = self.starts[slot];
        let end = self.starts[slot + 1];
        // the bits below the slot's prefix, as a fraction of the slot's key range
        let below = key << self.bits;
        let guess = start + ((u128::from(below) * u128::from(end - start)) >> 64) as u32;
        Bucket { start, end, guess }
    }

    /// Position of `key` in `entries`, searching only `bucket` (from [`Self::bucket`]),
    /// outward from its guess.
    #[inline]
    pub fn find_in(entries: &[Entry], bucket: Bucket, key: u64) -> Option<usize> {
        let (start, end) = (bucket.start as usize, bucket.end as usize);
        if start >= end || end > entries.len() {
            return None;
        }
        let mut at = (bucket.guess as usize).min(end - 1);
        if entries[at].key < key {
            at += 1;
            while at < end && entries[at].key < key {
                at += 1;
            }
            (at < end && entries[at].key == key).then_some(at)
        } else {
            while at > start && entries[at].key > key {
                at -= 1;
            }
            (entries[at].key == key).then_some(at)
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.starts.capacity() * 4
    }
}

/// A directory slot's entries, `start..end`, and where in them a key is most likely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bucket {
    pub start: u32,
    pub end: u32,
    pub guess: u32,
}

/// Asks the CPU to start loading the cache lines around `bucket`'s guess (a hint: no
/// effect on results). A lookup in a large state is one random DRAM access; issued a few
/// rows ahead, many of them are in flight at once instead of one after the other.
#[inline]
pub fn prefetch(entries: &[Entry], bucket: Bucket) {
    let (start, end) = (bucket.start as usize, bucket.end as usize);
    if start >= end || end > entries.len() {
        return;
    }
    // Two entries either side of the guess (where the key most often is, see
    // `KeyIndex::bucket`; a key further away is still found, from memory not yet loaded): 80 bytes, so at most two 64-byte lines, its first and last.
    let guess = (bucket.guess as usize).min(end - 1);
    prefetch_line(&entries[guess.saturating_sub(2).max(start)]);
    prefetch_line(&entries[(guess + 2).min(end - 1)]);
}

/// Asks the CPU to start loading the cache line holding `value` (a hint: no effect on
/// results).
#[inline]
pub(super) fn prefetch_line<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of every x86_64 target, and a prefetch is only a hint: it
        // reads nothing into the program and cannot fault, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[inline]
fn prefix(key: u64, bits: u32) -> u64 {
    if bits == 0 {
        0
    } else {
        key >> (64 - bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_refuses_unsorted_or_duplicate_keys() {
        let a = Entry::delivered(1, 5);
        let b = Entry::delivered(2, 5);
        assert!(State::new(vec![a, b]).is_ok());
        assert!(matches!(State::new(vec![b, a]), Err(DiffError::Corrupt(_))));
        assert!(matches!(
            State::from_unsorted(vec![b, a, b]),
            Err(DiffError::Corrupt(_))
        ));
    }

    #[test]
    fn flag_is_kept_apart_from_the_hash() {
        let entry = Entry::delivered(1, u64::MAX);
        assert!(entry.is_delivered());
        assert_eq!(entry.row_hash(), ROW_HASH_MASK);
        assert!(!Entry::observed(1, u64::MAX).is_delivered());
    }

    #[test]
    fn index_finds_every_key_and_nothing_else() {
        for len in [0usize, 1, 15, 16, 17, 1000, 5000] {
            let mut keys: Vec<u64> = (0..len as u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i << 7))
                .collect();
            keys.push(0);
            keys.push(u64::MAX);
            keys.sort_unstable();
            keys.dedup();
            let entries: Vec<Entry> = keys.iter().map(|&k| Entry::delivered(k, k)).collect();
            let index = KeyIndex::build(&entries);
            for (at, entry) in entries.iter().enumerate() {
                assert_eq!(index.find(&entries, entry.key), Some(at), "len {len}");
            }
            for probe in [1u64, 12_345, u64::MAX - 1, 1 << 63] {
                let expected = keys.binary_search(&probe).ok();
                assert_eq!(index.find(&entries, probe), expected);
            }
        }
    }

    #[test]
    fn guesses_land_within_two_entries_nearly_always() {
        let mut keys: Vec<u64> = (0..200_000u64)
            .map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let entries: Vec<Entry> = keys.iter().map(|&k| Entry::delivered(k, k)).collect();
        let index = KeyIndex::build(&entries);
        let near = entries
            .iter()
            .enumerate()
            .filter(|(at, entry)| index.bucket(entry.key).guess.abs_diff(*at as u32) <= 2)
            .count();
        // binomial ranks in slots of 16 to 32 entries: ~80% within two
        assert!(
            near * 10 >= entries.len() * 7,
            "{near} of {}",
            entries.len()
        );
    }
}
