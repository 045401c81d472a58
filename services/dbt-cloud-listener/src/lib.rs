//! The dbt Cloud listener knows which dbt Cloud accounts a workspace uses (access URL,
//! account id and the credential holding the API token) and records the webhook
//! deliveries it receives, so that a delivery retried by dbt Cloud, or found again by
//! polling, announces a completed run only once.

pub mod access_url;
pub mod api;
pub mod app;
pub mod config;
pub mod connections;
pub mod dbt_core;
pub mod delivery;
pub mod error;
pub mod grpc;
pub mod http;
pub mod run_results;
pub mod store;
pub mod webhook;

pub use app::App;
pub use config::Config;
pub use error::{DbtCloudError, DbtCloudStartupError};
