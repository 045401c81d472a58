//! The second pass: given the same batches again (from the executor's spill of the
//! extract), picks the rows to deliver and the rows to reject, with their positions and key
//! hashes. Only batches [`DiffOutcome::needs_replay`] says hold work need to be read back,
//! so a run where nothing changed reads nothing twice.

use super::encode::BatchHashes;
use super::engine::DiffOutcome;
use super::error::DiffError;
use super::mode::Change;
use arrow_array::RecordBatch;

/// A row to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub row: usize,
    pub change: Change,
    /// What the executor reports back for a record that failed.
    pub key: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    NullKey { column: String },
    DuplicateKey,
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::NullKey { column } => write!(f, "primary key column {column:?} is null"),
            RejectReason::DuplicateKey => {
                write!(f, "primary key occurs more than once in the model")
            }
        }
    }
}

/// A row that is not sent, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub row: usize,
    pub reason: RejectReason,
}

/// What to do with one batch's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub deliver: Vec<Delivery>,
    pub rejected: Vec<Rejection>,
}

impl DiffOutcome {
    /// Whether batch `batch` holds rows to deliver or reject. When any key was duplicated,
    /// every batch does (the first occurrence of a duplicated key may be anywhere).
    pub fn needs_replay(&self, batch: usize) -> bool {
        let diff = &self.diff;
        let Some(&start) = diff.batch_starts.get(batch) else {
            return false;
        };
        let end = diff.batch_starts.get(batch + 1).copied().unwrap_or(start) as usize;
        let start = start as usize;
        !diff.dup_keys.is_empty()
            || diff.rejected_batches.binary_search(&batch).is_ok()
            || (diff.mode.delivers(Change::Added) && diff.added_rows.any_in(start, end))
            || (diff.mode.delivers(Change::Updated) && diff.updated_rows.any_in(start, end))
    }

    /// Picks the rows of batch number `batch` (the same batch, in the same order, that was
    /// pushed as that number) to deliver or reject under the diff's mode.
    pub fn select(&mut self, batch: usize, rows: &RecordBatch) -> Result<Selection, DiffError> {
        let diff = &mut self.diff;
        let (Some(&start), Some(&end)) = (
            diff.batch_starts.get(batch),
            diff.batch_starts.get(batch + 1),
        ) else {
            return Err(DiffError::UnknownBatch(batch));
        };
        if rows.num_rows() as u64 != end - start {
            return Err(DiffError::ReplayMismatch {
                batch,
                expected: end - start,
                got: rows.num_rows() as u64,
            });
        }
        let mut hashes = BatchHashes::default();
        diff.hasher.hash_keys(rows, &mut hashes)?;
        let mut selection = Selection::default();
        let mut nulls = hashes.null_keys.iter().peekable();
        let start = start as usize;
        for (row, &key) in hashes.keys.iter().enumerate() {
            if let Some(null) = nulls.next_if(|null| null.row == row) {
                let column = diff.hasher.spec().key_columns[null.key_column].clone();
                selection.rejected.push(Rejection {
                    row,
                    reason: RejectReason::NullKey { column },
                });
                continue;
            }
            if !diff.dup_keys.is_empty() && diff.dup_keys.binary_search(&key).is_ok() {
                selection.rejected.push(Rejection {
                    row,
                    reason: RejectReason::DuplicateKey,
                });
                continue;
            }
            let change = if diff.added_rows.get(start + row) {
                Change::Added
            } else if diff.updated_rows.get(start + row) {
                Change::Updated
            } else {
                continue;
            };
            if diff.mode.delivers(change) {
                selection.deliver.push(Delivery { row, change, key });
            }
        }
        Ok(selection)
    }
}
