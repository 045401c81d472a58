//! Destinations: where a run's records go. One [`Destination`] trait, one implementation
//! per [`DestinationKind`] (webhook, Segment-compatible tracking API, HubSpot CRM,
//! Salesforce Bulk API 2.0, a PostgreSQL table), each speaking its API's documented wire
//! format (`fixtures/wire/`).
//!
//! The executor hands a destination one [`OutboundBatch`] at a time and gets a result per
//! record where the API gives one. What every destination shares — batching to the
//! kind's size, bounded concurrency, one rate limit per destination account shared by all
//! syncs, `Retry-After`, exponential back-off with jitter (retry schedules as data),
//! idempotency keys — lives beside the trait (`delivery`, `rate_limit`, `retry`), so a
//! kind's module only maps records to requests and responses to results.
//!
//! Contract (lead, issue 10): the types below are shared by the executor (helper `exec`)
//! and the destination implementations (helper `dest`); change them only together.

use std::sync::Arc;

pub mod csv;
pub mod delivery;
mod factory;
pub mod http;
pub mod hubspot;
pub mod json_object;
pub mod postgres;
pub mod rate_limit;
pub mod retry;
pub mod salesforce;
pub mod segment;
pub mod settings;
pub mod standard_webhooks;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod webhook;

pub use delivery::{Batcher, DeliveredBatch, Deliverer, DeliveryOptions};
pub use factory::{build, kind_from_name, kind_from_wire, kind_name, kind_to_wire};
pub use json_object::JsonObject;
pub use retry::RetrySchedule;

/// Which API a destination speaks (the proto enum, minus "unspecified").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationKind {
    Webhook,
    Segment,
    Hubspot,
    Salesforce,
    Postgres,
}

/// What a batch asks the destination to do with its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Create or update by key (sync modes upsert, and the added/updated part of mirror).
    Upsert,
    /// Create only (mode insert).
    Insert,
    /// Update existing only (mode update).
    Update,
    /// Delete by key (mirror). Only keys Backflow delivered earlier ever reach this.
    Delete,
}

/// One record to send. `key` and `fields` are JSON objects: `key` holds the primary-key
/// columns (source column names), `fields` the mapped destination fields after the field
/// mapping, constants and null policy were applied. Deletes carry an empty `fields`.
/// Both are encoded once, as text ([`JsonObject`]): a body that embeds them splices the
/// text, a destination that reshapes values reads the parsed map.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundRecord {
    /// XXH3 hash of the key (the diff's identity of the record); results refer to it.
    pub key_hash: u64,
    pub key: JsonObject,
    pub fields: JsonObject,
}

/// Records of one operation, at most the destination's [`Capabilities::max_batch_records`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundBatch {
    pub sync_id: String,
    pub run_id: String,
    pub operation: Operation,
    /// Stable idempotency key of this batch: the same records resent after a crash or a
    /// retry carry the same key (`<run>:<operation>:<hash of the records and their
    /// versions>`, [`delivery::content_key`]), and a batch with other records never does,
    /// so destinations that honour one (webhook `webhook-id`, Segment `messageId` per
    /// record, ...) deduplicate resends without dropping anything new.
    pub idempotency_key: String,
    /// Per-sync destination options (object type, event name, table ...).
    pub options: Arc<std::collections::BTreeMap<String, String>>,
    pub records: Vec<OutboundRecord>,
}

/// The outcome of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    Delivered,
    /// The destination refused this record; retried next run (fresh values) until the
    /// sync's attempt limit. `status` is the HTTP status (0 when not HTTP).
    Failed {
        message: String,
        status: u16,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordResult {
    pub key_hash: u64,
    pub outcome: RecordOutcome,
}

/// What one batch came to: one result per record of the batch (APIs without per-record
/// results report the batch's outcome for each record).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchResult {
    pub results: Vec<RecordResult>,
    /// Requests this batch took (incl. retries, polling).
    pub requests: u64,
}

/// Failures of a whole batch. The delivery layer retries the retryable ones on its
/// schedule; what is left becomes a failure of every record in the batch.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DestinationError {
    #[error("destination settings: {0}")]
    Settings(String),
    #[error("destination refused the credentials: {0}")]
    Authentication(String),
    /// The API's rate limit (429, Salesforce's 403 `REQUEST_LIMIT_EXCEEDED`): `message` is
    /// what the destination said, kept for the records when retries run out.
    #[error("destination rate limit reached: {message}{}", retry_note(.retry_after))]
    RateLimited {
        retry_after: Option<std::time::Duration>,
        status: u16,
        message: String,
    },
    /// 5xx, timeouts, dropped connections: worth retrying.
    #[error("destination temporarily failed: {message}")]
    Transient {
        message: String,
        status: u16,
        retry_after: Option<std::time::Duration>,
    },
    /// 4xx other than auth/rate limit: retrying the same request will not help.
    #[error("destination refused the batch: {message}")]
    Rejected { message: String, status: u16 },
    /// 410 Gone from a webhook endpoint: per Standard Webhooks the endpoint is to be
    /// disabled. Never retried; the run stops sending and the syncs using the destination
    /// are paused (`executor::endpoint_gone`). `endpoint` is the URL's `host:port`.
    #[error("destination endpoint {endpoint} answered 410 gone: {message}")]
    EndpointGone { endpoint: String, message: String },
    #[error("destination does not support {0}")]
    Unsupported(String),
}

fn retry_note(retry_after: &Option<std::time::Duration>) -> String {
    retry_after
        .map(|after| format!(" (retry after {} ms)", after.as_millis()))
        .unwrap_or_default()
}

/// What the delivery layer needs to know about a destination.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capabilities {
    pub max_batch_records: usize,
    /// Batches of one sync in flight at once.
    pub max_concurrency: usize,
    /// Whether [`Operation::Delete`] is possible.
    pub deletes: bool,
    /// Whether resending a batch with the same idempotency key is harmless.
    pub idempotent: bool,
    /// Default requests per second for one account when the destination sets none.
    pub default_rate_per_second: f64,
}

/// One destination, configured (nothing dialled until the first call).
#[async_trait::async_trait]
pub trait Destination: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> DestinationKind;
    fn capabilities(&self) -> Capabilities;
    /// The account the shared rate limit is keyed by (e.g. HubSpot portal, Segment write
    /// key hash, webhook host).
    fn rate_limit_key(&self) -> String;
    /// Checks settings and credentials with the cheapest call the API offers.
    async fn test(&self) -> Result<(), DestinationError>;
    /// Sends one batch once (no retries here: the delivery layer retries).
    async fn send(&self, batch: &OutboundBatch) -> Result<BatchResult, DestinationError>;
}

/// Non-secret settings, as stored on the destination.
pub type DestinationSettings = std::collections::BTreeMap<String, String>;
