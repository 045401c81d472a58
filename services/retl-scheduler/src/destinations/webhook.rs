//! The HTTP webhook destination: each batch is one JSON `POST` to a URL, signed per the
//! Standard Webhooks spec (fixtures/wire/standard-webhooks.md).
//!
//! Settings: `url` (required, http/https), `batch_size` (records per request, 1–10000,
//! default 500), `max_concurrency` (requests in flight per sync, 1–64, default 8),
//! `timeout_seconds` (1–120, default 30; the spec suggests 15–30 s). Secret: the signing
//! secret `whsec_<base64>`; without one requests go unsigned (still with `webhook-id` and
//! `webhook-timestamp`). Default rate: 1000 requests/s per `host:port`.
//!
//! Request: headers `webhook-id` = the batch's idempotency key (stable across retries and
//! resends after a crash; `.` is replaced by `_` since the spec forbids it),
//! `webhook-timestamp` = Unix seconds of this attempt, `webhook-signature` = `v1,<base64>`
//! over `id.timestamp.body`; body (the spec's suggested `{type, data}` shape; the
//! event-time `timestamp` is left out so a resent batch is byte-identical):
//! ```json
//! {"type": "backflow.records.upsert",
//!  "data": {"sync_id": "…", "run_id": "…", "batch": "<idempotency key>", "operation": "upsert",
//!           "records": [{"key_hash": "<16 hex>", "key": {…}, "fields": {…}}]}}
//! ```
//! `operation` is `upsert`, `insert`, `update` or `delete` (deletes carry empty `fields`).
//!
//! Response: any 2xx accepts the batch. A receiver may refuse single records by answering
//! 2xx with `{"failed": [{"key_hash": "<16 hex>", "message": "…"}]}`; those records fail
//! (retried next run), the rest are delivered. Any other 2xx body means all delivered.
//! 3xx is a failure (redirects are not followed), 401/403 credentials, 429 rate limit,
//! 408/5xx transient, honouring `Retry-After` (also on 503), other 4xx refuse the batch.
//!
//! 410 Gone means "disable the endpoint" in the spec, so it is its own error,
//! [`DestinationError::EndpointGone`] (from [`status_error`], for `send` and `test`
//! alike): it is never retried, the run sends no further batch and ends failed, committing
//! nothing (every record not delivered is sent again by a later run, none is given up for
//! it), and every enabled sync using the destination is paused with the 410 as its reason
//! until `backflow syncs resume` ([`crate::executor::endpoint_gone`]).

use std::time::Duration;

use serde::Deserialize;

use super::http;
use super::settings::{bounded, only_known, required};
use super::standard_webhooks::SigningKey;
use super::{
    BatchResult, Capabilities, Destination, DestinationError, DestinationKind, DestinationSettings,
    Operation, OutboundBatch, RecordOutcome, RecordResult,
};

const KNOWN: &[&str] = &["url", "batch_size", "max_concurrency", "timeout_seconds"];

#[derive(Debug)]
pub struct WebhookDestination {
    url: reqwest::Url,
    key: Option<SigningKey>,
    client: reqwest::Client,
    batch_size: usize,
    max_concurrency: usize,
}

impl WebhookDestination {
    pub fn new(
        settings: &DestinationSettings,
        secret: Option<&str>,
    ) -> Result<Self, DestinationError> {
        only_known(settings, KNOWN)?;
        let url = http::base_url("url", required(settings, "url")?)?;
        let timeout = bounded(settings, "timeout_seconds", 30, 1, 120)?;
        Ok(Self {
            url,
            key: secret.map(SigningKey::from_secret).transpose()?,
            client: http::client(Duration::from_secs(timeout as u64))?,
            batch_size: bounded(settings, "batch_size", 500, 1, 10_000)?,
            max_concurrency: bounded(settings, "max_concurrency", 8, 1, 64)?,
        })
    }

    async fn post(
        &self,
        id: &str,
        body: Vec<u8>,
    ) -> Result<(u16, reqwest::header::HeaderMap, bytes::Bytes), DestinationError> {
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(key) = &self.key {
            request = request.header("webhook-signature", key.sign(id, timestamp, &body));
        }
        let endpoint = http::authority(&self.url);
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| http::transport_error(&endpoint, &e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(&endpoint, &e))?;
        Ok((status, headers, body))
    }
}

/// The `webhook-id` of a batch (the spec forbids `.` in ids).
pub fn message_id(idempotency_key: &str) -> String {
    idempotency_key.replace('.', "_")
}

pub fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Upsert => "upsert",
        Operation::Insert => "insert",
        Operation::Update => "update",
        Operation::Delete => "delete",
    }
}

/// A JSON string literal (escaped as serde_json escapes).
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    let _ = serde::Serializer::serialize_str(&mut serde_json::Serializer::new(&mut *out), text);
}

/// The request body of a batch (exactly what is signed and sent). Each record's key and
/// fields objects are spliced in as their encoded text.
pub fn body(batch: &OutboundBatch) -> Result<Vec<u8>, DestinationError> {
    let operation = operation_name(batch.operation);
    let mut out = Vec::with_capacity(body_capacity(batch));
    out.extend_from_slice(b"{\"type\":\"backflow.records.");
    out.extend_from_slice(operation.as_bytes());
    out.extend_from_slice(b"\",\"data\":{\"sync_id\":");
    push_json_str(&mut out, &batch.sync_id);
    out.extend_from_slice(b",\"run_id\":");
    push_json_str(&mut out, &batch.run_id);
    out.extend_from_slice(b",\"batch\":");
    push_json_str(&mut out, &batch.idempotency_key);
    out.extend_from_slice(b",\"operation\":\"");
    out.extend_from_slice(operation.as_bytes());
    out.extend_from_slice(b"\",\"records\":[");
    for (i, record) in batch.records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"key_hash\":\"");
        push_hex16(&mut out, record.key_hash);
        out.extend_from_slice(b"\",\"key\":");
        out.extend_from_slice(record.key.as_str().as_bytes());
        out.extend_from_slice(b",\"fields\":");
        out.extend_from_slice(record.fields.as_str().as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}}");
    Ok(out)
}

/// An upper bound of [`body`]'s length, so the body is written into one allocation: a
/// batch body is megabytes, and growing it copies all of it into freshly zeroed pages.
fn body_capacity(batch: &OutboundBatch) -> usize {
    // `{"key_hash":"` + 16 hex digits + `","key":` + `,"fields":` + `}` + `,`
    const PER_RECORD: usize = 13 + 16 + 8 + 10 + 1 + 1;
    // the fixed text around the records, with room for the longest operation name
    const FRAME: usize = 128;
    // a JSON string of n bytes is at most 6n bytes escaped (`\u00XX`) plus its quotes
    let escaped = |text: &str| 6 * text.len() + 2;
    let records: usize = batch
        .records
        .iter()
        .map(|r| r.key.as_str().len() + r.fields.as_str().len() + PER_RECORD)
        .sum();
    records
        + FRAME
        + escaped(&batch.sync_id)
        + escaped(&batch.run_id)
        + escaped(&batch.idempotency_key)
}

/// `value` as 16 lower-case hex digits.
fn push_hex16(out: &mut Vec<u8>, value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        out.push(DIGITS[((value >> (shift * 4)) & 0xf) as usize]);
    }
}

/// What a non-2xx answer means: 410 Gone is [`DestinationError::EndpointGone`] (the spec's
/// "disable the endpoint"), everything else as [`http::status_error`] classifies it.
pub fn status_error(
    url: &reqwest::Url,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    answer: &[u8],
) -> DestinationError {
    let message = http::excerpt(answer);
    if status == 410 {
        return DestinationError::EndpointGone {
            endpoint: http::authority(url),
            message: if message.is_empty() {
                "the endpoint no longer exists".into()
            } else {
                message
            },
        };
    }
    http::status_error(status, headers, message)
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    failed: Vec<FailedRecord>,
}

#[derive(Deserialize)]
struct FailedRecord {
    key_hash: String,
    #[serde(default)]
    message: String,
}

/// Per-record results from a 2xx answer (see the module doc).
pub fn results(batch: &OutboundBatch, status: u16, answer: &[u8]) -> Vec<RecordResult> {
    let failed: std::collections::HashMap<u64, String> = serde_json::from_slice::<Answer>(answer)
        .map(|a| a.failed)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| {
            let hash = u64::from_str_radix(&f.key_hash, 16).ok()?;
            Some((hash, f.message))
        })
        .collect();
    batch
        .records
        .iter()
        .map(|r| RecordResult {
            key_hash: r.key_hash,
            outcome: match failed.get(&r.key_hash) {
                Some(message) => RecordOutcome::Failed {
                    message: if message.is_empty() {
                        "refused by the receiver".into()
                    } else {
                        message.clone()
                    },
                    status,
                },
                None => RecordOutcome::Delivered,
            },
        })
        .collect()
}

#[async_trait::async_trait]
impl Destination for WebhookDestination {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Webhook
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_records: self.batch_size,
            max_concurrency: self.max_concurrency,
            deletes: true,
            idempotent: true,
            default_rate_per_second: 1000.0,
        }
    }

    fn rate_limit_key(&self) -> String {
        format!("webhook:{}", http::authority(&self.url))
    }

    /// Posts an empty `backflow.test` batch; any 2xx is fine.
    async fn test(&self) -> Result<(), DestinationError> {
        let id = format!("test_{}", chrono::Utc::now().timestamp_millis());
        let body = serde_json::to_vec(&serde_json::json!({"type": "backflow.test", "data": {}}))
            .unwrap_or_default();
        let (status, headers, answer) = self.post(&id, body).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(status_error(&self.url, status, &headers, &answer))
        }
    }

    async fn send(&self, batch: &OutboundBatch) -> Result<BatchResult, DestinationError> {
        let id = message_id(&batch.idempotency_key);
        let (status, headers, answer) = self.post(&id, body(batch)?).await?;
        if !(200..300).contains(&status) {
            return Err(status_error(&self.url, status, &headers, &answer));
        }
        Ok(BatchResult {
            results: results(batch, status, &answer),
            requests: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch() -> OutboundBatch {
        let record = |hash: u64, id: i64| super::super::OutboundRecord {
            key_hash: hash,
            key: serde_json::json!({"id": id})
                .as_object()
                .cloned()
                .unwrap()
                .into(),
            fields: serde_json::json!({"email": format!("u{id}@x")})
                .as_object()
                .cloned()
                .unwrap()
                .into(),
        };
        OutboundBatch {
            sync_id: "s1".into(),
            run_id: "r1".into(),
            operation: Operation::Upsert,
            idempotency_key: "r1:upsert:0".into(),
            options: Arc::default(),
            records: vec![record(1, 1), record(0xabc, 2)],
        }
    }

    #[test]
    fn the_body_is_the_documented_shape() {
        let body: serde_json::Value = serde_json::from_slice(&body(&batch()).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "backflow.records.upsert",
                "data": {"sync_id": "s1", "run_id": "r1", "batch": "r1:upsert:0", "operation": "upsert",
                  "records": [
                    {"key_hash": "0000000000000001", "key": {"id": 1}, "fields": {"email": "u1@x"}},
                    {"key_hash": "0000000000000abc", "key": {"id": 2}, "fields": {"email": "u2@x"}}]}
            })
        );
        assert_eq!(message_id("a.b:c"), "a_b:c");
        let mut b = batch();
        b.sync_id = "s\"1\n".into();
        let text = String::from_utf8(super::body(&b).unwrap()).unwrap();
        assert!(
            text.starts_with(r#"{"type":"backflow.records.upsert","data":{"sync_id":"s\"1\n","#),
            "{text}"
        );
        assert!(
            text.ends_with(
                r#"{"key_hash":"0000000000000abc","key":{"id":2},"fields":{"email":"u2@x"}}]}}"#
            ),
            "{text}"
        );
    }

    #[test]
    fn a_body_is_written_into_the_one_allocation_its_bound_reserves() {
        let mut b = batch();
        for operation in [
            Operation::Upsert,
            Operation::Insert,
            Operation::Update,
            Operation::Delete,
        ] {
            b.operation = operation;
            for ids in [("s1", "r1"), ("s\u{1}\"\n", "\u{7f}\\r"), ("", "")] {
                (b.sync_id, b.run_id) = (ids.0.into(), ids.1.into());
                let text = body(&b).unwrap();
                assert!(text.len() <= body_capacity(&b), "{operation:?} {ids:?}");
                assert_eq!(
                    text.capacity(),
                    body_capacity(&b),
                    "{operation:?} {ids:?}: grown"
                );
            }
        }
        let empty = OutboundBatch {
            records: Vec::new(),
            ..batch()
        };
        assert!(body(&empty).unwrap().len() <= body_capacity(&empty));
    }

    #[test]
    fn a_receiver_may_refuse_single_records() {
        let b = batch();
        let got = results(
            &b,
            200,
            br#"{"failed":[{"key_hash":"0000000000000abc","message":"no such user"}]}"#,
        );
        assert_eq!(got[0].outcome, RecordOutcome::Delivered);
        assert_eq!(
            got[1].outcome,
            RecordOutcome::Failed {
                message: "no such user".into(),
                status: 200
            }
        );
        let all = results(&b, 204, b"OK");
        assert!(all.iter().all(|r| r.outcome == RecordOutcome::Delivered));
    }

    #[test]
    fn a_410_is_the_endpoint_gone_and_nothing_else_is() {
        let url = reqwest::Url::parse("https://hooks.example.com/x").unwrap();
        let headers = reqwest::header::HeaderMap::new();
        assert_eq!(
            status_error(&url, 410, &headers, b"  unsubscribed "),
            DestinationError::EndpointGone {
                endpoint: "hooks.example.com:443".into(),
                message: "unsubscribed".into(),
            }
        );
        assert!(matches!(
            status_error(&url, 410, &headers, b""),
            DestinationError::EndpointGone { message, .. } if message == "the endpoint no longer exists"
        ));
        assert!(matches!(
            status_error(&url, 404, &headers, b"no"),
            DestinationError::Rejected { status: 404, .. }
        ));
        assert!(matches!(
            status_error(&url, 503, &headers, b"busy"),
            DestinationError::Transient { status: 503, .. }
        ));
    }

    #[test]
    fn settings_are_validated() {
        let mut s = DestinationSettings::new();
        assert!(matches!(
            WebhookDestination::new(&s, None),
            Err(DestinationError::Settings(_))
        ));
        s.insert("url".into(), "https://hooks.example.com/x".into());
        let d =
            WebhookDestination::new(&s, Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).unwrap();
        assert_eq!(d.rate_limit_key(), "webhook:hooks.example.com:443");
        assert_eq!(d.capabilities().max_batch_records, 500);
        s.insert("batch_size".into(), "0".into());
        assert!(WebhookDestination::new(&s, None).is_err());
    }
}
