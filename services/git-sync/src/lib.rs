//! The git-sync service knows where each dbt project lives (repository, branch, path,
//! credential) and records every attempt to load it. Creating or changing a
//! connection queues a model sync and announces the change to the rest of Backflow.

pub mod app;
pub mod config;
pub mod consumers;
pub mod error;
pub mod git;
pub mod git_auth;
pub mod grpc;
pub mod http;
pub mod poller;
pub mod retry;
pub mod settings;
pub mod snapshot_builder;
pub mod sources;
pub mod store;
pub mod sync;
pub mod webhooks;

pub use app::App;
pub use config::Config;
pub use error::{GitSyncError, GitSyncStartupError};
