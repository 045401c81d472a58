//! 64-bit fingerprints of hashable values: the keys under which every stage memoises its
//! per-node results between parses (see `incremental::cache`).

use std::hash::{DefaultHasher, Hash, Hasher};

/// A 64-bit fingerprint of anything hashable.
pub fn fingerprint<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}
