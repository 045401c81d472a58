//! Why hashing, diffing or decoding a sync's state failed. These are the diff core's own
//! errors; the run executor maps them to its run failure (they never reach gRPC directly).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("a sync needs at least one primary key column")]
    NoKeyColumns,
    #[error("column {0:?} is not in the extracted rows")]
    MissingColumn(String),
    #[error("column {column:?} has type {data_type}, which syncs do not support")]
    UnsupportedType { column: String, data_type: String },
    #[error("column {column:?} holds a value longer than 4 GiB")]
    ValueTooLong { column: String },
    #[error("more than 4294967295 rows in one state or extract")]
    TooManyRows,
    #[error("batch {batch} replayed with {got} rows, extracted with {expected}")]
    ReplayMismatch {
        batch: usize,
        expected: u64,
        got: u64,
    },
    #[error("batch {0} was never extracted")]
    UnknownBatch(usize),
    #[error("stored diff state is corrupt: {0}")]
    Corrupt(String),
}
