//! The ticker's reads and writes: syncs whose next tick is due, and firing one tick.
//! Firing moves `next_tick_ms` with a compare-and-set on the value it read, so of two
//! replicas that read the same due tick only one fires it; the run (unique per sync and
//! cause) and its command (outbox id derived from the cause, so the same `Nats-Msg-Id`)
//! make a second attempt harmless anyway.
//!
//! A tick whose sync still has a queued run (waiting for an executor, or handed back to
//! resume, which extracts again; not a dry run) queues nothing: it is folded into that
//! run (its `coalesced_ticks` + 1), which reads the warehouse after the tick anyway. So a sync slower than its schedule holds at most one queued
//! run behind the running one, instead of a backlog growing by one run per tick.

use super::rows::{sync_of, SyncRow, SYNC_COLUMNS};
use super::SyncStore;
use crate::error::RetlError;
use crate::run::{self, RunRecord};
use crate::sync::SyncRecord;
use backflow_platform::db::Transaction;
use backflow_proto::retl::v1::{RunStatus, RunTrigger};

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

/// What firing a tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// This call queued the tick's run.
    Queued(Box<RunRecord>),
    /// A run of the sync was still queued: the tick was folded into it (no new run).
    Coalesced {
        run_id: String,
        coalesced_ticks: i32,
    },
    /// Another replica fired it, or the sync was paused or rescheduled since it was read.
    NotFired,
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
    /// read: queues its run, or folds the tick into a run of the sync still queued.
    pub async fn fire_tick(
        &self,
        due: &DueSync,
        next_ms: i64,
        now_ms: i64,
    ) -> Result<Fired, RetlError> {
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
            return Ok(Fired::NotFired);
        }
        if let Some((run_id, coalesced_ticks)) =
            Self::coalesce_into_queued(&mut tx, &due.record.id).await?
        {
            tx.commit().await?;
            return Ok(Fired::Coalesced {
                run_id,
                coalesced_ticks,
            });
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
            Ok(Fired::Queued(Box::new(run)))
        } else {
            Ok(Fired::NotFired)
        }
    }

    /// Counts a tick on the oldest queued run of the sync (not a dry run, which sends
    /// nothing), if there is one: its id and how many ticks it now stands for. A run
    /// claimed meanwhile is not counted on (the tick then queues a run of its own).
    async fn coalesce_into_queued(
        tx: &mut Transaction<'_>,
        sync_id: &str,
    ) -> Result<Option<(String, i32)>, RetlError> {
        let queued: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM retl_runs WHERE sync_id = $1 AND status = $2 AND dry_run = 0 \
             ORDER BY queued_at_ms, id LIMIT 1",
        )
        .bind(sync_id)
        .bind(RunStatus::Queued as i32)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((run_id,)) = queued else {
            return Ok(None);
        };
        let counted = sqlx::query(
            "UPDATE retl_runs SET coalesced_ticks = coalesced_ticks + 1 WHERE id = $1 AND status = $2",
        )
        .bind(&run_id)
        .bind(RunStatus::Queued as i32)
        .execute(&mut **tx)
        .await?;
        if counted.rows_affected() != 1 {
            return Ok(None);
        }
        let (coalesced_ticks,): (i32,) =
            sqlx::query_as("SELECT coalesced_ticks FROM retl_runs WHERE id = $1")
                .bind(&run_id)
                .fetch_one(&mut **tx)
                .await?;
        Ok(Some((run_id, coalesced_ticks)))
    }
}
