//! The Reverse ETL scheduler owns syncs (model → destination, mode, field mapping,
//! schedule) and records every run. It turns a manual trigger, a schedule tick or a
//! successful dbt Cloud job or dbt Core run into exactly one run and queues `cmd.retl.run_sync.<id>`
//! for the workers, through the outbox in the same transaction.

pub mod app;
pub mod config;
pub mod consumers;
pub mod destination_admin;
pub mod destination_config;
pub mod destinations;
pub mod diff;
pub mod error;
pub mod executor;
pub mod grpc;
pub mod run;
pub mod schedule;
pub mod scheduler;
pub mod store;
pub mod sync;
pub mod ticker;
pub mod trigger;
pub mod warehouse_diff;

pub use app::App;
pub use config::Config;
pub use error::{RetlError, RetlStartupError};
