//! The ticker's reads and writes: syncs whose next tick is due, and firing one tick.
//! Firing moves `next_tick_ms` with a compare-and-set on the value it read, so of two
//! replicas that read the same due tick only one fires it; the run (unique per sync and
//! cause) and its command (outbox id derived from the cause, so the same `Nats-Msg-Id`)
//! make a second attempt harmless anyway.

use super::rows::{sync_of, SyncRow, SYNC_COLUMNS};
use super::SyncStore;
use crate::error::RetlError;
use crate::run::{self, RunRecord};
use crate::sync::SyncRecord;
use backflow_proto::retl::v1::RunTrigger;

/// A sync whose next tick is due.
#[derive(Debug, Clone)]
pub struct DueSync {
    pub record: SyncRecord,
    pub anchor_ms: i64,
    pub next_tick_ms: i64,
}

#[derive(sqlx::FromRow)]
struct DueRow {
    #[sqlx(flatten)]
    sync: SyncRow,
    schedule_anchor_ms: i64,
    next_tick_ms: i64,
}

/// `Nats-Msg-Id` (and outbox id) of the command of a scheduled run.
pub fn tick_message_id(cause: &str) -> String {
    format!("run_sync:{cause}")
}

impl SyncStore {
    /// Unpaused syncs with a tick due at `now_ms`, oldest first, at most `limit`.
    pub async fn due_syncs(&self, now_ms: i64, limit: i64) -> Result<Vec<DueSync>, RetlError> {
        let rows: Vec<DueRow> = sqlx::query_as(&format!(
            "SELECT {SYNC_COLUMNS}, schedule_anchor_ms, next_tick_ms FROM retl_syncs \
             WHERE paused = 0 AND next_tick_ms > 0 AND next_tick_ms <= $1 \
             ORDER BY next_tick_ms, id LIMIT $2"
        ))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(DueSync {
                    record: sync_of(row.sync)?,
                    anchor_ms: row.schedule_anchor_ms,
                    next_tick_ms: row.next_tick_ms,
                })
            })
            .collect()
    }

    /// Fires the tick `due_ms` of a sync (moving its next tick to `next_ms`) unless
    /// another replica did, the sync was paused or its schedule changed since it was
    /// read. Returns the run queued, if this call queued one.
    pub async fn fire_tick(
        &self,
        due: &DueSync,
        next_ms: i64,
        now_ms: i64,
    ) -> Result<Option<RunRecord>, RetlError> {
        let mut tx = self.db.begin().await?;
        let moved = sqlx::query(
            "UPDATE retl_syncs SET next_tick_ms = $1 WHERE id = $2 AND next_tick_ms = $3 AND paused = 0",
        )
        .bind(next_ms)
        .bind(&due.record.id)
        .bind(due.next_tick_ms)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(None);
        }
        let cause = run::schedule_cause(&due.record.id, due.next_tick_ms);
        let run = RunRecord::queued(
            &due.record.workspace_id,
            &due.record.id,
            RunTrigger::Schedule,
            cause.clone(),
            now_ms,
        );
        let queued = self
            .queue_run(&mut tx, &run, Some(&tick_message_id(&cause)))
            .await?;
        tx.commit().await?;
        if queued {
            self.outbox.committed();
            Ok(Some(run))
        } else {
            Ok(None)
        }
    }
}
