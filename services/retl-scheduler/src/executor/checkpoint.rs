//! The checkpoint of a run: what the destination acknowledged, as 16-byte (key hash, row
//! word) entries stored in chunks beside the run (`retl_run_acks`). The row word is the
//! delivered row hash with the DELIVERED bit for upserts and 0 for deletes, so a resumed
//! run skips exactly the records whose acknowledged version it would send again. Chunks
//! are flushed a few times a second, not per batch, so a crash resends at most that
//! window (with the same idempotency keys where the destination honours them).

use crate::error::RetlError;
use crate::executor::error::ExecError;
use crate::store::SyncStore;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often acknowledged entries are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

pub fn encode(entries: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 16);
    for (key, row) in entries {
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&row.to_le_bytes());
    }
    out
}

pub fn decode(bytes: &[u8]) -> Vec<(u64, u64)> {
    bytes
        .chunks_exact(16)
        .map(|chunk| {
            let mut key = [0u8; 8];
            let mut row = [0u8; 8];
            key.copy_from_slice(&chunk[..8]);
            row.copy_from_slice(&chunk[8..]);
            (u64::from_le_bytes(key), u64::from_le_bytes(row))
        })
        .collect()
}

#[derive(Debug)]
pub struct Checkpoint {
    store: SyncStore,
    run_id: String,
    pending: Vec<(u64, u64)>,
    next_chunk: i64,
    last_flush: Instant,
    every: Duration,
}

impl Checkpoint {
    /// The entries acknowledged by earlier attempts of the run, and a checkpoint to add to.
    pub async fn load(
        store: &SyncStore,
        run_id: &str,
        every: Duration,
    ) -> Result<(HashMap<u64, u64>, Self), ExecError> {
        let chunks = store.load_acks(run_id).await?;
        let next_chunk = chunks.last().map(|(chunk, _)| chunk + 1).unwrap_or(0);
        let acked = chunks.iter().flat_map(|(_, bytes)| decode(bytes)).collect();
        Ok((
            acked,
            Self {
                store: store.clone(),
                run_id: run_id.to_string(),
                pending: Vec::new(),
                next_chunk,
                last_flush: Instant::now(),
                every,
            },
        ))
    }

    pub fn ack(&mut self, key: u64, row_word: u64) {
        self.pending.push((key, row_word));
    }

    /// Writes pending entries if it is time (or `force`).
    pub async fn flush(&mut self, force: bool) -> Result<(), ExecError> {
        if self.pending.is_empty() || (!force && self.last_flush.elapsed() < self.every) {
            return Ok(());
        }
        let bytes = encode(&self.pending);
        match self
            .store
            .save_acks(&self.run_id, self.next_chunk, &bytes)
            .await
        {
            Ok(()) => {}
            // An attempt of this run whose lease lapsed while the database was away wrote
            // this chunk after this attempt loaded the checkpoint (its entries are real
            // acknowledgements too): this attempt's go in the next free chunk.
            Err(RetlError::Storage(sqlx::Error::Database(error)))
                if error.is_unique_violation() =>
            {
                let chunks = self.store.load_acks(&self.run_id).await?;
                self.next_chunk = chunks.last().map(|(chunk, _)| chunk + 1).unwrap_or(0);
                self.store
                    .save_acks(&self.run_id, self.next_chunk, &bytes)
                    .await?;
            }
            Err(error) => return Err(error.into()),
        }
        self.next_chunk += 1;
        self.pending.clear();
        self.last_flush = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let entries = vec![(1, u64::MAX), (u64::MAX, 0), (7, 1 << 63)];
        assert_eq!(decode(&encode(&entries)), entries);
        assert!(decode(&[1, 2, 3]).is_empty());
    }
}
