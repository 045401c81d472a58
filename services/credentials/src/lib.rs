//! The credentials service keeps every secret Backflow needs (Git tokens, SSH keys,
//! GitHub App keys, dbt Cloud tokens, warehouse passwords, webhook secrets) encrypted
//! at rest and hands material only to trusted services. Tools can create, rotate,
//! list and delete secrets, but never read them back.

pub mod app;
pub mod config;
pub mod envelope;
pub mod error;
pub mod github_app;
pub mod grpc;
pub mod kinds;
pub mod secrets;
pub mod store;
pub mod tokens;

pub use app::App;
pub use config::Config;
pub use error::{CredentialsError, CredentialsStartupError};
