//! The Backflow-side diff of a Reverse ETL run (DESIGN §5, issue 10 point 3): rows are
//! identified by an XXH3 hash of their primary key and compared by an XXH3 hash of their
//! mapped columns, both over a canonical typed encoding ([`encode`]); the committed state of
//! a sync is a sorted run of `(key hash, row hash)` pairs ([`state`]). A run streams its
//! extract through a [`Diff`] ([`engine`]), replays the batches that hold work to pick the
//! rows to send ([`select`]), and after delivery commits the new state minus failures
//! ([`commit`]). [`codec`] is the stored form of a state. Everything here is pure; storing
//! states in the NATS object store lives in `store::diff_state`.

pub mod bitset;
pub mod codec;
pub mod commit;
pub mod encode;
pub mod engine;
pub mod error;
pub mod mode;
pub mod rules;
pub mod select;
pub mod state;

pub use commit::Delta;
pub use encode::{BatchHashes, RowHasher, RowSpec};
pub use engine::{BatchSummary, Counts, Diff, DiffOutcome};
pub use error::DiffError;
pub use mode::{Change, DeliveryMode};
pub use select::{Delivery, RejectReason, Rejection, Selection};
pub use state::{Entry, State, DELIVERED, ROW_HASH_MASK};

#[cfg(test)]
mod mode_table_tests;
