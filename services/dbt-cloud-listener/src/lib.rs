//! The dbt Cloud listener knows which dbt Cloud accounts a workspace uses (access URL,
//! account id and the credential holding the API token), keeps a webhook subscription in
//! dbt Cloud for every job enabled syncs wait on, and records the webhook deliveries it
//! receives, so that a delivery retried by dbt Cloud, or a run found again by
//! reconciliation, announces a completed run only once. For syncs that run only when
//! their model was rebuilt it then reads the run's `run_results.json` (`artifact_fetch`).

pub mod access_url;
pub mod api;
pub mod app;
pub mod artifact_fetch;
pub mod config;
pub mod connection_check;
pub mod connections;
pub mod consumers;
pub mod dbt_core;
pub mod delivery;
pub mod error;
pub mod grpc;
pub mod http;
pub mod reconcile;
pub mod run_results;
pub mod secrets;
#[cfg(feature = "test-support")]
pub mod stand_in;
pub mod store;
pub mod subscription_plan;
pub mod watch;
pub mod webhook;

pub use app::App;
pub use config::Config;
pub use error::{DbtCloudError, DbtCloudStartupError};
