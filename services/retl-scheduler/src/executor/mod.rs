//! The executor role: pulls `cmd.retl.run_sync.*` from the CMD_RETL work queue (one
//! durable consumer shared by every replica), runs up to `max_concurrent_runs` runs at
//! once, and never two runs of one sync (claiming a run takes the sync's lease in the
//! transaction that marks it running; a busy sync's command is redelivered later).
//!
//! A running run renews its lease; if its process dies the lease lapses and any live
//! replica (or this one at start-up) re-queues the run, which resumes from its
//! checkpoint without resending what the destination acknowledged. Dropping the
//! executor's future (a crash, a test's abort) aborts its runs with it.
//!
//! The run itself is [`pipeline`]; the pure parts are [`mapping`], [`guards`],
//! [`checkpoint`] and the diff; [`resolve`] and [`catalog_client`] reach the catalog,
//! credentials, the warehouse and destinations.

pub mod carried_keys;
pub mod catalog_client;
pub mod checkpoint;
pub mod endpoint_gone;
pub mod error;
pub mod guards;
pub mod mapping;
pub mod pipeline;
pub mod resolve;
pub mod settings;
pub mod spill;
pub mod warehouse_run;

use crate::store::runs::{Claim, LEASE_KIND};
use backflow_platform::bus::{streams, Bus, ConsumerSpec, Delivery, Outcome};
use backflow_platform::lease::{self, LeasePolicy, Leases};
use backflow_platform::shutdown::Shutdown;
use backflow_proto::retl::v1::RunSyncCommand;
use pipeline::RunContext;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Durable name shared by every executor replica.
pub const RUNS_CONSUMER: &str = "retl-executor-runs";
/// Cancel requests are noticed within this long (progress saves look).
pub const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Run commands of every sync.
pub fn runs_spec() -> ConsumerSpec {
    let mut spec = ConsumerSpec::new(
        streams::CMD_RETL,
        RUNS_CONSUMER,
        backflow_proto::subjects::RUN_SYNC.all(),
    );
    // A command waits (redelivered) while another run of its sync runs, for as long as
    // that takes; it is not a failure.
    spec.max_deliver = 100_000;
    spec
}

/// Aborts the tasks it holds when dropped.
#[derive(Debug, Default)]
struct RunTasks(Mutex<Vec<tokio::task::AbortHandle>>);

impl RunTasks {
    fn add(&self, handle: tokio::task::AbortHandle) {
        if let Ok(mut handles) = self.0.lock() {
            handles.retain(|h| !h.is_finished());
            handles.push(handle);
        }
    }
}

impl Drop for RunTasks {
    fn drop(&mut self) {
        if let Ok(handles) = self.0.lock() {
            for handle in handles.iter() {
                handle.abort();
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Executor {
    ctx: Arc<RunContext>,
    leases: Leases,
    permits: Arc<Semaphore>,
}

impl Executor {
    pub fn new(ctx: RunContext, policy: LeasePolicy, max_concurrent_runs: usize) -> Self {
        let leases = Leases::new(ctx.store.database().clone(), LEASE_KIND, policy);
        Self {
            ctx: Arc::new(ctx),
            leases,
            permits: Arc::new(Semaphore::new(max_concurrent_runs.max(1))),
        }
    }

    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Consumes run commands and reaps lapsed runs until shutdown (or until dropped,
    /// which aborts the runs in progress: their leases lapse and they resume elsewhere).
    pub async fn run(self, bus: Bus, shutdown: Shutdown) {
        let tasks = Arc::new(RunTasks::default());
        let reaper = {
            let (store, leases) = (self.ctx.store.clone(), self.leases.clone());
            lease::run_reaper(leases.clone(), shutdown.clone(), move |sync_id| {
                let (store, leases) = (store.clone(), leases.clone());
                async move { store.reap_run(&leases, &sync_id).await }
            })
        };
        let consumer = bus.run_consumer(
            runs_spec(),
            |delivery| {
                let (this, tasks) = (self.clone(), tasks.clone());
                async move { this.handle(delivery, &tasks).await }
            },
            shutdown.clone(),
        );
        tokio::join!(reaper, consumer);
        // Runs still going stop here; their leases lapse and another replica resumes them.
        drop(tasks);
    }

    async fn handle(&self, delivery: Delivery, tasks: &Arc<RunTasks>) -> Outcome {
        let command = match RunSyncCommand::decode(delivery.payload.as_ref()) {
            Ok(command) => command,
            Err(error) => return Outcome::Reject(format!("undecodable run command: {error}")),
        };
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return Outcome::Retry {
                delay: Duration::from_secs(1),
                error: "executor is shutting down".into(),
            };
        };
        match self
            .ctx
            .store
            .claim_run(&self.leases, &command.run_id)
            .await
        {
            Ok(Claim::Claimed(run)) => {
                let (ctx, leases) = (self.ctx.clone(), self.leases.clone());
                let handle = tokio::spawn(async move {
                    let _permit = permit;
                    run_claimed(&ctx, &leases, *run).await;
                });
                tasks.add(handle.abort_handle());
                Outcome::Done
            }
            Ok(Claim::NotQueued(status)) => {
                tracing::debug!(run_id = %command.run_id, ?status, "run command for a run that is not queued; dropped");
                Outcome::Done
            }
            Ok(Claim::SyncBusy) => Outcome::Retry {
                delay: crate::consumers::retry_delay(delivery.delivered)
                    .min(Duration::from_secs(10)),
                error: format!("another run of sync {} is running", command.sync_id),
            },
            Err(error) => Outcome::Retry {
                delay: crate::consumers::retry_delay(delivery.delivered),
                error: error.to_string(),
            },
        }
    }
}

/// Times a run stopped by outages is handed back to resume before the next outage fails
/// it (`resumed` counts crash resumes too).
pub const MAX_OUTAGE_RESUMES: i32 = 8;

/// How long a run stopped by an outage waits (holding its lease) before it is handed
/// back: 1 s, 2 s, 4 s … 30 s, so a few minutes of outage are ridden out.
pub fn outage_wait(resumed: i32) -> Duration {
    Duration::from_secs(1u64 << resumed.clamp(0, 5)).min(Duration::from_secs(30))
}

/// Runs a claimed run to its end and records it (unless the lease was lost meanwhile).
async fn run_claimed(ctx: &RunContext, leases: &Leases, run: crate::run::RunRecord) {
    let renewal = leases.keep_renewed(&run.sync_id);
    let cancel = CancellationToken::new();
    tracing::info!(run_id = %run.id, sync_id = %run.sync_id, resumed = run.exec.resumed, dry_run = run.exec.dry_run, "run started");
    let finish = pipeline::execute(ctx, &run, cancel, Some(&renewal)).await;
    if renewal.is_lost() {
        tracing::warn!(run_id = %run.id, "run lease lost; leaving the run to the replica that took it");
        return;
    }
    if finish.outage && run.exec.resumed < MAX_OUTAGE_RESUMES {
        hand_back(ctx, leases, &run, &finish.error, &renewal).await;
        return;
    }
    drop(renewal);
    match ctx.store.finish_run(leases, &run, &finish).await {
        Ok(Some(record)) => tracing::info!(
            run_id = %record.id,
            sync_id = %record.sync_id,
            status = record.status.as_str_name(),
            error = %record.error,
            delivered = finish.counts.delivered,
            failed = finish.counts.failed,
            "run ended"
        ),
        Ok(None) => tracing::warn!(run_id = %run.id, "run lease lost before its end was recorded"),
        Err(error) => {
            tracing::error!(run_id = %run.id, %error, "recording the end of a run failed; it resumes when its lease lapses")
        }
    }
}

/// Re-queues a run an outage stopped, once the store answers again, so it resumes from
/// its checkpoint (acknowledged records are not sent again) instead of failing.
async fn hand_back(
    ctx: &RunContext,
    leases: &Leases,
    run: &crate::run::RunRecord,
    error: &str,
    renewal: &lease::RenewalGuard,
) {
    let wait = outage_wait(run.exec.resumed);
    tracing::warn!(run_id = %run.id, sync_id = %run.sync_id, %error, wait_ms = wait.as_millis() as u64, "run stopped by an outage; it resumes from its checkpoint");
    tokio::time::sleep(wait).await;
    let reason = format!("resuming after an outage: {error}");
    let mut retry = Duration::from_millis(200);
    loop {
        if renewal.is_lost() {
            tracing::warn!(run_id = %run.id, "run lease lost while waiting out an outage; the replica that took it resumes the run");
            return;
        }
        match ctx.store.requeue_run(leases, run, &reason).await {
            Ok(true) => {
                tracing::info!(run_id = %run.id, sync_id = %run.sync_id, "run re-queued to resume after an outage");
                return;
            }
            Ok(false) => {
                tracing::warn!(run_id = %run.id, "run lease lost while waiting out an outage; the replica that took it resumes the run");
                return;
            }
            Err(error) => {
                tracing::warn!(run_id = %run.id, %error, retry_ms = retry.as_millis() as u64, "re-queueing a run after an outage failed; retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_waits_grow_to_half_a_minute() {
        let waits: Vec<u64> = (0..8).map(|n| outage_wait(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(outage_wait(-1), Duration::from_secs(1));
    }
}
