//! The model catalog: warehouse sources, the dbt models of every Git connection at
//! every synced commit, and the Reverse ETL models built from them. It learns about
//! connections from git-sync's events and never calls git-sync directly.

pub mod app;
pub mod config;
pub mod consumers;
pub mod error;
pub mod grpc;
pub mod retl;
pub mod snapshot_fetcher;
pub mod source_kinds;
pub mod source_settings;
pub mod store;
pub mod warehouse_access;

pub use app::App;
pub use config::Config;
pub use error::{CatalogError, CatalogStartupError};
