//! Delivery of one run's records: batches per operation, cut with content-derived
//! idempotency keys, sent as tasks of their own (so the destination's request building
//! and I/O run beside the loop reading the spill), at most the destination's concurrency
//! at once; their results settled into the run's bookkeeping and checkpoint.
//!
//! Records an earlier attempt of the run got acknowledged still take their place when
//! batches are cut (and are settled as delivered, not sent), so a resumed run cuts the
//! batches the interrupted attempt cut and resends an unacknowledged one whole, under its
//! content key ([`content_key`]): a destination that deduplicates drops the resend.
//!
//! A batch that met an endpoint gone (a webhook's 410) ends the delivery: its records
//! are settled as failed (never given up for it) and settling returns the error, which
//! stops the run; the batches still in flight are dropped (aborted).

use crate::destinations::delivery::{content_key, DeliveredBatch, Deliverer};
use crate::destinations::{
    DestinationError, Operation, OutboundBatch, OutboundRecord, RecordOutcome,
};
use crate::diff::Change;
use crate::executor::checkpoint::Checkpoint;
use crate::executor::error::ExecError;
use crate::run::{RunCounts, RunRecord};
use crate::store::runs::RecordError;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio_util::sync::CancellationToken;

/// What a record in flight is, to settle its result (its key text comes back with the
/// delivered batch).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlight {
    pub key_hash: u64,
    pub row_word: u64,
    pub change: Change,
}

/// Delivery bookkeeping of one run.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    /// Key values and change of delivered records, when the run keeps a ledger.
    pub ledger: Option<Vec<(String, Change)>>,
    /// Refused by the destination (retried next run until given up).
    pub failed: Vec<u64>,
    /// Refused by the mapping (null policy): kept out of the state, never given up.
    pub rejected: Vec<u64>,
    /// Key values of delivered additions, when the run keeps them (mirror: its deletes
    /// need them later).
    pub delivered_adds: Option<Vec<(u64, String)>>,
    pub delivered_deletes: Vec<u64>,
    pub delivered: Vec<u64>,
    pub errors: Vec<RecordError>,
}

/// The key text of a record whose batch did not come back (cancelled, task failed).
fn unknown_key(key_hash: u64) -> String {
    format!("{{\"key_hash\":\"{key_hash:016x}\"}}")
}

/// A spawned batch: aborted when dropped (a run that stops early stops its sends).
struct Sending(tokio::task::JoinHandle<Option<DeliveredBatch>>);

impl Drop for Sending {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Future for Sending {
    /// `None`: cancelled or the task failed; its records have no result.
    type Output = Option<DeliveredBatch>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(delivered) => delivered,
            Err(error) => {
                tracing::error!(%error, "a delivery task failed; its records count as failed");
                None
            }
        })
    }
}

type BatchFuture = Pin<Box<dyn Future<Output = (Vec<InFlight>, Option<DeliveredBatch>)> + Send>>;

/// Records of one operation not yet sent, with what settles each.
type OpenBatch = (Vec<OutboundRecord>, Vec<InFlight>);

/// Batches records per operation and keeps up to `max_in_flight` batches in flight.
pub(crate) struct Sender<'a> {
    pub deliverer: Arc<Deliverer>,
    pub run: &'a RunRecord,
    pub options: Arc<std::collections::BTreeMap<String, String>>,
    pub max_records: usize,
    pub max_in_flight: usize,
    /// Open batches per operation (a run has one or two: a short list, searched per record,
    /// is cheaper than hashing the operation).
    pub open: Vec<(Operation, OpenBatch)>,
    pub in_flight: FuturesUnordered<BatchFuture>,
    /// (key hash → row word) acknowledged by earlier attempts of this run.
    pub acked: HashMap<u64, u64>,
    pub outcomes: Outcomes,
    /// Failed deliveries of earlier runs per key hash.
    pub attempts: HashMap<u64, i32>,
    pub max_attempts: i32,
}

impl Sender<'_> {
    pub async fn push(
        &mut self,
        operation: Operation,
        record: OutboundRecord,
        meta: InFlight,
        counts: &mut RunCounts,
        checkpoint: &mut Checkpoint,
        cancel: &CancellationToken,
    ) -> Result<(), ExecError> {
        if self.stage(operation, record, meta) {
            self.cut_full(operation, counts, checkpoint, cancel).await?;
        }
        Ok(())
    }

    /// Adds a record to its operation's open batch, without waiting for anything; `true`
    /// when that batch is now full and must be cut ([`Sender::cut_full`]) before the next
    /// record. Split from the cut so a per-record loop awaits only once per batch.
    #[inline]
    pub fn stage(&mut self, operation: Operation, record: OutboundRecord, meta: InFlight) -> bool {
        let max_records = self.max_records;
        let at = match self.open.iter().position(|(open, _)| *open == operation) {
            Some(at) => at,
            None => {
                self.open.push((
                    operation,
                    (
                        Vec::with_capacity(max_records),
                        Vec::with_capacity(max_records),
                    ),
                ));
                self.open.len() - 1
            }
        };
        let open = &mut self.open[at].1;
        open.0.push(record);
        open.1.push(meta);
        open.0.len() >= max_records
    }

    /// Sends the open batch of `operation` and waits while too many are in flight.
    pub async fn cut_full(
        &mut self,
        operation: Operation,
        counts: &mut RunCounts,
        checkpoint: &mut Checkpoint,
        cancel: &CancellationToken,
    ) -> Result<(), ExecError> {
        if let Some(at) = self.open.iter().position(|(open, _)| *open == operation) {
            let (_, (records, metas)) = self.open.swap_remove(at);
            self.cut(operation, records, metas, counts, cancel);
        }
        while self.in_flight.len() >= self.max_in_flight {
            self.settle_next(counts, checkpoint).await?;
        }
        Ok(())
    }

    /// Settles the batch's records acknowledged earlier and sends the rest, if any.
    fn cut(
        &mut self,
        operation: Operation,
        records: Vec<OutboundRecord>,
        metas: Vec<InFlight>,
        counts: &mut RunCounts,
        cancel: &CancellationToken,
    ) {
        let earlier: Vec<bool> = if self.acked.is_empty() {
            Vec::new()
        } else {
            metas
                .iter()
                .map(|meta| self.acked.get(&meta.key_hash) == Some(&meta.row_word))
                .collect()
        };
        let (records, metas) = if earlier.contains(&true) {
            let mut to_send = (
                Vec::with_capacity(records.len()),
                Vec::with_capacity(metas.len()),
            );
            for ((record, meta), earlier) in records.into_iter().zip(metas).zip(earlier) {
                if earlier {
                    counts.delivered += 1;
                    self.settle_delivered(&meta, record.key.as_str());
                } else {
                    to_send.0.push(record);
                    to_send.1.push(meta);
                }
            }
            to_send
        } else {
            (records, metas)
        };
        if !records.is_empty() {
            let idempotency_key = content_key(
                &self.run.id,
                operation,
                metas.iter().map(|meta| (meta.key_hash, meta.row_word)),
            );
            self.dispatch(operation, idempotency_key, records, metas, cancel);
        }
    }

    fn dispatch(
        &mut self,
        operation: Operation,
        idempotency_key: String,
        records: Vec<OutboundRecord>,
        metas: Vec<InFlight>,
        cancel: &CancellationToken,
    ) {
        let batch = OutboundBatch {
            sync_id: self.run.sync_id.clone(),
            run_id: self.run.id.clone(),
            operation,
            idempotency_key,
            options: self.options.clone(),
            records,
        };
        let deliverer = self.deliverer.clone();
        let cancel = cancel.clone();
        let sending = Sending(tokio::spawn(async move {
            // A cancelled run stops waiting for its batches; their records count as failed.
            tokio::select! {
                delivered = deliverer.send(batch) => Some(delivered),
                () = cancel.cancelled() => None,
            }
        }));
        self.in_flight
            .push(Box::pin(async move { (metas, sending.await) }));
    }

    pub async fn settle_next(
        &mut self,
        counts: &mut RunCounts,
        checkpoint: &mut Checkpoint,
    ) -> Result<(), ExecError> {
        let Some((metas, delivered)) = self.in_flight.next().await else {
            return Ok(());
        };
        let (records, results, gone) = match delivered {
            Some(delivered) => {
                counts.requests += delivered.requests as i64;
                let gone = delivered
                    .error
                    .filter(|error| matches!(error, DestinationError::EndpointGone { .. }));
                (delivered.batch.records, delivered.results, gone)
            }
            None => (Vec::new(), Vec::new(), None),
        };
        // The deliverer answers one result per record in the batch's order; anything
        // else is matched by key hash.
        let in_order = results.len() == metas.len()
            && results
                .iter()
                .zip(&metas)
                .all(|(result, meta)| result.key_hash == meta.key_hash);
        let outcomes: Vec<Option<RecordOutcome>> = if in_order {
            results.into_iter().map(|r| Some(r.outcome)).collect()
        } else {
            let mut by_hash: HashMap<u64, RecordOutcome> = results
                .into_iter()
                .map(|r| (r.key_hash, r.outcome))
                .collect();
            metas.iter().map(|m| by_hash.remove(&m.key_hash)).collect()
        };
        for (at, (meta, outcome)) in metas.iter().zip(outcomes).enumerate() {
            let key = records.get(at).map(|record| record.key.as_str());
            match outcome {
                Some(RecordOutcome::Delivered) => {
                    checkpoint.ack(meta.key_hash, meta.row_word);
                    counts.delivered += 1;
                    let text;
                    let key = match key {
                        Some(key) => key,
                        None => {
                            text = unknown_key(meta.key_hash);
                            &text
                        }
                    };
                    self.settle_delivered(meta, key);
                }
                failure => {
                    let (message, status) = match failure {
                        Some(RecordOutcome::Failed { message, status }) => {
                            (message, i32::from(status))
                        }
                        _ => (
                            "the destination reported no result for this record".to_string(),
                            0,
                        ),
                    };
                    counts.failed += 1;
                    self.outcomes.failed.push(meta.key_hash);
                    let tries = self.attempts.get(&meta.key_hash).copied().unwrap_or(0) + 1;
                    // the endpoint being gone is no fault of the record
                    let given_up = gone.is_none() && tries >= self.max_attempts;
                    if given_up {
                        counts.given_up += 1;
                    }
                    self.outcomes.errors.push(RecordError {
                        change: super::record_change(meta.change),
                        key_json: key
                            .map(str::to_string)
                            .unwrap_or_else(|| unknown_key(meta.key_hash)),
                        rejected: false,
                        message,
                        destination_status: status,
                        attempts: tries,
                        given_up,
                    });
                }
            }
        }
        checkpoint.flush(false).await?;
        match gone {
            Some(gone) => Err(gone.into()),
            None => Ok(()),
        }
    }

    fn settle_delivered(&mut self, meta: &InFlight, key_json: &str) {
        self.outcomes.delivered.push(meta.key_hash);
        if let Some(ledger) = &mut self.outcomes.ledger {
            ledger.push((key_json.to_string(), meta.change));
        }
        match meta.change {
            Change::Added => {
                if let Some(adds) = &mut self.outcomes.delivered_adds {
                    adds.push((meta.key_hash, key_json.to_string()));
                }
            }
            Change::Deleted => self.outcomes.delivered_deletes.push(meta.key_hash),
            Change::Updated => {}
        }
    }

    /// Sends what is still open and waits for every batch.
    pub async fn drain(
        &mut self,
        counts: &mut RunCounts,
        checkpoint: &mut Checkpoint,
        cancel: &CancellationToken,
    ) -> Result<(), ExecError> {
        let open: Vec<(Operation, OpenBatch)> = std::mem::take(&mut self.open);
        for (operation, (records, metas)) in open {
            self.cut(operation, records, metas, counts, cancel);
        }
        while !self.in_flight.is_empty() {
            self.settle_next(counts, checkpoint).await?;
        }
        Ok(())
    }
}
