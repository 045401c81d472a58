//! What every Backflow service needs and none should write twice: layered
//! configuration, telemetry, the database handle and migrations, JetStream streams and
//! consumers, the transactional outbox and inbox, gRPC server defaults and shutdown.
//!
//! Services build on these pieces; they never depend on each other.

pub mod auth;
pub mod bus;
pub mod config;
pub mod credentials_client;
pub mod db;
pub mod dead_letter;
pub mod dead_letter_grpc;
pub mod front_door;
pub mod grpc;
pub mod inbox;
pub mod lease;
pub mod memory;
pub mod metrics;
pub mod outbox;
pub mod request_error;
pub mod service;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tls;
pub mod trace_grpc;
pub mod webhook_signature;

/// Milliseconds since the Unix epoch; the one clock format stored in every table.
pub fn now_unix_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// A new random identifier, time-ordered so that indexes stay compact.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
