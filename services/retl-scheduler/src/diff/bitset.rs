//! A growable bitset: one bit per state entry (seen) or per extracted row (to deliver),
//! which is what keeps the diff near 16 bytes per key.

#[derive(Debug, Default, Clone)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl Bitset {
    pub fn with_len(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the set `len` bits long (new bits clear).
    pub fn grow(&mut self, len: usize) {
        if len > self.len {
            self.words.resize(len.div_ceil(64), 0);
            self.len = len;
        }
    }

    pub fn get(&self, index: usize) -> bool {
        index < self.len && self.words[index / 64] & (1 << (index % 64)) != 0
    }

    /// Sets bit `index` (which must be below `len`), returning whether it was set before.
    pub fn set(&mut self, index: usize) -> bool {
        let word = &mut self.words[index / 64];
        let mask = 1 << (index % 64);
        let before = *word & mask != 0;
        *word |= mask;
        before
    }

    /// Asks the CPU to start loading the word holding bit `index` (a hint: no effect on
    /// results; an index past the end is ignored).
    #[inline]
    pub fn prefetch(&self, index: usize) {
        if let Some(word) = self.words.get(index / 64) {
            super::state::prefetch_line(word);
        }
    }

    /// Whether any bit in `start..end` is set.
    pub fn any_in(&self, start: usize, end: usize) -> bool {
        (start..end.min(self.len)).any(|index| self.get(index))
    }

    pub fn count_ones(&self) -> usize {
        self.words
            .iter()
            .map(|word| word.count_ones() as usize)
            .sum()
    }

    /// Bytes held (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_set_and_grow() {
        let mut bits = Bitset::with_len(3);
        assert!(!bits.set(2));
        assert!(bits.set(2));
        bits.grow(130);
        assert!(!bits.set(129));
        assert!(bits.get(2) && bits.get(129) && !bits.get(128) && !bits.get(500));
        assert_eq!(bits.count_ones(), 2);
        assert!(bits.any_in(100, 130) && !bits.any_in(3, 129));
    }
}
