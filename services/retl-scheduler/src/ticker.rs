//! Turns interval and cron schedules into runs, safely on any number of scheduler
//! replicas. Each sync row holds its next due tick; a replica that finds it due fires it
//! with a compare-and-set (see `store::ticks`), queueing one run with cause
//! `sync:<id>:<tick_ms>` and its command with a `Nats-Msg-Id` derived from that cause.
//! So the same tick on two replicas makes one run and one message.
//!
//! Ticks missed while every replica was down fire once (the first missed one), and the
//! next tick is computed from now, so a backlog never turns into a burst. Paused syncs
//! fire nothing, and resuming one restarts its ticks from the moment of resuming.
//!
//! A tick that comes while a run of its sync is still queued makes no run: it is folded
//! into the queued one (counted on it, and logged), so a sync slower than its schedule
//! never builds a backlog. Replica safety is unchanged: the compare-and-set lets one
//! replica fire (queue or coalesce) each tick.

use crate::schedule::{self, Schedule};
use crate::store::{Fired, SyncStore};
use backflow_platform::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// Syncs fired per pass at most (the next pass picks up the rest).
const BATCH: i64 = 200;

/// Where the ticker reads the time (unix ms); tests run it faster than real time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The real clock.
pub fn system_clock() -> Clock {
    Arc::new(backflow_platform::now_unix_ms)
}

/// What to do with a sync whose stored next tick is `due_ms`, at `now_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickPlan {
    /// The tick to fire (its time names the run's cause).
    pub fire_ms: i64,
    /// The next tick to store (0: none).
    pub next_ms: i64,
}

/// Plans the tick of a sync: `None` if nothing is due. Any number of missed ticks fire
/// once, as the first missed tick; the next tick is the first one after `now_ms`.
pub fn plan(schedule: &Schedule, anchor_ms: i64, due_ms: i64, now_ms: i64) -> Option<TickPlan> {
    if due_ms <= 0 || due_ms > now_ms {
        return None;
    }
    Some(TickPlan {
        fire_ms: due_ms,
        next_ms: schedule::next_tick(schedule, anchor_ms, now_ms).unwrap_or(0),
    })
}

#[derive(Clone)]
pub struct Ticker {
    store: SyncStore,
    clock: Clock,
    every: Duration,
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Ticker {
    pub fn new(store: SyncStore, clock: Clock, every: Duration) -> Self {
        Self {
            store,
            clock,
            every,
        }
    }

    /// Fires every due tick once; returns how many runs this replica queued.
    pub async fn pass(&self) -> Result<usize, crate::error::RetlError> {
        let now = (self.clock)();
        let mut queued = 0;
        for due in self.store.due_syncs(now, BATCH).await? {
            let Some(plan) = plan(&due.record.schedule, due.anchor_ms, due.next_tick_ms, now)
            else {
                continue;
            };
            match self.store.fire_tick(&due, plan.next_ms, now).await? {
                Fired::Queued(run) => {
                    queued += 1;
                    tracing::info!(
                        workspace_id = %run.workspace_id,
                        sync_id = %run.sync_id,
                        run_id = %run.id,
                        tick_ms = plan.fire_ms,
                        next_tick_ms = plan.next_ms,
                        "scheduled run queued"
                    );
                }
                Fired::Coalesced {
                    run_id,
                    coalesced_ticks,
                } => tracing::info!(
                    workspace_id = %due.record.workspace_id,
                    sync_id = %due.record.id,
                    %run_id,
                    coalesced_ticks,
                    tick_ms = plan.fire_ms,
                    next_tick_ms = plan.next_ms,
                    "scheduled tick coalesced into the run still queued"
                ),
                Fired::NotFired => {}
            }
        }
        Ok(queued)
    }

    /// Passes until shutdown; a failed pass is logged and retried on the next one.
    pub async fn run(self, shutdown: Shutdown) {
        while !shutdown.is_cancelled() {
            if let Err(error) = self.pass().await {
                tracing::warn!(%error, "schedule tick pass failed; retrying");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.every) => {},
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn nothing_is_due_before_the_tick_or_without_one() {
        let every_hour = Schedule::Interval { seconds: 3600 };
        assert_eq!(plan(&every_hour, 0, 60 * MINUTE, 59 * MINUTE), None);
        assert_eq!(plan(&every_hour, 0, 0, 59 * MINUTE), None);
    }

    #[test]
    fn a_due_tick_fires_and_the_next_follows_it() {
        let every_hour = Schedule::Interval { seconds: 3600 };
        assert_eq!(
            plan(&every_hour, 0, 60 * MINUTE, 60 * MINUTE + 5),
            Some(TickPlan {
                fire_ms: 60 * MINUTE,
                next_ms: 120 * MINUTE
            })
        );
    }

    #[test]
    fn ticks_missed_while_down_fire_once() {
        // down from 01:00 until 05:30: the 01:00 tick fires, once; the next is 06:00.
        let every_hour = Schedule::Interval { seconds: 3600 };
        let planned = plan(&every_hour, 0, 60 * MINUTE, 330 * MINUTE);
        assert_eq!(
            planned,
            Some(TickPlan {
                fire_ms: 60 * MINUTE,
                next_ms: 360 * MINUTE
            })
        );
        // firing it again at the same moment (another replica) plans the same tick, and
        // the compare-and-set on the stored tick lets only one fire
        assert_eq!(plan(&every_hour, 0, 60 * MINUTE, 330 * MINUTE), planned);
    }

    #[test]
    fn cron_ticks_follow_the_zone_across_dst() {
        // daily 02:30 Berlin, planned on the spring-forward night: the next tick after
        // the (gap-shifted) 03:00 CEST one is 02:30 CEST the next day.
        let cron = Schedule::Cron {
            expression: "30 2 * * *".into(),
            time_zone: "Europe/Berlin".into(),
        };
        let due = 1_774_746_000_000; // 2026-03-29T01:00Z = 03:00 CEST
        assert_eq!(
            plan(&cron, 0, due, due + 1),
            Some(TickPlan {
                fire_ms: due,
                next_ms: 1_774_830_600_000 // 2026-03-30T00:30Z
            })
        );
    }
}
