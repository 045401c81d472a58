//! Local stand-ins of the destination APIs for tests (feature `test-support`): real HTTP
//! servers on 127.0.0.1 port 0 that follow fixtures/wire exactly (auth checked, the
//! documented error shapes, 429 with `Retry-After`, multi-status answers), so this crate's
//! tests, the executor's and the cross-service tests hold the destinations to the same
//! wire contract a real API would.
//!
//! Each stand-in records what it holds ([`Holds`]: key → latest fields, deleted keys,
//! request count, writes applied per key) and can inject faults ([`Fault`]: an error
//! status, 429 + `Retry-After` in seconds or as an HTTP-date, a connection dropped before
//! or after the batch was applied, a request that never gets an answer).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

pub mod hubspot;
pub mod salesforce;
pub mod segment;
pub mod server;
pub mod webhook;

pub use server::{key_text, Fault, Holds};

use std::sync::Arc;

use super::{Operation, OutboundBatch, OutboundRecord};

/// Records `ids` with key `{"id": i}` (text when `text_ids`) and fields
/// `{"email": "user<i>@example.com", "name": "User <i>", "score": i}`; the key hash is
/// the XXH3 of the id's decimal text (any stable, distinct value will do in tests).
pub fn sample_records(ids: impl IntoIterator<Item = u64>, text_ids: bool) -> Vec<OutboundRecord> {
    ids.into_iter()
        .map(|i| {
            let id = if text_ids {
                serde_json::json!(format!("{i}"))
            } else {
                serde_json::json!(i)
            };
            OutboundRecord {
                key_hash: xxhash_rust::xxh3::xxh3_64(i.to_string().as_bytes()),
                key: object(serde_json::json!({ "id": id })).into(),
                fields: object(serde_json::json!({
                    "email": format!("user{i}@example.com"),
                    "name": format!("User {i}"),
                    "score": i,
                }))
                .into(),
            }
        })
        .collect()
}

/// The records as deletes (empty fields).
pub fn as_deletes(records: &[OutboundRecord]) -> Vec<OutboundRecord> {
    records
        .iter()
        .map(|r| OutboundRecord {
            fields: super::JsonObject::default(),
            ..r.clone()
        })
        .collect()
}

/// One batch of `records` with `options`.
pub fn batch(
    run: &str,
    sequence: u64,
    operation: Operation,
    options: &[(&str, &str)],
    records: Vec<OutboundRecord>,
) -> OutboundBatch {
    OutboundBatch {
        sync_id: "sync-test".into(),
        run_id: run.into(),
        operation,
        idempotency_key: super::delivery::idempotency_key(run, operation, sequence),
        options: Arc::new(
            options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        records,
    }
}

fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}
