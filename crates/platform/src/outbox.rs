//! The transactional outbox. A service writes its change and the event that announces
//! it in one transaction; the relay publishes pending rows in order, with the row id as
//! `Nats-Msg-Id`, and marks them published only after JetStream acknowledged. If NATS
//! is down, rows wait; nothing is lost and nothing is published that was rolled back.
//!
//! Each row keeps the W3C `traceparent` of the span that wrote it; the relay sends it
//! as a NATS header, so the consumer's span joins the writer's trace.

use crate::bus::{Backoff, Bus};
use crate::db::{Database, Transaction};
use crate::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const BATCH: i64 = 100;
const IDLE_POLL: Duration = Duration::from_millis(500);
const RETENTION_MS: i64 = 24 * 3600 * 1000;
const GAUGE_EVERY_MS: i64 = 2_000;

/// Writes events into the outbox inside the caller's transaction and wakes the relay
/// after commit.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an event to the caller's transaction; returns its id.
    pub async fn enqueue(
        &self,
        tx: &mut Transaction<'_>,
        subject: &str,
        payload: &impl prost::Message,
    ) -> Result<String, sqlx::Error> {
        let id = crate::new_id();
        self.enqueue_with_id(tx, &id, subject, payload).await?;
        Ok(id)
    }

    /// Adds an event whose id (and so `Nats-Msg-Id`) the caller derives from what caused
    /// it, so replicas that write the same event make one message: a second row with the
    /// same id is refused by the table's unique id, and JetStream's duplicate window drops
    /// a second publish.
    pub async fn enqueue_with_id(
        &self,
        tx: &mut Transaction<'_>,
        id: &str,
        subject: &str,
        payload: &impl prost::Message,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO platform_outbox (id, subject, payload, created_at_ms, traceparent) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(subject)
        .bind(payload.encode_to_vec())
        .bind(crate::now_unix_ms())
        .bind(crate::telemetry::current_traceparent())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Call after the transaction committed, so the relay doesn't wait for its poll.
    pub fn committed(&self) {
        self.wake.notify_one();
    }

    /// Publishes pending rows until shutdown.
    pub async fn run_relay(&self, db: Database, bus: Bus, shutdown: Shutdown) {
        self.run_relay_for("", db, bus, shutdown).await;
    }

    /// Same as [`Outbox::run_relay`], reporting `backflow_outbox_pending` for `service`.
    pub async fn run_relay_for(&self, service: &str, db: Database, bus: Bus, shutdown: Shutdown) {
        let mut backoff = Backoff::default();
        let mut last_cleanup = 0_i64;
        let mut last_gauge = 0_i64;
        while !shutdown.is_cancelled() {
            let now = crate::now_unix_ms();
            if !service.is_empty() && now - last_gauge >= GAUGE_EVERY_MS {
                last_gauge = now;
                if let Ok(pending) = pending_count(&db).await {
                    crate::metrics::outbox_pending(service, pending);
                }
            }
            match relay_batch(&db, &bus).await {
                Ok(published) => {
                    backoff.reset();
                    if published as i64 == BATCH {
                        continue;
                    }
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "outbox relay cannot publish yet");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            }
            let now = crate::now_unix_ms();
            if now - last_cleanup > 60_000 {
                last_cleanup = now;
                if let Err(error) = delete_published_before(&db, now - RETENTION_MS).await {
                    tracing::warn!(%error, "outbox cleanup failed");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {},
                () = tokio::time::sleep(IDLE_POLL) => {},
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("reading outbox: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
}

/// Publishes up to one batch in sequence order; stops at the first failure so order
/// is kept. Returns how many were published.
pub async fn relay_batch(db: &Database, bus: &Bus) -> Result<usize, RelayError> {
    type Row = (i64, String, String, Vec<u8>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT seq, id, subject, payload, traceparent FROM platform_outbox WHERE published_at_ms IS NULL ORDER BY seq LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(db.pool())
    .await?;
    let mut published = 0;
    for (seq, id, subject, payload, traceparent) in rows {
        let sent = bus
            .publish_traced(&subject, &id, payload.into(), traceparent.as_deref())
            .await;
        if let Err(error) = sent {
            record_failure(db, seq, &error.to_string()).await;
            return Err(error.into());
        }
        sqlx::query("UPDATE platform_outbox SET published_at_ms = $1 WHERE seq = $2")
            .bind(crate::now_unix_ms())
            .bind(seq)
            .execute(db.pool())
            .await?;
        tracing::debug!(%subject, event_id = %id, "event published");
        published += 1;
    }
    Ok(published)
}

async fn record_failure(db: &Database, seq: i64, error: &str) {
    let updated = sqlx::query(
        "UPDATE platform_outbox SET attempts = attempts + 1, last_error = $1 WHERE seq = $2",
    )
    .bind(error)
    .bind(seq)
    .execute(db.pool())
    .await;
    if let Err(db_error) = updated {
        tracing::warn!(error = %db_error, "cannot record outbox failure");
    }
}

async fn delete_published_before(db: &Database, cutoff_ms: i64) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "DELETE FROM platform_outbox WHERE published_at_ms IS NOT NULL AND published_at_ms < $1",
    )
    .bind(cutoff_ms)
    .execute(db.pool())
    .await?;
    Ok(result.rows_affected())
}

/// Number of events not yet published (for health and tests).
pub async fn pending_count(db: &Database) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM platform_outbox WHERE published_at_ms IS NULL")
            .fetch_one(db.pool())
            .await?;
    Ok(count)
}
