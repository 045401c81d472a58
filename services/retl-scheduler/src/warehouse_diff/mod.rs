//! The warehouse-side diff strategy (issue 10 point 3, like Segment's
//! `__segment_reverse_etl`): the sync's state lives in a table of the source's Backflow
//! schema (key hash, row hash, delivered flag, key values for mirror deletes), the warehouse
//! computes hashes and compares them in SQL ([`sql`]), and only the changed rows travel to
//! Backflow. After delivery the run commits the new state minus failures in one warehouse
//! transaction, built by [`delta`] from the same per-record rules as the Backflow-side commit
//! (`diff::rules`). [`strategy`] picks the strategy of a run. The I/O is in
//! `store::warehouse_state` and `store::ledger`.

pub mod delta;
pub mod sql;
pub mod strategy;

pub use delta::{build_delta, Changed, Missing};
pub use strategy::{choose, Strategy};
