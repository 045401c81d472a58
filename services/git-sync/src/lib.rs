//! The git-sync service knows where each dbt project lives (repository, branch, path,
//! credential) and records every attempt to load it. Creating or changing a
//! connection queues a model sync and announces the change to the rest of Backflow.

pub mod app;
pub mod config;
pub mod error;
pub mod grpc;
pub mod settings;
pub mod store;

pub use app::App;
pub use config::Config;
pub use error::GitSyncError;
