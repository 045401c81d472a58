//! JetStream, the way every service uses it. Streams and durable pull consumers are
//! ensured at start (idempotently, so any replica may do it); a consumer loop turns
//! each delivery into ack, nak-with-delay or term, and sends progress heartbeats while
//! a slow handler works so JetStream does not redeliver under it.
//!
//! Subjects follow DESIGN §4: `evt.<service>.<entity>.<past_tense>.<id>` in a
//! Limits stream per producer, `cmd.<service>.<verb>.<id>` in a WorkQueue stream.
//! A namespace (tests) prefixes every subject and stream name.
//!
//! Every handler runs inside a `consumer` span parented on the message's
//! `traceparent` header. A message that exhausts `max_deliver`, or that its handler
//! rejects, goes to the service's dead-letter store (see [`crate::dead_letter`]).

use crate::config::NatsConfig;
use crate::dead_letter::{DeadLetterReason, DeadLetters};
use crate::shutdown::Shutdown;
use async_nats::jetstream::{self, consumer, stream, AckKind};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Header that carries the id consumers de-duplicate on (the outbox id).
pub const EVENT_ID_HEADER: &str = "Backflow-Event-Id";

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("nats.url: invalid url {url:?}: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("nats.url: cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error("ensuring stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("ensuring consumer {consumer} on {stream}: {message}")]
    Consumer {
        stream: String,
        consumer: String,
        message: String,
    },
    #[error("publishing to {subject}: {message}")]
    Publish { subject: String, message: String },
}

/// A stream every service agrees on (producer and consumers both ensure it).
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    pub name: &'static str,
    pub subjects: &'static str,
    pub work_queue: bool,
}

pub mod streams {
    //! The streams of DESIGN §4. Names are part of the wire contract.
    use super::StreamSpec;

    pub const EVT_CREDENTIALS: StreamSpec = StreamSpec {
        name: "EVT_CREDENTIALS",
        subjects: "evt.credentials.>",
        work_queue: false,
    };
    pub const EVT_GITSYNC: StreamSpec = StreamSpec {
        name: "EVT_GITSYNC",
        subjects: "evt.gitsync.>",
        work_queue: false,
    };
    pub const EVT_CATALOG: StreamSpec = StreamSpec {
        name: "EVT_CATALOG",
        subjects: "evt.catalog.>",
        work_queue: false,
    };
    pub const EVT_DBT: StreamSpec = StreamSpec {
        name: "EVT_DBT",
        subjects: "evt.dbt.>",
        work_queue: false,
    };
    pub const EVT_RETL: StreamSpec = StreamSpec {
        name: "EVT_RETL",
        subjects: "evt.retl.>",
        work_queue: false,
    };
    pub const CMD_GITSYNC: StreamSpec = StreamSpec {
        name: "CMD_GITSYNC",
        subjects: "cmd.gitsync.>",
        work_queue: true,
    };
    pub const CMD_RETL: StreamSpec = StreamSpec {
        name: "CMD_RETL",
        subjects: "cmd.retl.>",
        work_queue: true,
    };
}

/// A durable pull consumer: one name shared by all replicas of a service.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub stream: StreamSpec,
    pub durable: String,
    /// Un-namespaced filter, e.g. `evt.gitsync.connection.>`.
    pub filter_subject: String,
    pub ack_wait: Duration,
    /// Deliveries before a still-failing message goes to the dead-letter store. The
    /// consumer loop counts them (JetStream itself redelivers without limit), so a
    /// message is never dropped by the server.
    pub max_deliver: i64,
}

impl ConsumerSpec {
    pub fn new(stream: StreamSpec, durable: &str, filter_subject: &str) -> Self {
        Self {
            stream,
            durable: durable.to_string(),
            filter_subject: filter_subject.to_string(),
            ack_wait: Duration::from_secs(30),
            max_deliver: 20,
        }
    }
}

/// What a handler decided about one delivery.
#[derive(Debug)]
pub enum Outcome {
    /// Handled (or already handled): acknowledge.
    Done,
    /// Transient failure: redeliver after `delay`. `error` is kept with the dead letter
    /// if this was the last allowed delivery.
    Retry { delay: Duration, error: String },
    /// Never going to work (undecodable, invalid): terminate, with the reason logged.
    Reject(String),
}

/// One message handed to a handler.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// De-duplication key: `Backflow-Event-Id`, else `Nats-Msg-Id`, else stream sequence.
    pub message_id: String,
    /// Subject without the namespace prefix.
    pub subject: String,
    pub payload: bytes::Bytes,
    pub delivered: i64,
    /// The message's headers (last value of each), kept with a dead letter.
    pub headers: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    namespace: String,
    dead_letters: Option<DeadLetters>,
}

impl Bus {
    /// Connects, failing start-up with a clear error if NATS can't be reached in time.
    pub async fn connect(config: &NatsConfig) -> Result<Self, BusError> {
        let addresses = parse_server_addrs(&config.url)?;
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_millis(config.connect_timeout_ms.max(1)))
            .max_reconnects(None);
        let connecting = options.connect(addresses);
        let client = tokio::time::timeout(
            Duration::from_millis(config.connect_timeout_ms.max(1)),
            connecting,
        )
        .await
        .map_err(|_| BusError::Connect {
            url: config.url.clone(),
            message: format!("no answer within {} ms", config.connect_timeout_ms),
        })?
        .map_err(|err| BusError::Connect {
            url: config.url.clone(),
            message: err.to_string(),
        })?;
        let jetstream = jetstream::new(client.clone());
        Ok(Self {
            client,
            jetstream,
            namespace: config.namespace.clone(),
            dead_letters: None,
        })
    }

    /// Keeps messages this bus's consumers cannot handle in `store`. Without a store
    /// they are logged in full at error level and terminated.
    pub fn with_dead_letters(mut self, store: DeadLetters) -> Self {
        self.dead_letters = Some(store);
        self
    }

    pub fn dead_letters(&self) -> Option<&DeadLetters> {
        self.dead_letters.as_ref()
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The subject as sent on the wire (namespace applied).
    pub fn subject(&self, subject: &str) -> String {
        if self.namespace.is_empty() {
            subject.to_string()
        } else {
            format!("{}.{subject}", self.namespace)
        }
    }

    /// The subject as services see it (namespace removed).
    pub fn strip_namespace<'a>(&self, subject: &'a str) -> &'a str {
        if self.namespace.is_empty() {
            return subject;
        }
        subject
            .strip_prefix(self.namespace.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(subject)
    }

    pub fn stream_name(&self, spec: &StreamSpec) -> String {
        if self.namespace.is_empty() {
            spec.name.to_string()
        } else {
            let prefix: String = self
                .namespace
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{prefix}_{}", spec.name)
        }
    }

    /// Creates the stream if missing; an existing one is left as it is.
    pub async fn ensure_stream(&self, spec: &StreamSpec) -> Result<stream::Stream, BusError> {
        let name = self.stream_name(spec);
        let config = stream::Config {
            name: name.clone(),
            subjects: vec![self.subject(spec.subjects)],
            retention: if spec.work_queue {
                stream::RetentionPolicy::WorkQueue
            } else {
                stream::RetentionPolicy::Limits
            },
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            max_age: if spec.work_queue {
                Duration::ZERO
            } else {
                Duration::from_secs(7 * 24 * 3600)
            },
            ..Default::default()
        };
        self.jetstream
            .get_or_create_stream(config)
            .await
            .map_err(|err| BusError::Stream {
                stream: name,
                message: err.to_string(),
            })
    }

    /// Ensures the stream and the durable consumer.
    pub async fn ensure_consumer(
        &self,
        spec: &ConsumerSpec,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, BusError> {
        let stream = self.ensure_stream(&spec.stream).await?;
        let config = consumer::pull::Config {
            durable_name: Some(spec.durable.clone()),
            filter_subject: self.subject(&spec.filter_subject),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            // Unlimited: the loop dead-letters at `spec.max_deliver`, and a message whose
            // dead letter could not be stored comes back instead of vanishing.
            max_deliver: -1,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        };
        stream
            .get_or_create_consumer(&spec.durable, config)
            .await
            .map_err(|err| BusError::Consumer {
                stream: self.stream_name(&spec.stream),
                consumer: spec.durable.clone(),
                message: err.to_string(),
            })
    }

    /// Publishes and waits for the stream's acknowledgement. `event_id` becomes both
    /// `Nats-Msg-Id` (JetStream de-duplication) and `Backflow-Event-Id` (inbox key);
    /// the current span's trace context goes along as `traceparent`.
    pub async fn publish(
        &self,
        subject: &str,
        event_id: &str,
        payload: bytes::Bytes,
    ) -> Result<(), BusError> {
        let traceparent = crate::telemetry::current_traceparent();
        self.publish_traced(subject, event_id, payload, traceparent.as_deref())
            .await
    }

    /// Same as [`Bus::publish`] with the trace context given (the outbox relay sends
    /// the one captured when the event was written).
    pub async fn publish_traced(
        &self,
        subject: &str,
        event_id: &str,
        payload: bytes::Bytes,
        traceparent: Option<&str>,
    ) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event_id);
        headers.insert(EVENT_ID_HEADER, event_id);
        if let Some(traceparent) = traceparent {
            headers.insert(crate::telemetry::TRACEPARENT, traceparent);
        }
        self.publish_headers(subject, headers, payload).await
    }

    /// Publishes a dead letter again: its stored headers, the original event id (so
    /// the inbox still de-duplicates) and a fresh `Nats-Msg-Id` (so JetStream's
    /// duplicate window does not swallow it).
    pub async fn republish(
        &self,
        subject: &str,
        event_id: &str,
        nats_msg_id: &str,
        payload: bytes::Bytes,
        stored_headers: &BTreeMap<String, String>,
    ) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        // JetStream's own headers (`Nats-Msg-Id`, …) are not carried over: the server
        // would de-duplicate on the original id.
        for (name, value) in stored_headers {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("nats-") || lower == EVENT_ID_HEADER.to_ascii_lowercase() {
                continue;
            }
            headers.insert(name.as_str(), value.as_str());
        }
        headers.insert(async_nats::header::NATS_MESSAGE_ID, nats_msg_id);
        headers.insert(EVENT_ID_HEADER, event_id);
        self.publish_headers(subject, headers, payload).await
    }

    async fn publish_headers(
        &self,
        subject: &str,
        headers: async_nats::HeaderMap,
        payload: bytes::Bytes,
    ) -> Result<(), BusError> {
        let wire_subject = self.subject(subject);
        let failed = |err: String| BusError::Publish {
            subject: wire_subject.clone(),
            message: err,
        };
        // A stream created a moment ago on another connection may not take messages
        // yet: nats-server 2.9 answers "no responders" until the stream's subjects are
        // wired up (seen in CI right after `ensure_stream`). That answer means nothing
        // was stored, so trying again for a short while cannot duplicate.
        let deadline = Instant::now() + STREAM_NOT_READY_GRACE;
        let mut delay = Duration::from_millis(20);
        loop {
            match self
                .publish_once(&wire_subject, headers.clone(), payload.clone())
                .await
            {
                Ok(()) => return Ok(()),
                Err(PublishFailure::StreamNotFound(message)) => {
                    if Instant::now() + delay > deadline {
                        return Err(failed(message));
                    }
                    tracing::debug!(subject = %wire_subject, retry_in_ms = delay.as_millis() as u64, "stream not ready, publishing again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(500));
                }
                Err(PublishFailure::Other(message)) => return Err(failed(message)),
            }
        }
    }

    async fn publish_once(
        &self,
        wire_subject: &str,
        headers: async_nats::HeaderMap,
        payload: bytes::Bytes,
    ) -> Result<(), PublishFailure> {
        let ack = self
            .jetstream
            .publish_with_headers(wire_subject.to_string(), headers, payload)
            .await
            .map_err(PublishFailure::from)?;
        tokio::time::timeout(Duration::from_secs(5), ack)
            .await
            .map_err(|_| PublishFailure::Other("no acknowledgement within 5 s".into()))?
            .map_err(PublishFailure::from)?;
        Ok(())
    }

    /// Runs a consumer until shutdown: fetches, calls `handler`, then acks, naks with
    /// delay or terminates. Reconnects with backoff when NATS goes away.
    pub async fn run_consumer<H, F>(&self, spec: ConsumerSpec, handler: H, shutdown: Shutdown)
    where
        H: Fn(Delivery) -> F + Send + Sync,
        F: Future<Output = Outcome> + Send,
    {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            match self.consume_until_error(&spec, &handler, &shutdown).await {
                Ok(()) => return,
                Err(message) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(consumer = %spec.durable, error = %message, retry_in_ms = delay.as_millis() as u64, "consumer interrupted");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {},
                    }
                }
            }
        }
    }

    async fn consume_until_error<H, F>(
        &self,
        spec: &ConsumerSpec,
        handler: &H,
        shutdown: &Shutdown,
    ) -> Result<(), String>
    where
        H: Fn(Delivery) -> F + Send + Sync,
        F: Future<Output = Outcome> + Send,
    {
        let consumer = self
            .ensure_consumer(spec)
            .await
            .map_err(|err| err.to_string())?;
        let mut messages = consumer
            .stream()
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|err| err.to_string())?;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            let message = match next {
                None => return Err("message stream ended".into()),
                Some(Err(err)) => return Err(err.to_string()),
                Some(Ok(message)) => message,
            };
            self.handle_one(spec, handler, message).await;
        }
    }

    async fn handle_one<H, F>(&self, spec: &ConsumerSpec, handler: &H, message: jetstream::Message)
    where
        H: Fn(Delivery) -> F + Send + Sync,
        F: Future<Output = Outcome> + Send,
    {
        let delivery = self.delivery_of(&message);
        let consumer = spec.durable.as_str();
        let span = tracing::info_span!(
            "consumer",
            otel.name = %format!("consume {consumer}"),
            otel.kind = "consumer",
            messaging.system = "nats",
            messaging.consumer.group.name = %consumer,
            messaging.destination.name = %delivery.subject,
            messaging.message.id = %delivery.message_id,
            delivered = delivery.delivered,
            outcome = tracing::field::Empty,
        );
        crate::telemetry::set_parent_traceparent(
            &span,
            delivery
                .headers
                .get(crate::telemetry::TRACEPARENT)
                .map(String::as_str),
        );
        if delivery.delivered > 1 {
            crate::metrics::redelivered(consumer);
        }
        let started = Instant::now();
        let outcome = with_progress(&message, spec.ack_wait, handler(delivery.clone()))
            .instrument(span.clone())
            .await;
        let (ack, label) = async {
            match outcome {
                Outcome::Done => (AckKind::Ack, "done"),
                Outcome::Retry { delay, .. } if delivery.delivered < spec.max_deliver => {
                    (AckKind::Nak(Some(delay)), "retry")
                }
                Outcome::Retry { error, .. } => {
                    self.dead_letter(spec, &delivery, DeadLetterReason::Exhausted, &error)
                        .await
                }
                Outcome::Reject(reason) => {
                    self.dead_letter(spec, &delivery, DeadLetterReason::Rejected, &reason)
                        .await
                }
            }
        }
        .instrument(span.clone())
        .await;
        span.record("outcome", label);
        crate::metrics::message_handled(consumer, label, started.elapsed());
        if let Err(error) = message.ack_with(ack).await {
            // The message will be redelivered; the inbox makes that harmless.
            tracing::warn!(consumer = %spec.durable, subject = %delivery.subject, message_id = %delivery.message_id, %error, "acknowledgement failed");
        }
    }

    /// Keeps a delivery that will not be handled. Returns how to acknowledge it: term
    /// once it is stored (or when there is no store, after logging it in full), nak
    /// when storing failed, so the message comes back rather than being lost.
    async fn dead_letter(
        &self,
        spec: &ConsumerSpec,
        delivery: &Delivery,
        reason: DeadLetterReason,
        error: &str,
    ) -> (AckKind, &'static str) {
        let consumer = spec.durable.as_str();
        let Some(store) = &self.dead_letters else {
            tracing::error!(consumer, subject = %delivery.subject, message_id = %delivery.message_id, delivered = delivery.delivered, reason = reason.as_str(), %error, payload_len = delivery.payload.len(), "message dropped: no dead-letter store");
            crate::metrics::dead_lettered(consumer);
            return (AckKind::Term, "dead_letter");
        };
        match store.store(consumer, delivery, reason, error).await {
            Ok(id) => {
                tracing::error!(consumer, service = store.service(), dead_letter_id = %id, subject = %delivery.subject, message_id = %delivery.message_id, delivered = delivery.delivered, reason = reason.as_str(), %error, "message moved to the dead-letter store");
                crate::metrics::dead_lettered(consumer);
                (AckKind::Term, "dead_letter")
            }
            Err(store_error) => {
                tracing::error!(consumer, subject = %delivery.subject, message_id = %delivery.message_id, %error, store_error = %store_error, "cannot store dead letter; message will come back");
                (AckKind::Nak(Some(Duration::from_secs(30))), "retry")
            }
        }
    }

    fn delivery_of(&self, message: &jetstream::Message) -> Delivery {
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(name))
                .map(|value| value.as_str().to_string())
        };
        let info = message.info().ok();
        let message_id = header(EVENT_ID_HEADER)
            .or_else(|| header("Nats-Msg-Id"))
            .unwrap_or_else(|| {
                let sequence = info.as_ref().map(|info| info.stream_sequence).unwrap_or(0);
                format!("seq:{sequence}")
            });
        let headers = message
            .headers
            .as_ref()
            .map(|headers| {
                headers
                    .iter()
                    .filter_map(|(name, values)| {
                        values
                            .last()
                            .map(|value| (name.to_string(), value.as_str().to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Delivery {
            message_id,
            subject: self.strip_namespace(message.subject.as_str()).to_string(),
            payload: message.payload.clone(),
            delivered: info.map(|info| info.delivered).unwrap_or(1),
            headers,
        }
    }
}

/// Runs the handler while telling JetStream, every third of `ack_wait`, that work is
/// in progress.
async fn with_progress<F: Future<Output = Outcome>>(
    message: &jetstream::Message,
    ack_wait: Duration,
    work: F,
) -> Outcome {
    let period = (ack_wait / 3).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tokio::pin!(work);
    loop {
        tokio::select! {
            outcome = &mut work => return outcome,
            _ = ticker.tick() => {
                if let Err(error) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(%error, "progress heartbeat failed");
                }
            }
        }
    }
}

fn parse_server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>, BusError> {
    if url.split(',').any(|part| part.trim().is_empty()) {
        return Err(BusError::InvalidUrl {
            url: url.to_string(),
            message: "empty server address".into(),
        });
    }
    let addrs: Result<Vec<_>, _> = url
        .split(',')
        .map(|part| part.trim().parse::<async_nats::ServerAddr>())
        .collect();
    match addrs {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(BusError::InvalidUrl {
            url: url.to_string(),
            message: "empty".into(),
        }),
        Err(err) => Err(BusError::InvalidUrl {
            url: url.to_string(),
            message: err.to_string(),
        }),
    }
}

/// How long a publish keeps trying while JetStream says no stream takes the subject.
const STREAM_NOT_READY_GRACE: Duration = Duration::from_secs(3);

/// One publish attempt's failure: "no stream for the subject" (nothing stored, safe to
/// try again while a new stream comes up) or anything else.
enum PublishFailure {
    StreamNotFound(String),
    Other(String),
}

impl From<jetstream::context::PublishError> for PublishFailure {
    fn from(err: jetstream::context::PublishError) -> Self {
        match err.kind() {
            jetstream::context::PublishErrorKind::StreamNotFound => {
                Self::StreamNotFound(err.to_string())
            }
            _ => Self::Other(err.to_string()),
        }
    }
}

/// Exponential backoff from 100 ms to 10 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(10));
        delay
    }

    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays[0], Duration::from_millis(100));
        assert_eq!(delays[1], Duration::from_millis(200));
        assert_eq!(delays[9], Duration::from_secs(10));
    }

    #[test]
    fn bad_urls_are_refused() {
        assert!(parse_server_addrs("nats://127.0.0.1:4222").is_ok());
        assert!(parse_server_addrs("http://[::1").is_err());
        assert!(parse_server_addrs("").is_err());
    }
}
