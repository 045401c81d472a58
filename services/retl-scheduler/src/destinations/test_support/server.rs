//! What the stand-ins share: an HTTP/1 server whose handlers can drop their own
//! connection without answering (a "connection dropped mid-batch" fault: the client sees
//! the socket close, exactly as when a proxy or the process dies), a queue of faults
//! consumed by the next requests, and the [`Holds`] view of what the destination holds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A fault the next request meets (queued faults are consumed in order, one per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (e.g. 500) with the API's error body; nothing is applied.
    Status(u16),
    /// Answer 429 with `Retry-After: <seconds>` (and the API's rate-limit body).
    RateLimited { retry_after_secs: u64 },
    /// Answer 429 with `Retry-After` as an HTTP-date this many seconds from now (RFC 9110
    /// allows either form; stand-ins whose API documents only seconds send seconds).
    RateLimitedUntil { secs_from_now: u64 },
    /// Read the request, apply nothing and never answer (the connection stays open): a
    /// request the client is waiting on when its process is killed.
    Hang,
    /// Read the request, apply nothing, close the connection without an answer.
    DropConnection,
    /// Apply the batch, then close the connection without an answer (the ack is lost).
    DropAfterApply,
}

/// What a destination holds after the requests it accepted.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Holds {
    /// Key (see [`key_text`]) → latest fields.
    pub records: BTreeMap<String, serde_json::Value>,
    /// Keys deleted (and not re-added since).
    pub deleted: BTreeSet<String>,
    /// Requests received, faults and refusals included.
    pub requests: u64,
    /// Batches applied.
    pub batches: u64,
    /// Resends recognised by their idempotency key and not applied again.
    pub duplicates: u64,
    /// Upserts / inserts of a key already held (a resend without idempotency shows here).
    pub overwrites: u64,
    /// Key → times a write (upsert, merge or delete) was applied for it: more than once
    /// for one change means a resend was applied again.
    pub applied: BTreeMap<String, u64>,
}

impl Holds {
    pub fn upsert(&mut self, key: String, fields: serde_json::Value) {
        self.deleted.remove(&key);
        *self.applied.entry(key.clone()).or_default() += 1;
        if self.records.insert(key, fields).is_some() {
            self.overwrites += 1;
        }
    }

    /// Merges `fields` into what the key holds (APIs that update properties, not rows).
    pub fn merge(&mut self, key: String, fields: serde_json::Map<String, serde_json::Value>) {
        self.deleted.remove(&key);
        *self.applied.entry(key.clone()).or_default() += 1;
        let entry = self
            .records
            .entry(key)
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if let serde_json::Value::Object(held) = entry {
            held.extend(fields);
        }
    }

    pub fn delete(&mut self, key: &str) {
        if self.records.remove(key).is_some() {
            *self.applied.entry(key.to_string()).or_default() += 1;
            self.deleted.insert(key.to_string());
        }
    }
}

/// The text of a record key as the stand-ins index it: a single column's value (strings
/// unquoted), several columns as `col=value` joined by `|` in column order.
pub fn key_text(key: &serde_json::Map<String, serde_json::Value>) -> String {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if key.len() == 1 {
        return key.values().next().map(text).unwrap_or_default();
    }
    let mut parts: Vec<(&String, String)> = key.iter().map(|(k, v)| (k, text(v))).collect();
    parts.sort();
    parts
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("|")
}

/// Faults queued for the next requests.
#[derive(Debug, Default)]
pub struct FaultQueue(Mutex<VecDeque<Fault>>);

impl FaultQueue {
    pub fn push(&self, fault: Fault) {
        self.0.lock().unwrap().push_back(fault);
    }

    pub fn next(&self) -> Option<Fault> {
        self.0.lock().unwrap().pop_front()
    }

    /// Faults not met yet.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Faults for any request, and faults for the next request of one step of an API only
/// (checked first), for stand-ins whose calls differ (HubSpot's upsert/read/archive,
/// Salesforce's job steps).
#[derive(Debug)]
pub struct StepFaults<S> {
    any: FaultQueue,
    at: Mutex<BTreeMap<S, VecDeque<Fault>>>,
}

impl<S> Default for StepFaults<S> {
    fn default() -> Self {
        Self {
            any: FaultQueue::default(),
            at: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<S: Ord> StepFaults<S> {
    /// A fault for the next request, whatever its step.
    pub fn push(&self, fault: Fault) {
        self.any.push(fault);
    }

    /// A fault for the next request of `step` only.
    pub fn push_at(&self, step: S, fault: Fault) {
        self.at
            .lock()
            .unwrap()
            .entry(step)
            .or_default()
            .push_back(fault);
    }

    /// The fault a request of `step` meets: its step's first, else any request's.
    pub fn next(&self, step: Option<S>) -> Option<Fault> {
        step.and_then(|step| {
            self.at
                .lock()
                .unwrap()
                .get_mut(&step)
                .and_then(VecDeque::pop_front)
        })
        .or_else(|| self.any.next())
    }

    /// Faults queued and not met yet (any step).
    pub fn pending(&self) -> usize {
        self.any.len()
            + self
                .at
                .lock()
                .unwrap()
                .values()
                .map(VecDeque::len)
                .sum::<usize>()
    }
}

/// Lets a handler close its own connection without answering.
#[derive(Debug, Clone)]
pub struct Kill(Arc<Notify>);

impl Kill {
    /// Closes the connection; the handler should not answer afterwards (use [`dropped`]).
    pub fn now(&self) {
        self.0.notify_one();
    }
}

/// What a handler returns after [`Kill::now`]: never completes (the connection, and the
/// handler with it, is dropped).
pub async fn dropped<T>(kill: &Kill) -> T {
    kill.now();
    std::future::pending().await
}

/// The value of a `Retry-After` header `secs` from now as an HTTP-date (RFC 9110).
pub fn http_date_in(secs: u64) -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(secs))
}

/// The rate-limit answer of a [`Fault::RateLimited`] / [`Fault::RateLimitedUntil`]: the
/// `Retry-After` value it carries.
pub fn retry_after_value(fault: &Fault) -> Option<String> {
    match fault {
        Fault::RateLimited { retry_after_secs } => Some(retry_after_secs.to_string()),
        Fault::RateLimitedUntil { secs_from_now } => Some(http_date_in(*secs_from_now)),
        _ => None,
    }
}

/// A running server; stops accepting when dropped.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Serves `router` on 127.0.0.1, port 0; handlers may take `Extension<Kill>`.
pub async fn serve(router: Router) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let notify = Arc::new(Notify::new());
            let service = router
                .clone()
                .layer(axum::Extension(Kill(Arc::clone(&notify))));
            tokio::spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
                tokio::select! {
                    _ = connection => {}
                    _ = notify.notified() => {}
                }
            });
        }
    });
    Running { addr, accept }
}
