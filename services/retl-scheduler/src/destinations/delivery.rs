//! Delivering one run's batches to one destination: what every kind shares, so a kind's
//! module only maps records to requests and answers to results.
//!
//! A [`Deliverer`] sends batches with the destination's concurrency (batches of one run in
//! flight at once), takes a token from the account's shared [`RateLimiter`] before every
//! attempt, retries rate limits and transient failures on its [`RetrySchedule`] (a
//! `Retry-After` also pauses every other sender to the same account), and turns a batch
//! that finally fails into a `Failed` result for each of its records, with the error's
//! message and status. It always answers one result per record, in the batch's order.
//! [`Batcher`] cuts a run's records into batches with stable idempotency keys.
//!
//! Requests are counted from each successful send's [`BatchResult::requests`](super::BatchResult::requests) and as one
//! per failed attempt. The rate limit is taken once per attempt (a Salesforce job's few
//! calls count as one). Dropping the stream of [`Deliverer::deliver`] cancels the batches in
//! flight: they have no results, so a resumed run sends them again (same idempotency keys).
//!
//! An endpoint gone ([`DestinationError::EndpointGone`], a webhook's 410) is remembered:
//! every later attempt of this deliverer fails with the same error without a request, so
//! the batches already in flight stop too (the run ends after the first one settles).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use rand::Rng;

use super::rate_limit::{RateLimiter, RateLimits};
use super::retry::{Next, RetrySchedule};
use super::{
    Destination, DestinationError, Operation, OutboundBatch, OutboundRecord, RecordOutcome,
    RecordResult,
};

/// How a run delivers; all optional but the schedule.
#[derive(Debug, Clone, Default)]
pub struct DeliveryOptions {
    pub retry: RetrySchedule,
    /// The destination's `rate_limit_per_second`; `None` or ≤ 0 → the kind's default.
    pub rate_limit_per_second: Option<f64>,
    /// Batches in flight; `None` → the destination's `max_concurrency`.
    pub max_concurrency: Option<usize>,
}

/// What became of one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveredBatch {
    pub batch: OutboundBatch,
    /// One per record of `batch`, in its order.
    pub results: Vec<RecordResult>,
    /// Sends, the first included.
    pub attempts: u32,
    pub requests: u64,
    /// The error that ended the batch (every record then failed with it).
    pub error: Option<DestinationError>,
}

impl DeliveredBatch {
    pub fn delivered(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome == RecordOutcome::Delivered)
            .count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.delivered()
    }
}

/// The HTTP status an error carries (credentials: 401; 0 when not HTTP).
pub fn error_status(error: &DestinationError) -> u16 {
    match error {
        DestinationError::RateLimited { status, .. } => *status,
        DestinationError::Transient { status, .. } | DestinationError::Rejected { status, .. } => {
            *status
        }
        DestinationError::Authentication(_) => 401,
        DestinationError::EndpointGone { .. } => 410,
        DestinationError::Settings(_) | DestinationError::Unsupported(_) => 0,
    }
}

/// Sends one run's batches to one destination.
#[derive(Debug)]
pub struct Deliverer {
    destination: Arc<dyn Destination>,
    limiter: Arc<RateLimiter>,
    retry: RetrySchedule,
    concurrency: usize,
    requests: AtomicU64,
    /// The first endpoint-gone answer: no request is sent after it.
    gone: std::sync::OnceLock<DestinationError>,
}

impl Deliverer {
    /// A deliverer sharing the process-wide rate limit of the destination's account.
    pub fn new(destination: Arc<dyn Destination>, options: DeliveryOptions) -> Self {
        Self::with_registry(destination, options, RateLimits::global())
    }

    /// The same with another registry (tests isolate themselves with their own).
    pub fn with_registry(
        destination: Arc<dyn Destination>,
        options: DeliveryOptions,
        registry: &RateLimits,
    ) -> Self {
        let capabilities = destination.capabilities();
        let rate = options
            .rate_limit_per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .unwrap_or(capabilities.default_rate_per_second);
        let key = format!("{:?}:{}", destination.kind(), destination.rate_limit_key());
        Self {
            limiter: registry.limiter(&key, rate),
            retry: options.retry,
            concurrency: options
                .max_concurrency
                .unwrap_or(capabilities.max_concurrency)
                .max(1),
            destination,
            requests: AtomicU64::new(0),
            gone: std::sync::OnceLock::new(),
        }
    }

    pub fn destination(&self) -> &Arc<dyn Destination> {
        &self.destination
    }

    /// Records per batch the destination takes.
    pub fn max_batch_records(&self) -> usize {
        self.destination.capabilities().max_batch_records.max(1)
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Requests sent so far by this deliverer.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Sends one batch, retrying on the schedule; never fails (a final error becomes the
    /// failure of every record).
    #[tracing::instrument(skip_all, fields(batch = %batch.idempotency_key, records = batch.records.len()))]
    pub async fn send(&self, batch: OutboundBatch) -> DeliveredBatch {
        if batch.records.is_empty() {
            return DeliveredBatch {
                batch,
                results: Vec::new(),
                attempts: 0,
                requests: 0,
                error: None,
            };
        }
        if batch.operation == Operation::Delete && !self.destination.capabilities().deletes {
            let error = DestinationError::Unsupported("deletes".into());
            return self.failed(batch, error, 0, 0);
        }
        let mut attempt = 0u32;
        let mut requests = 0u64;
        loop {
            if let Some(gone) = self.gone.get() {
                return self.failed(batch, gone.clone(), attempt, requests);
            }
            attempt += 1;
            self.limiter.acquire().await;
            if let Some(gone) = self.gone.get() {
                return self.failed(batch, gone.clone(), attempt - 1, requests);
            }
            match self.destination.send(&batch).await {
                Ok(result) => {
                    requests += result.requests.max(1);
                    self.requests
                        .fetch_add(result.requests.max(1), Ordering::Relaxed);
                    let results = complete(&batch.records, result.results);
                    return DeliveredBatch {
                        batch,
                        results,
                        attempts: attempt,
                        requests,
                        error: None,
                    };
                }
                Err(error) => {
                    requests += 1;
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    if let DestinationError::EndpointGone { endpoint, .. } = &error {
                        tracing::warn!(%endpoint, error = %error, "destination endpoint gone, sending nothing more");
                        let _ = self.gone.set(error.clone());
                        return self.failed(batch, error, attempt, requests);
                    }
                    if let DestinationError::RateLimited {
                        retry_after: Some(after),
                        ..
                    } = &error
                    {
                        if *after <= self.retry.max_retry_after {
                            self.limiter.pause_for(*after);
                        }
                    }
                    let jitter: f64 = rand::thread_rng().gen();
                    match self.retry.next(attempt, &error, jitter) {
                        Next::RetryAfter(wait) => {
                            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %error, "destination batch failed, retrying");
                            tokio::time::sleep(wait).await;
                        }
                        Next::GiveUp => {
                            tracing::warn!(attempt, error = %error, "destination batch failed for good");
                            return self.failed(batch, error, attempt, requests);
                        }
                    }
                }
            }
        }
    }

    fn failed(
        &self,
        batch: OutboundBatch,
        error: DestinationError,
        attempts: u32,
        requests: u64,
    ) -> DeliveredBatch {
        let message = error.to_string();
        let status = error_status(&error);
        let results = batch
            .records
            .iter()
            .map(|r| RecordResult {
                key_hash: r.key_hash,
                outcome: RecordOutcome::Failed {
                    message: message.clone(),
                    status,
                },
            })
            .collect();
        DeliveredBatch {
            batch,
            results,
            attempts,
            requests,
            error: Some(error),
        }
    }

    /// Sends a stream of batches, at most [`Deliverer::concurrency`] at once, yielding each
    /// as it completes (not necessarily in order).
    pub fn deliver<'a, S>(&'a self, batches: S) -> impl Stream<Item = DeliveredBatch> + Send + 'a
    where
        S: Stream<Item = OutboundBatch> + Send + 'a,
    {
        batches
            .map(move |batch| self.send(batch))
            .buffer_unordered(self.concurrency)
    }

    /// Sends all batches and collects what became of them (in completion order).
    pub async fn deliver_all(&self, batches: Vec<OutboundBatch>) -> Vec<DeliveredBatch> {
        self.deliver(futures::stream::iter(batches)).collect().await
    }
}

/// One result per record in the batch's order; records the destination said nothing
/// about failed (never silently delivered).
fn complete(records: &[OutboundRecord], results: Vec<RecordResult>) -> Vec<RecordResult> {
    // What destinations answer: one result per record, in order (no map needed).
    if results.len() == records.len()
        && results
            .iter()
            .zip(records)
            .all(|(result, record)| result.key_hash == record.key_hash)
    {
        return results;
    }
    let mut by_hash: HashMap<u64, RecordOutcome> = results
        .into_iter()
        .map(|r| (r.key_hash, r.outcome))
        .collect();
    records
        .iter()
        .map(|r| RecordResult {
            key_hash: r.key_hash,
            outcome: by_hash
                .remove(&r.key_hash)
                .unwrap_or(RecordOutcome::Failed {
                    message: "the destination returned no result for this record".into(),
                    status: 0,
                }),
        })
        .collect()
}

/// The idempotency key of a run's `sequence`-th batch of `operation`: stable as long as
/// the run cuts its (sorted) records the same way, e.g. `r-42:upsert:7`.
pub fn idempotency_key(run_id: &str, operation: Operation, sequence: u64) -> String {
    let op = super::webhook::operation_name(operation);
    format!("{run_id}:{op}:{sequence}")
}

/// The idempotency key of a batch by what it carries: the run, the operation and an XXH3
/// over each record's (key hash, row word), e.g. `r-42:upsert:9f86d081884c7d65`. A batch
/// resent with the same records at the same versions (a retry, or a resumed run cutting
/// the same batch again) has the same key, so a destination that deduplicates on it drops
/// the resend; a batch with any other record or version has another key, so it is never
/// mistaken for one already applied (which would lose its records).
pub fn content_key(
    run_id: &str,
    operation: Operation,
    entries: impl IntoIterator<Item = (u64, u64)>,
) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for (key_hash, row_word) in entries {
        hasher.update(&key_hash.to_le_bytes());
        hasher.update(&row_word.to_le_bytes());
    }
    let op = super::webhook::operation_name(operation);
    format!("{run_id}:{op}:{:016x}", hasher.digest())
}

/// Cuts one run's records of one operation into batches of at most `max_records`,
/// numbering them from `first_sequence`.
#[derive(Debug)]
pub struct Batcher {
    sync_id: String,
    run_id: String,
    operation: Operation,
    options: Arc<BTreeMap<String, String>>,
    max_records: usize,
    next_sequence: u64,
    pending: Vec<OutboundRecord>,
}

impl Batcher {
    pub fn new(
        sync_id: impl Into<String>,
        run_id: impl Into<String>,
        operation: Operation,
        options: Arc<BTreeMap<String, String>>,
        max_records: usize,
        first_sequence: u64,
    ) -> Self {
        let max_records = max_records.max(1);
        Self {
            sync_id: sync_id.into(),
            run_id: run_id.into(),
            operation,
            options,
            max_records,
            next_sequence: first_sequence,
            pending: Vec::with_capacity(max_records),
        }
    }

    /// The sequence number the next batch gets.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Adds a record; returns a full batch when this one filled it.
    pub fn push(&mut self, record: OutboundRecord) -> Option<OutboundBatch> {
        self.pending.push(record);
        (self.pending.len() >= self.max_records).then(|| self.cut())
    }

    /// The last, partial batch, if any records are left.
    pub fn finish(&mut self) -> Option<OutboundBatch> {
        (!self.pending.is_empty()).then(|| self.cut())
    }

    fn cut(&mut self) -> OutboundBatch {
        let records = std::mem::replace(&mut self.pending, Vec::with_capacity(self.max_records));
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        OutboundBatch {
            sync_id: self.sync_id.clone(),
            run_id: self.run_id.clone(),
            operation: self.operation,
            idempotency_key: idempotency_key(&self.run_id, self.operation, sequence),
            options: Arc::clone(&self.options),
            records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hash: u64) -> OutboundRecord {
        OutboundRecord {
            key_hash: hash,
            key: super::super::JsonObject::default(),
            fields: super::super::JsonObject::default(),
        }
    }

    #[test]
    fn batches_are_cut_with_stable_keys() {
        let mut b = Batcher::new("s", "r", Operation::Delete, Arc::default(), 2, 5);
        assert!(b.push(record(1)).is_none());
        let first = b.push(record(2)).unwrap();
        assert_eq!(first.idempotency_key, "r:delete:5");
        assert_eq!(first.records.len(), 2);
        assert!(b.push(record(3)).is_none());
        let last = b.finish().unwrap();
        assert_eq!(last.idempotency_key, "r:delete:6");
        assert_eq!(last.records, vec![record(3)]);
        assert!(b.finish().is_none());
        assert_eq!(b.next_sequence(), 7);
    }

    #[test]
    fn content_keys_follow_records_and_versions() {
        let key = |entries: &[(u64, u64)]| content_key("r", Operation::Upsert, entries.to_vec());
        assert_eq!(key(&[(1, 10), (2, 20)]), key(&[(1, 10), (2, 20)]));
        assert_ne!(key(&[(1, 10), (2, 20)]), key(&[(1, 10), (2, 21)]));
        assert_ne!(key(&[(1, 10), (2, 20)]), key(&[(1, 10)]));
        assert_ne!(
            content_key("r", Operation::Delete, [(1, 0)]),
            content_key("r", Operation::Upsert, [(1, 0)])
        );
        assert!(key(&[(1, 10)]).starts_with("r:upsert:"));
        assert_eq!(key(&[(1, 10)]).len(), "r:upsert:".len() + 16);
    }

    #[test]
    fn results_in_order_are_kept_as_answered() {
        let failed = RecordOutcome::Failed {
            message: "no".into(),
            status: 422,
        };
        let answered = vec![
            RecordResult {
                key_hash: 1,
                outcome: RecordOutcome::Delivered,
            },
            RecordResult {
                key_hash: 2,
                outcome: failed.clone(),
            },
        ];
        assert_eq!(
            complete(&[record(1), record(2)], answered.clone()),
            answered
        );
        // out of order: matched by key hash
        let swapped: Vec<RecordResult> = answered.iter().rev().cloned().collect();
        assert_eq!(complete(&[record(1), record(2)], swapped), answered);
    }

    #[test]
    fn missing_results_are_failures() {
        let got = complete(
            &[record(1), record(2)],
            vec![RecordResult {
                key_hash: 2,
                outcome: RecordOutcome::Delivered,
            }],
        );
        assert!(matches!(got[0].outcome, RecordOutcome::Failed { .. }));
        assert_eq!(got[1].outcome, RecordOutcome::Delivered);
        assert_eq!(got[0].key_hash, 1);
    }
}
