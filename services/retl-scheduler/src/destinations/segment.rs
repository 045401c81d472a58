//! The Segment-compatible tracking API destination: records become `identify`, `track` or
//! `group` messages POSTed to `<endpoint>/v1/batch` (fixtures/wire/segment-and-rudderstack.md).
//! The same wire works for Segment and RudderStack (its data-plane URL as `endpoint`).
//!
//! Settings: `endpoint` (default `https://api.segment.io`; EU workspaces
//! `https://events.eu1.segmentapis.com`; a RudderStack data plane URL), `batch_size`
//! (records per batch, 1–2500 — Segment's per-batch event limit — default 500),
//! `max_concurrency` (1–32, default 4). Secret: the write key, sent as HTTP Basic with the
//! key as user name and an empty password (both APIs accept it). Default rate: 200
//! requests/s per write key (Segment recommends ≤ 1000/s per workspace).
//!
//! Sync options: `call` = `identify` (default) | `track` | `group`; `event` (required for
//! `track`); `user_id_field` names the key or mapped field that holds the user id
//! (default: the record key — one column's value, several columns joined as
//! `col=value|…` in column order); `group_id_field` the same for a group's id. Mapped fields
//! become `traits` (identify, group) or `properties` (track). A `group` call without a
//! `user_id_field` sends `anonymousId` = `backflow-group-<groupId>` (one of userId /
//! anonymousId is required). A record whose user id is null or empty fails without being
//! sent (Segment would accept and drop it).
//!
//! `messageId` = `<idempotency key>:<key hash>` (under 100 characters, or
//! `bf-<hash of the key>:<key hash>` when longer): deterministic, so a resent batch is
//! deduplicated by the API (Segment documents it; the fixture documents none for RudderStack,
//! where a resend after a lost answer repeats the events — identify traits converge,
//! track events count twice). A message over 32,000 bytes fails alone (Segment drops it
//! with a 200); a batch is split into requests of at most 500,000 bytes (both decimal, as
//! analytics-go counts). There is no delete: deletes are unsupported.
//!
//! Answers: every 2xx accepts (Segment's body `{"success": true}` is unverified and not
//! read; RudderStack answers `text/plain` `OK`). 400 / 413 refuse the request's records
//! (the other requests of the batch stand), 401/403 credentials, 429 rate limit with
//! `Retry-After` (or `X-RateLimit-Reset` seconds), 5xx transient. Where the fixture marks
//! the status of a missing user id as unverified, the record is refused before sending.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Map, Value};

use super::http;
use super::settings::{bounded, json_text, only_known, optional};
use super::{
    BatchResult, Capabilities, Destination, DestinationError, DestinationKind, DestinationSettings,
    Operation, OutboundBatch, OutboundRecord, RecordOutcome, RecordResult,
};

const KNOWN: &[&str] = &["endpoint", "batch_size", "max_concurrency"];
pub const DEFAULT_ENDPOINT: &str = "https://api.segment.io";
/// analytics-go's `maxMessageBytes`.
pub const MAX_MESSAGE_BYTES: usize = 32_000;
/// analytics-go's `maxBatchBytes`.
pub const MAX_REQUEST_BYTES: usize = 500_000;
/// Room for `{"batch":[…],"context":…,"sentAt":…}` around the messages.
const ENVELOPE_BYTES: usize = 256;

#[derive(Debug)]
pub struct SegmentDestination {
    batch_url: reqwest::Url,
    endpoint: String,
    authorization: String,
    key_fingerprint: String,
    client: reqwest::Client,
    batch_size: usize,
    max_concurrency: usize,
}

/// Which call the sync makes, from its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Identify,
    Track { event: String },
    Group,
}

impl Call {
    pub fn from_options(
        options: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, DestinationError> {
        match optional(options, "call").unwrap_or("identify") {
            "identify" => Ok(Call::Identify),
            "group" => Ok(Call::Group),
            "track" => match optional(options, "event") {
                Some(event) => Ok(Call::Track {
                    event: event.to_string(),
                }),
                None => Err(DestinationError::Settings(
                    "the track call needs the option event".into(),
                )),
            },
            other => Err(DestinationError::Settings(format!(
                "call must be identify, track or group, not {other:?}"
            ))),
        }
    }
}

impl SegmentDestination {
    pub fn new(
        settings: &DestinationSettings,
        write_key: Option<&str>,
    ) -> Result<Self, DestinationError> {
        only_known(settings, KNOWN)?;
        let endpoint = optional(settings, "endpoint").unwrap_or(DEFAULT_ENDPOINT);
        let base = http::base_url("endpoint", endpoint)?;
        let batch_url = base
            .join(&format!("{}/v1/batch", base.path().trim_end_matches('/')))
            .map_err(|e| DestinationError::Settings(format!("endpoint: {e}")))?;
        let write_key = write_key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                DestinationError::Settings("the write key (secret) is required".into())
            })?;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{write_key}:"));
        Ok(Self {
            endpoint: http::authority(&batch_url),
            batch_url,
            authorization: format!("Basic {basic}"),
            key_fingerprint: http::fingerprint(write_key),
            client: http::client(Duration::from_secs(30))?,
            batch_size: bounded(settings, "batch_size", 500, 1, 2500)?,
            max_concurrency: bounded(settings, "max_concurrency", 4, 1, 32)?,
        })
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), DestinationError> {
        let response = self
            .client
            .post(self.batch_url.clone())
            .header("authorization", &self.authorization)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| http::transport_error(&self.endpoint, &e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let answer = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(&self.endpoint, &e))?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        let mut error = http::status_error(status, &headers, http::excerpt(&answer));
        if let DestinationError::RateLimited {
            retry_after: retry_after @ None,
            ..
        } = &mut error
        {
            *retry_after = headers
                .get("x-ratelimit-reset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
        }
        Err(error)
    }
}

/// `messageId` of a record in a batch (see the module doc).
pub fn message_id(idempotency_key: &str, key_hash: u64) -> String {
    let plain = format!("{idempotency_key}:{key_hash:016x}");
    if plain.len() < 100 {
        plain
    } else {
        let digest = xxhash_rust::xxh3::xxh3_64(idempotency_key.as_bytes());
        format!("bf-{digest:016x}:{key_hash:016x}")
    }
}

/// The id a record stands for: `field` looked up in the key then the fields, or the key.
fn record_id(record: &OutboundRecord, field: Option<&str>) -> Option<String> {
    match field {
        Some(name) => record
            .key
            .get(name)
            .or_else(|| record.fields.get(name))
            .and_then(json_text),
        None if record.key.len() == 1 => record.key.values().next().and_then(json_text),
        None => {
            let mut parts: Vec<(String, String)> = record
                .key
                .iter()
                .map(|(k, v)| (k.clone(), json_text(v).unwrap_or_default()))
                .collect();
            parts.sort();
            Some(
                parts
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("|"),
            )
        }
    }
    .filter(|id| !id.is_empty())
}

/// The message of one record, or why it cannot be sent.
pub fn message(
    call: &Call,
    batch: &OutboundBatch,
    record: &OutboundRecord,
) -> Result<Value, String> {
    let user_field = optional(&batch.options, "user_id_field");
    let fields = Value::Object(record.fields.to_map());
    let mut m = Map::new();
    m.insert(
        "messageId".into(),
        json!(message_id(&batch.idempotency_key, record.key_hash)),
    );
    match call {
        Call::Identify | Call::Track { .. } => {
            let user = record_id(record, user_field)
                .ok_or_else(|| "the record has no user id (null or empty)".to_string())?;
            m.insert("userId".into(), json!(user));
            if let Call::Track { event } = call {
                m.insert("type".into(), json!("track"));
                m.insert("event".into(), json!(event));
                m.insert("properties".into(), fields);
            } else {
                m.insert("type".into(), json!("identify"));
                m.insert("traits".into(), fields);
            }
        }
        Call::Group => {
            let group = record_id(record, optional(&batch.options, "group_id_field"))
                .ok_or_else(|| "the record has no group id (null or empty)".to_string())?;
            m.insert("type".into(), json!("group"));
            match user_field {
                Some(_) => {
                    let user = record_id(record, user_field)
                        .ok_or_else(|| "the record has no user id (null or empty)".to_string())?;
                    m.insert("userId".into(), json!(user));
                }
                None => {
                    m.insert(
                        "anonymousId".into(),
                        json!(format!("backflow-group-{group}")),
                    );
                }
            }
            m.insert("groupId".into(), json!(group));
            m.insert("traits".into(), fields);
        }
    }
    Ok(Value::Object(m))
}

/// Splits encoded messages into request bodies of at most [`MAX_REQUEST_BYTES`];
/// returns each body with the indexes of the records it carries.
pub fn request_bodies(messages: Vec<(usize, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<usize>)> {
    let sent_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let tail = format!(
        "],\"context\":{{\"library\":{{\"name\":\"backflow\",\"version\":\"{}\"}}}},\"sentAt\":\"{sent_at}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    let mut bodies = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    let mut indexes = Vec::new();
    for (index, encoded) in messages {
        if !indexes.is_empty()
            && body.len() + encoded.len() + 1 + ENVELOPE_BYTES > MAX_REQUEST_BYTES
        {
            body.extend_from_slice(tail.as_bytes());
            bodies.push((std::mem::take(&mut body), std::mem::take(&mut indexes)));
        }
        if indexes.is_empty() {
            body.extend_from_slice(b"{\"batch\":[");
        } else {
            body.push(b',');
        }
        body.extend_from_slice(&encoded);
        indexes.push(index);
    }
    if !indexes.is_empty() {
        body.extend_from_slice(tail.as_bytes());
        bodies.push((body, indexes));
    }
    bodies
}

#[async_trait::async_trait]
impl Destination for SegmentDestination {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Segment
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_records: self.batch_size,
            max_concurrency: self.max_concurrency,
            deletes: false,
            idempotent: true,
            default_rate_per_second: 200.0,
        }
    }

    fn rate_limit_key(&self) -> String {
        format!("segment:{}:{}", self.endpoint, self.key_fingerprint)
    }

    /// Posts an empty batch. RudderStack checks the write key here (401); Segment is
    /// documented to answer 200 to nearly everything, so a wrong key may pass.
    async fn test(&self) -> Result<(), DestinationError> {
        self.post(br#"{"batch":[]}"#.to_vec()).await
    }

    async fn send(&self, batch: &OutboundBatch) -> Result<BatchResult, DestinationError> {
        if batch.operation == Operation::Delete {
            return Err(DestinationError::Unsupported(
                "deletes (the tracking api has no delete call)".into(),
            ));
        }
        let call = Call::from_options(&batch.options)?;
        let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; batch.records.len()];
        let mut encoded = Vec::with_capacity(batch.records.len());
        for (index, record) in batch.records.iter().enumerate() {
            match message(&call, batch, record) {
                Ok(value) => {
                    let bytes = serde_json::to_vec(&value).unwrap_or_default();
                    if bytes.len() > MAX_MESSAGE_BYTES {
                        outcomes[index] = Some(RecordOutcome::Failed {
                            message: format!(
                                "the message is {} bytes, over the {MAX_MESSAGE_BYTES}-byte limit of a message",
                                bytes.len()
                            ),
                            status: 0,
                        });
                    } else {
                        encoded.push((index, bytes));
                    }
                }
                Err(message) => {
                    outcomes[index] = Some(RecordOutcome::Failed { message, status: 0 })
                }
            }
        }
        let mut requests = 0;
        for (body, indexes) in request_bodies(encoded) {
            requests += 1;
            let outcome = match self.post(body).await {
                Ok(()) => RecordOutcome::Delivered,
                Err(DestinationError::Rejected { message, status }) => {
                    RecordOutcome::Failed { message, status }
                }
                // Retry the whole batch: messages already accepted are deduplicated by
                // their messageId.
                Err(other) => return Err(other),
            };
            for index in indexes {
                outcomes[index] = Some(outcome.clone());
            }
        }
        Ok(BatchResult {
            results: batch
                .records
                .iter()
                .zip(outcomes)
                .map(|(record, outcome)| RecordResult {
                    key_hash: record.key_hash,
                    outcome: outcome.unwrap_or(RecordOutcome::Delivered),
                })
                .collect(),
            requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch(options: &[(&str, &str)], records: Vec<OutboundRecord>) -> OutboundBatch {
        OutboundBatch {
            sync_id: "s".into(),
            run_id: "r".into(),
            operation: Operation::Upsert,
            idempotency_key: "r:upsert:0".into(),
            options: Arc::new(
                options
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            records,
        }
    }

    fn record(key: Value, fields: Value) -> OutboundRecord {
        OutboundRecord {
            key_hash: 0xab,
            key: key.as_object().cloned().unwrap().into(),
            fields: fields.as_object().cloned().unwrap().into(),
        }
    }

    #[test]
    fn calls_map_like_the_fixtures() {
        let r = record(
            json!({"id": "019mr8mf4r"}),
            json!({"email": "jake@yahoo.com", "age": 26, "org": "8e9df332ac"}),
        );
        let b = batch(&[], vec![r.clone()]);
        assert_eq!(
            message(&Call::Identify, &b, &r).unwrap(),
            json!({"type": "identify", "userId": "019mr8mf4r", "messageId": "r:upsert:0:00000000000000ab",
                   "traits": {"email": "jake@yahoo.com", "age": 26, "org": "8e9df332ac"}})
        );
        let track = Call::from_options(
            &[
                ("call".to_string(), "track".to_string()),
                ("event".to_string(), "Song Played".to_string()),
            ]
            .into_iter()
            .collect(),
        )
        .unwrap();
        let m = message(&track, &b, &r).unwrap();
        assert_eq!(
            (m["type"].as_str(), m["event"].as_str()),
            (Some("track"), Some("Song Played"))
        );
        assert_eq!(m["properties"]["age"], json!(26));

        let g = batch(&[("group_id_field", "org")], vec![r.clone()]);
        let m = message(&Call::Group, &g, &r).unwrap();
        assert_eq!(m["groupId"], json!("8e9df332ac"));
        assert_eq!(m["anonymousId"], json!("backflow-group-8e9df332ac"));
        let g = batch(
            &[("group_id_field", "org"), ("user_id_field", "id")],
            vec![r.clone()],
        );
        assert_eq!(
            message(&Call::Group, &g, &r).unwrap()["userId"],
            json!("019mr8mf4r")
        );

        let no_user = record(json!({"id": null}), json!({}));
        assert!(message(&Call::Identify, &b, &no_user).is_err());
        assert!(Call::from_options(
            &[("call".to_string(), "track".to_string())]
                .into_iter()
                .collect()
        )
        .is_err());
    }

    #[test]
    fn message_ids_stay_under_100_characters() {
        assert_eq!(
            message_id("run:upsert:1", 1),
            "run:upsert:1:0000000000000001"
        );
        let long = "x".repeat(120);
        let id = message_id(&long, 1);
        assert!(id.len() < 100 && id.starts_with("bf-"), "{id}");
        assert_eq!(id, message_id(&long, 1));
    }

    #[test]
    fn requests_stay_under_500_kb() {
        let text = format!("\"{}\"", "a".repeat(30_000));
        let messages: Vec<(usize, Vec<u8>)> =
            (0..40).map(|i| (i, text.clone().into_bytes())).collect();
        let bodies = request_bodies(messages);
        assert_eq!(bodies.len(), 3);
        for (body, _) in &bodies {
            assert!(body.len() <= MAX_REQUEST_BYTES, "{}", body.len());
            let v: Value = serde_json::from_slice(body).unwrap();
            assert!(v["batch"].is_array());
        }
        let carried: usize = bodies.iter().map(|(_, i)| i.len()).sum();
        assert_eq!(carried, 40);
    }
}
