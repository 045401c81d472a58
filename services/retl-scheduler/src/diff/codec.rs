//! The stored form of a [`State`]: compact, checked, and written and read in chunks so
//! neither side needs a second copy of the state in memory.
//!
//! Layout (all integers little-endian):
//! - header, 32 bytes: magic `BFDIFF\0\0` (8), format version `u32` = 1, entries per chunk
//!   `u32`, entry count `u64`, XXH3-64 of the preceding 24 bytes `u64`;
//! - then `ceil(count / per_chunk)` chunks, each `n` entries of 16 bytes (key hash `u64`, row
//!   word `u64`: 63-bit row hash with the DELIVERED flag on top) followed by the XXH3-64 of
//!   those `16 × n` bytes (`u64`). Only the last chunk may be short.
//!
//! Decoding checks the magic, version, both checksums, the exact length and that keys
//! strictly increase across the whole state.
//!
//! A [`Delta`] (what one commit changed) is stored as two such encodings back to back: its
//! puts, then its removed keys as entries with a zero row word.

use super::commit::Delta;
use super::error::DiffError;
use super::state::{Entry, State};
use xxhash_rust::xxh3::xxh3_64;

pub const MAGIC: [u8; 8] = *b"BFDIFF\0\0";
pub const FORMAT_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 32;
/// 64 Ki entries: 1 MiB chunks.
pub const ENTRIES_PER_CHUNK: u32 = 65_536;

fn header(count: u64, per_chunk: u32) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&per_chunk.to_le_bytes());
    out[16..24].copy_from_slice(&count.to_le_bytes());
    let sum = xxh3_64(&out[0..24]);
    out[24..32].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Total encoded size of a state of `count` entries.
pub fn encoded_len(count: usize, per_chunk: u32) -> usize {
    let chunks = count.div_ceil(per_chunk as usize);
    HEADER_LEN + count * 16 + chunks * 8
}

/// Produces the encoding piece by piece (header, then one chunk at a time).
#[derive(Debug)]
pub struct Encoder<'a> {
    entries: &'a [Entry],
    per_chunk: u32,
    next: usize,
    header_done: bool,
}

impl<'a> Encoder<'a> {
    pub fn new(state: &'a State) -> Self {
        Self::with_chunk(state, ENTRIES_PER_CHUNK)
    }

    pub fn with_chunk(state: &'a State, per_chunk: u32) -> Self {
        Self::over(state.entries(), per_chunk)
    }

    /// Encodes `entries` (strictly increasing keys) as a state.
    pub fn over(entries: &'a [Entry], per_chunk: u32) -> Self {
        Self {
            entries,
            per_chunk: per_chunk.max(1),
            next: 0,
            header_done: false,
        }
    }

    /// Appends the next piece to `out`; `false` once everything was written.
    pub fn next_piece(&mut self, out: &mut Vec<u8>) -> bool {
        if !self.header_done {
            self.header_done = true;
            out.extend_from_slice(&header(self.entries.len() as u64, self.per_chunk));
            return true;
        }
        if self.next >= self.entries.len() {
            return false;
        }
        let end = (self.next + self.per_chunk as usize).min(self.entries.len());
        let start = out.len();
        for entry in &self.entries[self.next..end] {
            out.extend_from_slice(&entry.key.to_le_bytes());
            out.extend_from_slice(&entry.row.to_le_bytes());
        }
        let sum = xxh3_64(&out[start..]);
        out.extend_from_slice(&sum.to_le_bytes());
        self.next = end;
        true
    }
}

/// Whole encoding in one buffer (tests, small states).
pub fn encode(state: &State) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(state.len(), ENTRIES_PER_CHUNK));
    let mut encoder = Encoder::new(state);
    while encoder.next_piece(&mut out) {}
    out
}

/// Rebuilds a state from bytes fed in any split.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
    count: Option<u64>,
    per_chunk: u32,
    entries: Vec<Entry>,
}

fn corrupt(message: impl Into<String>) -> DiffError {
    DiffError::Corrupt(message.into())
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) -> Result<(), DiffError> {
        let used = self.push_some(bytes)?;
        if used < bytes.len() {
            return Err(corrupt("bytes after the last chunk"));
        }
        Ok(())
    }

    /// Takes bytes until the state is complete; returns how many it took.
    pub fn push_some(&mut self, bytes: &[u8]) -> Result<usize, DiffError> {
        let mut used = 0;
        while used < bytes.len() {
            let want = self.want();
            if want == 0 {
                break;
            }
            let take = (want - self.pending.len()).min(bytes.len() - used);
            self.pending.extend_from_slice(&bytes[used..used + take]);
            used += take;
            if self.pending.len() == want {
                self.consume()?;
            }
        }
        Ok(used)
    }

    /// Whether the header and every chunk it announced were read.
    pub fn is_complete(&self) -> bool {
        self.count.is_some() && self.want() == 0
    }

    /// Bytes of the piece being collected (header or the next chunk); 0 when complete.
    fn want(&self) -> usize {
        match self.count {
            None => HEADER_LEN,
            Some(count) => {
                let left = count as usize - self.entries.len();
                if left == 0 {
                    0
                } else {
                    left.min(self.per_chunk as usize) * 16 + 8
                }
            }
        }
    }

    fn consume(&mut self) -> Result<(), DiffError> {
        let piece = std::mem::take(&mut self.pending);
        match self.count {
            None => self.read_header(&piece)?,
            Some(_) => self.read_chunk(&piece)?,
        }
        self.pending = piece;
        self.pending.clear();
        Ok(())
    }

    fn read_header(&mut self, piece: &[u8]) -> Result<(), DiffError> {
        if piece[0..8] != MAGIC {
            return Err(corrupt("not a diff state (bad magic)"));
        }
        let sum = u64_at(piece, 24);
        if xxh3_64(&piece[0..24]) != sum {
            return Err(corrupt("header checksum mismatch"));
        }
        let version = u32::from_le_bytes([piece[8], piece[9], piece[10], piece[11]]);
        if version != FORMAT_VERSION {
            return Err(corrupt(format!("unknown format version {version}")));
        }
        let per_chunk = u32::from_le_bytes([piece[12], piece[13], piece[14], piece[15]]);
        let count = u64_at(piece, 16);
        if per_chunk == 0 || u32::try_from(count).is_err() {
            return Err(corrupt("impossible header values"));
        }
        self.per_chunk = per_chunk;
        self.count = Some(count);
        self.entries = Vec::with_capacity(count as usize);
        Ok(())
    }

    fn read_chunk(&mut self, piece: &[u8]) -> Result<(), DiffError> {
        let body = &piece[..piece.len() - 8];
        if xxh3_64(body) != u64_at(piece, piece.len() - 8) {
            return Err(corrupt(format!(
                "chunk checksum mismatch at entry {}",
                self.entries.len()
            )));
        }
        let mut last = self.entries.last().map(|entry| entry.key);
        for pair in body.chunks_exact(16) {
            let entry = Entry {
                key: u64_at(pair, 0),
                row: u64_at(pair, 8),
            };
            if last.is_some_and(|last| last >= entry.key) {
                return Err(corrupt(format!(
                    "keys not strictly increasing at entry {}",
                    self.entries.len()
                )));
            }
            last = Some(entry.key);
            self.entries.push(entry);
        }
        Ok(())
    }

    pub fn finish(self) -> Result<State, DiffError> {
        match self.count {
            None => Err(corrupt("truncated before the end of the header")),
            Some(count) if count as usize != self.entries.len() || !self.pending.is_empty() => {
                Err(corrupt(format!(
                    "truncated: {} of {count} entries",
                    self.entries.len()
                )))
            }
            Some(_) => Ok(State::from_sorted(self.entries)),
        }
    }
}

/// The removed keys of `delta` as the entries its encoding stores.
pub fn removed_entries(delta: &Delta) -> Vec<Entry> {
    delta
        .removed
        .iter()
        .map(|&key| Entry { key, row: 0 })
        .collect()
}

/// Whole encoding of a delta in one buffer (tests, small deltas).
pub fn encode_delta(delta: &Delta) -> Vec<u8> {
    let removed = removed_entries(delta);
    let mut out = Vec::new();
    for entries in [&delta.puts[..], &removed[..]] {
        let mut encoder = Encoder::over(entries, ENTRIES_PER_CHUNK);
        while encoder.next_piece(&mut out) {}
    }
    out
}

/// Rebuilds a delta from bytes fed in any split.
#[derive(Debug, Default)]
pub struct DeltaDecoder {
    puts: Decoder,
    removed: Decoder,
}

impl DeltaDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) -> Result<(), DiffError> {
        let used = if self.puts.is_complete() {
            0
        } else {
            self.puts.push_some(bytes)?
        };
        self.removed.push(&bytes[used..])
    }

    pub fn finish(self) -> Result<Delta, DiffError> {
        let puts = self.puts.finish()?.into_entries();
        let removed = self.removed.finish()?;
        let delta = Delta {
            puts,
            removed: removed.entries().iter().map(|entry| entry.key).collect(),
        };
        delta.check()?;
        Ok(delta)
    }
}

/// Decodes a whole delta encoding.
pub fn decode_delta(bytes: &[u8]) -> Result<Delta, DiffError> {
    let mut decoder = DeltaDecoder::new();
    decoder.push(bytes)?;
    decoder.finish()
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Decodes a whole encoding.
pub fn decode(bytes: &[u8]) -> Result<State, DiffError> {
    let mut decoder = Decoder::new();
    decoder.push(bytes)?;
    decoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(len: u64) -> State {
        let entries = (0..len)
            .map(|i| Entry::delivered(i * 3 + 1, i.wrapping_mul(0x9e37_79b9)))
            .collect();
        State::new(entries).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn round_trips_in_any_split_and_chunk_size() {
        for len in [0u64, 1, 7, 100] {
            let state = state(len);
            for per_chunk in [1u32, 3, 64] {
                let mut bytes = Vec::new();
                let mut encoder = Encoder::with_chunk(&state, per_chunk);
                while encoder.next_piece(&mut bytes) {}
                assert_eq!(bytes.len(), encoded_len(len as usize, per_chunk));
                for split in [1usize, 5, 17, bytes.len().max(1)] {
                    let mut decoder = Decoder::new();
                    for piece in bytes.chunks(split) {
                        decoder.push(piece).unwrap_or_else(|err| panic!("{err}"));
                    }
                    assert_eq!(
                        decoder.finish().unwrap_or_else(|err| panic!("{err}")),
                        state
                    );
                }
            }
        }
    }

    #[test]
    fn damage_is_detected() {
        let bytes = encode(&state(10));
        let mut flipped = bytes.clone();
        flipped[HEADER_LEN + 20] ^= 1;
        assert!(
            matches!(decode(&flipped), Err(DiffError::Corrupt(m)) if m.contains("chunk checksum"))
        );
        let mut header = bytes.clone();
        header[17] ^= 1;
        assert!(
            matches!(decode(&header), Err(DiffError::Corrupt(m)) if m.contains("header checksum"))
        );
        assert!(
            matches!(decode(&bytes[..bytes.len() - 3]), Err(DiffError::Corrupt(m)) if m.contains("truncated"))
        );
        assert!(matches!(decode(&bytes[..10]), Err(DiffError::Corrupt(m)) if m.contains("header")));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            matches!(decode(&longer), Err(DiffError::Corrupt(m)) if m.contains("after the last chunk"))
        );
        assert!(
            matches!(decode(b"not a state, not at all, no.....xx"), Err(DiffError::Corrupt(m)) if m.contains("magic"))
        );
    }

    #[test]
    fn deltas_round_trip_in_any_split() {
        for (puts, removed) in [(0u64, 0u64), (3, 0), (0, 4), (70_000, 65_537)] {
            let delta = Delta {
                puts: (0..puts)
                    .map(|i| Entry::delivered(i * 2 + 1, i + 1))
                    .collect(),
                removed: (0..removed).map(|i| i * 2 + 2).collect(),
            };
            let bytes = encode_delta(&delta);
            for split in [1usize, 7, 4096, bytes.len().max(1)] {
                if split == 1 && bytes.len() > 10_000 {
                    continue;
                }
                let mut decoder = DeltaDecoder::new();
                for piece in bytes.chunks(split) {
                    decoder.push(piece).unwrap_or_else(|err| panic!("{err}"));
                }
                assert_eq!(
                    decoder.finish().unwrap_or_else(|err| panic!("{err}")),
                    delta
                );
            }
            assert!(decode_delta(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode_delta(&longer).is_err());
        }
        // A whole state is not a delta (its removed part is missing).
        assert!(decode_delta(&encode(&state(5))).is_err());
    }

    #[test]
    fn unsorted_keys_are_refused() {
        let entries = [Entry::delivered(5, 1), Entry::delivered(2, 1)];
        let mut bytes = header(2, 64).to_vec();
        let start = bytes.len();
        for entry in entries {
            bytes.extend_from_slice(&entry.key.to_le_bytes());
            bytes.extend_from_slice(&entry.row.to_le_bytes());
        }
        let sum = xxh3_64(&bytes[start..]);
        bytes.extend_from_slice(&sum.to_le_bytes());
        assert!(
            matches!(decode(&bytes), Err(DiffError::Corrupt(m)) if m.contains("strictly increasing"))
        );
    }
}
