//! A Standard Webhooks receiver (fixtures/wire/standard-webhooks.md): checks that
//! `webhook-id`, `webhook-timestamp` and `webhook-signature` are present and that a `v1`
//! signature over `id.timestamp.body` matches (401 otherwise, timestamps ±5 minutes),
//! drops duplicates by `webhook-id` as the spec asks receivers to, applies the batch body
//! the webhook destination documents, and answers 200 `{"failed":[…]}` for records it
//! was told to refuse. [`WebhookReceiver::noop`] only counts requests (benchmarks).
//! [`WebhookReceiver::set_gone`] makes it answer every request 410 Gone (an endpoint its
//! owner disabled) until told otherwise.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use serde_json::{json, Value};

use super::server::{
    dropped, key_text, retry_after_value, serve, Fault, FaultQueue, Holds, Kill, Running,
};
use crate::destinations::standard_webhooks::SigningKey;

/// One request as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub webhook_id: String,
    pub timestamp: String,
    pub operation: String,
    pub records: usize,
}

#[derive(Debug, Default)]
struct Inner {
    holds: Holds,
    /// webhook-id → digest of the records its first delivery carried.
    seen_ids: HashMap<String, u64>,
    /// Resends under a seen webhook-id that carried other records (a sender bug: the
    /// receiver drops them as duplicates, so their records are lost).
    id_conflicts: u64,
    /// Key → upserts or deletes applied for it.
    applied: BTreeMap<String, u64>,
    received: Vec<Received>,
    refuse: BTreeMap<String, String>,
    unauthorized: u64,
}

#[derive(Debug)]
struct Shared {
    key: Option<SigningKey>,
    record: bool,
    gone: std::sync::atomic::AtomicBool,
    faults: FaultQueue,
    inner: Mutex<Inner>,
}

/// A running receiver.
#[derive(Debug)]
pub struct WebhookReceiver {
    shared: Arc<Shared>,
    running: Running,
}

impl WebhookReceiver {
    /// Verifies signatures with `secret` (`whsec_…`), or accepts unsigned requests.
    pub async fn start(secret: Option<&str>) -> Self {
        Self::start_with(secret, true).await
    }

    /// Reads each body and answers 200, recording nothing but the request count.
    pub async fn noop() -> Self {
        Self::start_with(None, false).await
    }

    async fn start_with(secret: Option<&str>, record: bool) -> Self {
        let shared = Arc::new(Shared {
            key: secret.map(|s| SigningKey::from_secret(s).unwrap()),
            record,
            gone: std::sync::atomic::AtomicBool::new(false),
            faults: FaultQueue::default(),
            inner: Mutex::new(Inner::default()),
        });
        let router = Router::new()
            .route("/hook", post(receive))
            .with_state(Arc::clone(&shared));
        let running = serve(router).await;
        Self { shared, running }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.running.addr)
    }

    pub fn holds(&self) -> Holds {
        self.shared.inner.lock().unwrap().holds.clone()
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.inner.lock().unwrap().received.clone()
    }

    /// How often each key was applied (upserted or deleted): more than once for a key
    /// means the same change arrived twice without a repeated webhook-id.
    pub fn applied_per_key(&self) -> BTreeMap<String, u64> {
        self.shared.inner.lock().unwrap().applied.clone()
    }

    /// Resends under a webhook-id already seen that carried other records: the receiver
    /// dropped them as duplicates, so whatever was new in them was lost.
    pub fn id_conflicts(&self) -> u64 {
        self.shared.inner.lock().unwrap().id_conflicts
    }

    /// Requests refused for a missing or wrong signature.
    pub fn unauthorized(&self) -> u64 {
        self.shared.inner.lock().unwrap().unauthorized
    }

    /// Stops refusing records.
    pub fn accept_all(&self) {
        self.shared.inner.lock().unwrap().refuse.clear();
    }

    pub fn push_fault(&self, fault: Fault) {
        self.shared.faults.push(fault);
    }

    /// Answers every request (after its signature check) 410 Gone, applying nothing,
    /// while `gone`.
    pub fn set_gone(&self, gone: bool) {
        self.shared
            .gone
            .store(gone, std::sync::atomic::Ordering::SeqCst);
    }

    /// Refuses the record with this key (as [`key_text`] prints it) with `message`.
    pub fn refuse(&self, key: &str, message: &str) {
        self.shared
            .inner
            .lock()
            .unwrap()
            .refuse
            .insert(key.into(), message.into());
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !shared.record {
        shared.inner.lock().unwrap().holds.requests += 1;
        return StatusCode::OK.into_response();
    }
    shared.inner.lock().unwrap().holds.requests += 1;
    let (Some(id), Some(ts)) = (
        header(&headers, "webhook-id"),
        header(&headers, "webhook-timestamp"),
    ) else {
        shared.inner.lock().unwrap().unauthorized += 1;
        return (StatusCode::UNAUTHORIZED, "missing webhook headers").into_response();
    };
    if let Some(key) = &shared.key {
        let signature = header(&headers, "webhook-signature").unwrap_or_default();
        let now = chrono::Utc::now().timestamp();
        if let Err(e) = key.verify(id, ts, &body, signature, now) {
            shared.inner.lock().unwrap().unauthorized += 1;
            return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
        }
    }
    if shared.gone.load(std::sync::atomic::Ordering::SeqCst) {
        return (StatusCode::GONE, "endpoint disabled by its owner").into_response();
    }
    let fault = shared.faults.next();
    match fault {
        Some(Fault::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap();
            return (status, "injected failure").into_response();
        }
        Some(limited @ (Fault::RateLimited { .. } | Fault::RateLimitedUntil { .. })) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(
                    "retry-after",
                    retry_after_value(&limited).unwrap_or_default(),
                )],
                "slow down",
            )
                .into_response();
        }
        Some(Fault::DropConnection) => return dropped(&kill).await,
        Some(Fault::Hang) => return std::future::pending().await,
        Some(Fault::DropAfterApply) | None => {}
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not json").into_response();
    };
    let data = &payload["data"];
    let operation = data["operation"].as_str().unwrap_or_default().to_string();
    let records = data["records"].as_array().cloned().unwrap_or_default();
    let failed = {
        let mut inner = shared.inner.lock().unwrap();
        inner.received.push(Received {
            webhook_id: id.to_string(),
            timestamp: ts.to_string(),
            operation: operation.clone(),
            records: records.len(),
        });
        let digest = xxhash_rust::xxh3::xxh3_64(data["records"].to_string().as_bytes());
        if let Some(first) = inner.seen_ids.get(id).copied() {
            inner.holds.duplicates += 1;
            if first != digest {
                inner.id_conflicts += 1;
            }
            Vec::new()
        } else {
            inner.seen_ids.insert(id.to_string(), digest);
            inner.holds.batches += 1;
            let mut failed = Vec::new();
            for record in &records {
                let key = record["key"].as_object().map(key_text).unwrap_or_default();
                if let Some(message) = inner.refuse.get(&key).cloned() {
                    failed.push(json!({"key_hash": record["key_hash"], "message": message}));
                    continue;
                }
                *inner.applied.entry(key.clone()).or_default() += 1;
                match operation.as_str() {
                    "delete" => inner.holds.delete(&key),
                    _ => inner.holds.upsert(key, record["fields"].clone()),
                }
            }
            failed
        }
    };
    if fault == Some(Fault::DropAfterApply) {
        return dropped(&kill).await;
    }
    if failed.is_empty() {
        (StatusCode::OK, "OK").into_response()
    } else {
        (StatusCode::OK, axum::Json(json!({ "failed": failed }))).into_response()
    }
}
