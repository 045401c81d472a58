//! A Segment / RudderStack `/v1/batch` stand-in (fixtures/wire/segment-and-rudderstack.md).
//!
//! Both flavours: `Authorization: Basic base64(<writeKey>:)` (RudderStack answers 401
//! `Invalid Authorization Header`; for Segment a wrong key's answer is not documented, the
//! stand-in answers 401 too, so tests see credentials checked), `Content-Type:
//! application/json`, a body over 500,000 bytes is 400 (Segment) / 413 `Request size too
//! large` (RudderStack, which allows 4000 KB — the stand-in uses Segment's limit for both
//! so one test covers the split), invalid JSON 400. Messages over 32,000 bytes, without
//! `type`, without `userId`/`anonymousId`, a `track` without `event`, or beyond the 2500th
//! of a batch are accepted with the 200 and dropped (counted in
//! [`SegmentStandIn::dropped`]), as Segment documents.
//! Segment deduplicates messages by `messageId` (\[G1\]); the fixture documents no
//! deduplication for RudderStack, so that flavour applies every message it gets. Answers: Segment `{"success": true}` JSON
//! (the fixture), RudderStack `text/plain` `OK`. 429 carries `Retry-After` and
//! `X-RateLimit-Reset` (seconds until a retry is allowed), body `Too many requests` as
//! RudderStack's table has it (Segment's 429 body is undocumented);
//! [`Fault::RateLimitedUntil`] sends `Retry-After` as an HTTP-date instead (RFC 9110's
//! other form; not what the fixture shows, there to test the client's parser).
//!
//! Holds: identify → key `userId`, traits merged; group → key `group:<groupId>`, traits
//! merged; track → key `<userId>`, the event's properties merged, events counted per name.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use base64::Engine;
use serde_json::Value;

use super::server::{dropped, http_date_in, serve, Fault, FaultQueue, Holds, Kill, Running};

pub const WRITE_KEY: &str = "wk_backflow_test_0123456789";
/// Events per batch Segment takes (fixture: beyond, "returns a 200 response but rejects
/// the event").
const MAX_EVENTS: usize = 2500;
const RESPONSE_200: &str = include_str!("../../../../../fixtures/wire/segment/response-200.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Segment,
    RudderStack,
}

#[derive(Debug, Default)]
struct Inner {
    holds: Holds,
    message_ids: HashSet<String>,
    messages: Vec<Value>,
    events: BTreeMap<String, u64>,
    dropped: Vec<String>,
    bodies: Vec<usize>,
}

#[derive(Debug)]
struct Shared {
    flavor: Flavor,
    faults: FaultQueue,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
pub struct SegmentStandIn {
    shared: Arc<Shared>,
    running: Running,
}

impl SegmentStandIn {
    pub async fn start(flavor: Flavor) -> Self {
        let shared = Arc::new(Shared {
            flavor,
            faults: FaultQueue::default(),
            inner: Mutex::new(Inner::default()),
        });
        let router = Router::new()
            .route("/v1/batch", post(batch))
            .with_state(Arc::clone(&shared));
        let running = serve(router).await;
        Self { shared, running }
    }

    /// The `endpoint` setting (scheme, host, port).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    pub fn holds(&self) -> Holds {
        self.shared.inner.lock().unwrap().holds.clone()
    }

    /// Every accepted (not duplicate, not dropped) message, in arrival order.
    pub fn messages(&self) -> Vec<Value> {
        self.shared.inner.lock().unwrap().messages.clone()
    }

    /// Track events accepted, by name.
    pub fn events(&self) -> BTreeMap<String, u64> {
        self.shared.inner.lock().unwrap().events.clone()
    }

    /// Why messages were accepted with a 200 but dropped.
    pub fn dropped(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().dropped.clone()
    }

    /// Sizes of the request bodies received, in order.
    pub fn body_sizes(&self) -> Vec<usize> {
        self.shared.inner.lock().unwrap().bodies.clone()
    }

    pub fn push_fault(&self, fault: Fault) {
        self.shared.faults.push(fault);
    }
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A 429 as the fixture documents it: `Retry-After` and `X-RateLimit-Reset` (seconds
/// until a retry is allowed); the body is RudderStack's `Too many requests` text (Segment's
/// 429 body is not documented).
fn rate_limited(flavor: Flavor, retry_after: String, reset_secs: u64) -> Response {
    let _ = flavor;
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            ("content-type", "text/plain; charset=utf-8".to_string()),
            ("retry-after", retry_after),
            ("x-ratelimit-reset", reset_secs.to_string()),
        ],
        "Too many requests",
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{WRITE_KEY}:"))
    );
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

fn drop_reason(message: &Value, size: usize) -> Option<String> {
    if size > 32_000 {
        return Some(format!("message of {size} bytes over 32000"));
    }
    let kind = message["type"].as_str().unwrap_or_default();
    if !["identify", "track", "page", "screen", "group", "alias"].contains(&kind) {
        return Some(format!("unknown type {kind:?}"));
    }
    let has = |f: &str| message[f].as_str().is_some_and(|s| !s.is_empty());
    if !has("userId") && !has("anonymousId") {
        return Some("no_user_anon_id".into());
    }
    if kind == "track" && !has("event") {
        return Some("track without event".into());
    }
    if kind == "group" && !has("groupId") {
        return Some("group without groupId".into());
    }
    None
}

async fn batch(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flavor = shared.flavor;
    {
        let mut inner = shared.inner.lock().unwrap();
        inner.holds.requests += 1;
        inner.bodies.push(body.len());
    }
    if !authorized(&headers) {
        return text(StatusCode::UNAUTHORIZED, "Invalid Authorization Header");
    }
    let json_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return text(StatusCode::BAD_REQUEST, "Invalid request");
    }
    let fault = shared.faults.next();
    match &fault {
        Some(Fault::Status(status)) => {
            return text(StatusCode::from_u16(*status).unwrap(), "injected failure")
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            return rate_limited(flavor, retry_after_secs.to_string(), *retry_after_secs)
        }
        Some(Fault::RateLimitedUntil { secs_from_now }) => {
            return rate_limited(flavor, http_date_in(*secs_from_now), *secs_from_now)
        }
        Some(Fault::DropConnection) => return dropped(&kill).await,
        Some(Fault::Hang) => return std::future::pending().await,
        Some(Fault::DropAfterApply) | None => {}
    }
    if body.len() > 500_000 {
        return match flavor {
            Flavor::Segment => text(StatusCode::BAD_REQUEST, "payload too large"),
            Flavor::RudderStack => text(StatusCode::PAYLOAD_TOO_LARGE, "Request size too large"),
        };
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return text(StatusCode::BAD_REQUEST, "Invalid request");
    };
    let Some(messages) = payload["batch"].as_array() else {
        return text(StatusCode::BAD_REQUEST, "Invalid request");
    };
    {
        let mut inner = shared.inner.lock().unwrap();
        inner.holds.batches += 1;
        for (index, message) in messages.iter().enumerate() {
            // "At most 2500 events per batch": beyond, a 200 and the event rejected.
            if index >= MAX_EVENTS {
                inner.dropped.push("over 2500 events in the batch".into());
                continue;
            }
            let size = serde_json::to_vec(message).map(|v| v.len()).unwrap_or(0);
            if let Some(reason) = drop_reason(message, size) {
                inner.dropped.push(reason);
                continue;
            }
            // Deduplication by messageId is documented for Segment [G1] only.
            if let Some(id) = message["messageId"]
                .as_str()
                .filter(|_| flavor == Flavor::Segment)
            {
                if !inner.message_ids.insert(id.to_string()) {
                    inner.holds.duplicates += 1;
                    continue;
                }
            }
            inner.messages.push(message.clone());
            let user = message["userId"].as_str().unwrap_or_default().to_string();
            let object = |field: &str| message[field].as_object().cloned().unwrap_or_default();
            match message["type"].as_str().unwrap_or_default() {
                "identify" => inner.holds.merge(user, object("traits")),
                "group" => {
                    let group = message["groupId"].as_str().unwrap_or_default();
                    inner
                        .holds
                        .merge(format!("group:{group}"), object("traits"));
                }
                "track" => {
                    let event = message["event"].as_str().unwrap_or_default().to_string();
                    *inner.events.entry(event).or_default() += 1;
                    inner.holds.merge(user, object("properties"));
                }
                _ => {}
            }
        }
    }
    if fault == Some(Fault::DropAfterApply) {
        return dropped(&kill).await;
    }
    match flavor {
        Flavor::Segment => (
            StatusCode::OK,
            [("content-type", "application/json")],
            RESPONSE_200,
        )
            .into_response(),
        Flavor::RudderStack => text(StatusCode::OK, "OK"),
    }
}
