//! Local stand-ins of warehouse APIs for tests (feature `test-support`): real HTTP
//! servers (axum) that follow fixtures/wire exactly, so connector tests — this crate's and
//! the catalog's — exercise the same wire contract a real warehouse would hold them to.

pub mod bigquery;
pub mod databricks;
pub mod postgres;
pub mod snowflake;
