//! One run, end to end: resolve the model and connect → stream the extract through the
//! diff (candidates spilled to disk as they pass, NULL keys rejected) → settle duplicates
//! → guards → deliver in batches (skipping what an earlier attempt of this run got
//! acknowledged) → commit the new state minus the failed records. A dry run stops after
//! the diff with samples. What the run did comes back as a [`Finish`] for the store.
//!
//! One exception to that order: a first run (empty state) whose key the warehouse proves
//! unique delivers each candidate as the extract passes it, since neither guard nor a
//! duplicate can then stop a record (see `backflow_side` for the proof and why it is
//! exact); the spill stays empty and delivery only drains what is still in flight. Not
//! so for a mirror run that carries the delivered keys of the other diff strategy's state
//! (the first run after a strategy change, [`crate::executor::carried_keys`]): it must
//! see every extracted key, so it spills, and deletes the keys it did not see.
//!
//! I/O (catalog, warehouse, destination, state store, database) is reached only through
//! [`RunContext`]; the decisions (diff, mapping, guards, commit) are the pure modules.
//! The Backflow-side extract is `backflow_side`, delivery `sender` (and `deletes`).

mod backflow_side;
mod deletes;
mod sender;

use crate::destinations::delivery::{Deliverer, DeliveryOptions};
use crate::destinations::{DestinationError, Operation, OutboundRecord};
use crate::diff::{Change, DeliveryMode, DELIVERED};
use crate::executor::carried_keys::{CarriedKeys, Orphans};
use crate::executor::checkpoint::Checkpoint;
use crate::executor::error::ExecError;
use crate::executor::guards::{self, GuardInput};
use crate::executor::resolve::{DestinationSource, ModelSource};
use crate::executor::settings::SyncSettings;
use crate::executor::spill::SpillReader;
use crate::run::{RunCounts, RunRecord, Sample};
use crate::store::diff_state::DiffStateStore;
use crate::store::runs::{Finish, RecordError};
use crate::store::SyncStore;
use crate::warehouse_diff::Strategy;
use backflow_platform::lease::RenewalGuard;
use backflow_proto::retl::v1::{RecordChange, RunPhase, RunStatus};
use futures::stream::FuturesUnordered;
use sender::{InFlight, Outcomes, Sender};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Samples a dry run keeps per change kind.
pub const SAMPLES_PER_CHANGE: usize = 5;

/// Tunables of the executor (from `[retl_scheduler.executor]`).
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub batch_rows: usize,
    pub statement_timeout: Duration,
    pub progress_every: Duration,
    /// How often acknowledged records are checkpointed (what a crash may resend).
    pub checkpoint_every: Duration,
    pub spill_dir: Option<PathBuf>,
    /// How destination batches are retried (tests shorten it).
    pub retry: crate::destinations::RetrySchedule,
    /// `work_mem` of the warehouse-side diff query's transaction, in MiB (0: the server's).
    pub warehouse_diff_work_mem_mb: u64,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            batch_rows: 8192,
            statement_timeout: Duration::from_secs(3600),
            progress_every: Duration::from_millis(500),
            checkpoint_every: crate::executor::checkpoint::FLUSH_EVERY,
            spill_dir: None,
            retry: crate::destinations::RetrySchedule::default(),
            warehouse_diff_work_mem_mb: crate::warehouse_diff::sql::DEFAULT_WORK_MEM_MB,
        }
    }
}

/// Where a run's parts come from.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub store: SyncStore,
    pub states: DiffStateStore,
    pub models: Arc<dyn ModelSource>,
    pub destinations: Arc<dyn DestinationSource>,
    pub settings: RunSettings,
}

/// Counts, timings and the phase, saved to the run row every `progress_every`.
pub(crate) struct Progress<'a> {
    ctx: &'a RunContext,
    run_id: String,
    phase: RunPhase,
    phase_started: Instant,
    last_save: Instant,
    pub(crate) counts: RunCounts,
    timings: Vec<(RunPhase, i64)>,
    pub(crate) cancel: CancellationToken,
    lease: Option<&'a RenewalGuard>,
    /// Records since [`Progress::tick_record`] last looked.
    records_unchecked: u32,
}

/// Records between two looks of [`Progress::tick_record`]: a cancel or a lost lease
/// stops a run within this many records (a look reads the clock and locks the cancel
/// token; per record that was ~3% of a first sync's CPU).
const RECORDS_PER_LOOK: u32 = 256;

impl Progress<'_> {
    pub(crate) fn enter(&mut self, phase: RunPhase) {
        let millis = i64::try_from(self.phase_started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.timings.push((self.phase, millis));
        self.phase = phase;
        self.phase_started = Instant::now();
        self.last_save = Instant::now() - self.ctx.settings.progress_every;
    }

    /// Saves progress when due; stops the run when a cancel was asked or the lease lost.
    pub(crate) async fn tick(&mut self) -> Result<(), ExecError> {
        if self.lease.is_some_and(|lease| lease.is_lost()) {
            return Err(ExecError::LeaseLost);
        }
        if self.cancel.is_cancelled() {
            return Err(ExecError::Cancelled);
        }
        if self.last_save.elapsed() < self.ctx.settings.progress_every {
            return Ok(());
        }
        self.last_save = Instant::now();
        let mut timings = self.timings.clone();
        timings.push((
            self.phase,
            i64::try_from(self.phase_started.elapsed().as_millis()).unwrap_or(i64::MAX),
        ));
        let stop = self
            .ctx
            .store
            .save_progress(&self.run_id, self.phase, &self.counts, &timings)
            .await?;
        if stop {
            self.cancel.cancel();
            return Err(ExecError::Cancelled);
        }
        Ok(())
    }

    /// [`Progress::tick`] for per-record loops: looks every [`RECORDS_PER_LOOK`] records.
    pub(crate) async fn tick_record(&mut self) -> Result<(), ExecError> {
        if self.record_due() {
            return self.tick().await;
        }
        Ok(())
    }

    /// Counts a record; `true` every [`RECORDS_PER_LOOK`] records, when the loop should
    /// [`Progress::tick`].
    #[inline]
    pub(crate) fn record_due(&mut self) -> bool {
        self.records_unchecked += 1;
        if self.records_unchecked < RECORDS_PER_LOOK {
            return false;
        }
        self.records_unchecked = 0;
        true
    }

    fn finish(mut self, status: RunStatus) -> (RunCounts, Vec<(RunPhase, i64)>, RunStatus) {
        self.enter(RunPhase::Done);
        (self.counts, self.timings, status)
    }
}

pub(crate) fn record_change(change: Change) -> RecordChange {
    match change {
        Change::Added => RecordChange::Added,
        Change::Updated => RecordChange::Updated,
        Change::Deleted => RecordChange::Deleted,
    }
}

/// The operation a mode sends a change as.
pub fn operation(mode: DeliveryMode, change: Change) -> Operation {
    match (mode, change) {
        (_, Change::Deleted) => Operation::Delete,
        (DeliveryMode::Insert, _) => Operation::Insert,
        (DeliveryMode::Update, _) => Operation::Update,
        (DeliveryMode::Upsert | DeliveryMode::Mirror, _) => Operation::Upsert,
    }
}

pub async fn execute(
    ctx: &RunContext,
    run: &RunRecord,
    cancel: CancellationToken,
    lease: Option<&RenewalGuard>,
) -> Finish {
    let mut progress = Progress {
        ctx,
        run_id: run.id.clone(),
        phase: RunPhase::Extracting,
        phase_started: Instant::now(),
        last_save: Instant::now(),
        counts: RunCounts::default(),
        timings: Vec::new(),
        cancel,
        lease,
        records_unchecked: 0,
    };
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    let mut ledger = None;
    let mut destination_id = String::new();
    let result = run_phases(
        ctx,
        run,
        &mut progress,
        &mut samples,
        &mut errors,
        &mut ledger,
        &mut destination_id,
    )
    .await;
    // a webhook endpoint gone (410): the syncs using the destination are paused
    let result = match result {
        Err(error @ ExecError::Destination(DestinationError::EndpointGone { .. })) => {
            Err(crate::executor::endpoint_gone::handle(ctx, run, &destination_id, error).await)
        }
        other => other,
    };
    let outage = matches!(&result, Err(error) if error.is_outage());
    let (status, error, approval_reason) = match result {
        Ok(Ended::Succeeded) => (RunStatus::Succeeded, String::new(), String::new()),
        Ok(Ended::AwaitingApproval(reason)) => (RunStatus::AwaitingApproval, String::new(), reason),
        Err(ExecError::Cancelled) => (RunStatus::Cancelled, "cancelled".to_string(), String::new()),
        Err(error) => (RunStatus::Failed, error.to_string(), String::new()),
    };
    let (counts, timings, status) = progress.finish(status);
    let finish = Finish {
        status,
        error,
        approval_reason,
        counts,
        timings,
        samples,
        record_errors: errors,
        outage,
    };
    if let Some(sink) = ledger {
        if let Err(error) = crate::store::ledger::write(sink, run, &finish).await {
            tracing::warn!(run_id = %run.id, sync_id = %run.sync_id, %error, "the run ledger could not be written to the warehouse");
        }
    }
    finish
}

enum Ended {
    Succeeded,
    AwaitingApproval(String),
}

async fn run_phases(
    ctx: &RunContext,
    run: &RunRecord,
    progress: &mut Progress<'_>,
    samples: &mut Vec<Sample>,
    errors: &mut Vec<RecordError>,
    ledger: &mut Option<crate::store::ledger::LedgerSink>,
    destination_id: &mut String,
) -> Result<Ended, ExecError> {
    let sync = ctx
        .store
        .get_sync(&run.workspace_id, &run.sync_id)
        .await?
        .ok_or_else(|| ExecError::Sync(format!("sync {} no longer exists", run.sync_id)))?;
    destination_id.clone_from(&sync.destination_id);
    let settings = SyncSettings::of(&sync)?;
    let mode = settings.mode;
    let model = ctx
        .models
        .resolve(&run.workspace_id, &sync.retl_model_id)
        .await?;
    if model.primary_key.is_empty() {
        return Err(ExecError::Sync(format!(
            "reverse etl model {} has no primary key",
            model.retl_model_id
        )));
    }
    let strategy = crate::warehouse_diff::choose(sync.diff_strategy, &model.writable)
        .map_err(ExecError::Sync)?;
    tracing::debug!(run_id = %run.id, sync_id = %run.sync_id, strategy = strategy.name(), "diff strategy chosen");
    if model.run_ledger {
        match &model.writable {
            Ok(writer) => {
                *ledger = Some(crate::store::ledger::LedgerSink {
                    writer: writer.clone(),
                    strategy: strategy.name(),
                    delivered: Vec::new(),
                });
            }
            Err(why) => {
                tracing::warn!(run_id = %run.id, sync_id = %run.sync_id, %why, "the source asks for a run ledger that cannot be written")
            }
        }
    }
    // A mirror run replacing a void state also deletes what the previous diff strategy
    // delivered and the extract no longer holds (`carried_keys`), and any mirror run the
    // carried deletes still owed since an earlier such run. Backflow-side, whether there
    // is such a state (in the warehouse) is known before the extract, which then spills
    // every key to be crossed off instead of delivering as it reads.
    let owed = match mode {
        DeliveryMode::Mirror => CarriedKeys::owed(ctx, run, &settings).await?,
        _ => None,
    };
    let owed_hashes = owed
        .as_ref()
        .map(CarriedKeys::key_hashes)
        .unwrap_or_default();
    let mut carried = match (&strategy, mode) {
        (Strategy::Backflow, DeliveryMode::Mirror) => {
            CarriedKeys::load(ctx, run, &settings, &strategy, &model).await?
        }
        _ => None,
    };
    // A Backflow-side run may deliver while it extracts, when nothing it reads can stop
    // it or repeat a key (see `backflow_side`); it opens the delivery itself then.
    let mut early = EarlyDelivery {
        allowed: !run.exec.dry_run && carried.is_none() && owed.is_none(),
        destination_id: &sync.destination_id,
        keeps_ledger: ledger.is_some(),
        opened: None,
    };
    let Extracted {
        previous,
        previous_delivered,
        extracted,
        spill,
        duplicates,
        repeated,
        deletes,
        delete_keys,
        pending,
    } = match &strategy {
        Strategy::Backflow => {
            backflow_side::extract(ctx, run, &settings, &model, progress, errors, &mut early)
                .await?
        }
        Strategy::Warehouse(writer) => {
            crate::executor::warehouse_run::extract(
                ctx,
                run,
                &settings,
                &model,
                writer.clone(),
                progress,
                errors,
            )
            .await?
        }
    };
    progress.counts.deleted = deletes.len() as i64;
    if !pending.replaces() {
        carried = None;
    } else if let (Strategy::Warehouse(_), DeliveryMode::Mirror) = (&strategy, mode) {
        carried = CarriedKeys::load(ctx, run, &settings, &strategy, &model).await?;
    }
    let mut carried = CarriedKeys::join(carried, owed);
    // what was carried is settled with the commit (`settle_carried_deletes`)
    let settles_carried = carried.is_some();
    let mut reader = spill;
    if !run.exec.dry_run && !run.exec.approved {
        let mut input = GuardInput {
            previous,
            previous_delivered,
            extracted,
            deletes: deletes.len() as u64,
        };
        if let Some(carried) = carried.as_mut() {
            input = carried_guard_input(input, carried, &mut reader, &repeated)?;
        }
        if let Some(reason) = guards::check(&settings.guards, &input) {
            tracing::warn!(run_id = %run.id, sync_id = %run.sync_id, %reason, "run stopped for approval");
            return Ok(Ended::AwaitingApproval(reason));
        }
    }
    let is_duplicate = |key: u64| duplicates.binary_search(&key).is_ok();
    if run.exec.dry_run {
        let mut per_change: HashMap<Change, usize> = HashMap::new();
        while let Some(record) = reader.next_record()? {
            if let Some(carried) = carried.as_mut() {
                carried.seen(record.key.as_str(), record.key_hash);
            }
            if is_duplicate(record.key_hash) {
                continue;
            }
            let change = record.change();
            let Ok(fields) = record.fields else {
                progress.counts.rejected += 1;
                continue;
            };
            let taken = per_change.entry(change).or_default();
            if *taken < SAMPLES_PER_CHANGE {
                *taken += 1;
                samples.push(Sample {
                    change: record_change(change) as i32,
                    key_json: record.key.as_str().to_string(),
                    fields_json: fields.as_str().to_string(),
                });
            }
        }
        let sample_deletes: Vec<u64> = deletes.iter().take(SAMPLES_PER_CHANGE).copied().collect();
        let sampled = match &delete_keys {
            Some(known) => sample_deletes
                .iter()
                .filter_map(|key| known.get(key).map(|json| (*key, json.clone())))
                .collect(),
            None => ctx.store.load_keys(&run.sync_id, &sample_deletes).await?,
        };
        let mut deleted: Vec<String> = sampled.into_iter().map(|(_, json)| json).collect();
        if let Some(mut carried) = carried.take() {
            for (key_hash, json) in &repeated {
                carried.seen(json, *key_hash);
            }
            let Orphans {
                hashes: orphans,
                keys,
                ..
            } = carried.into_orphans();
            progress.counts.deleted += orphans.len() as i64;
            let room = SAMPLES_PER_CHANGE.saturating_sub(deleted.len());
            deleted.extend(
                orphans
                    .iter()
                    .take(room)
                    .filter_map(|key| keys.get(key).cloned()),
            );
        }
        for key_json in deleted {
            samples.push(Sample {
                change: RecordChange::Deleted as i32,
                key_json,
                fields_json: "{}".into(),
            });
        }
        return Ok(Ended::Succeeded);
    }

    progress.enter(RunPhase::Delivering);
    progress.tick().await?;
    let streamed = early.opened.is_some();
    let Delivery {
        mut sender,
        mut checkpoint,
    } = match early.opened.take() {
        Some(delivery) => delivery,
        None => Delivery::open(ctx, run, &sync.destination_id, &settings, ledger.is_some()).await?,
    };
    let mut reported = std::collections::HashSet::new();
    let duplicate_error = |key_json: String| RecordError {
        change: RecordChange::Unspecified,
        key_json,
        rejected: true,
        message: "primary key occurs more than once in the model".into(),
        destination_status: 0,
        attempts: 0,
        given_up: false,
    };
    while let Some(record) = reader.next_record()? {
        if let Some(carried) = carried.as_mut() {
            carried.seen(record.key.as_str(), record.key_hash);
        }
        if is_duplicate(record.key_hash) {
            if reported.insert(record.key_hash) {
                errors.push(duplicate_error(record.key.as_str().to_string()));
            }
            continue;
        }
        let change = record.change();
        let fields = match record.fields {
            Ok(fields) => fields,
            Err(reason) => {
                refused(
                    &mut sender,
                    progress,
                    errors,
                    record.key_hash,
                    change,
                    record.key.as_str().to_string(),
                    reason,
                );
                continue;
            }
        };
        send(
            &mut sender,
            &mut checkpoint,
            progress,
            mode,
            change,
            record.key_hash,
            record.row_hash,
            record.key,
            fields,
        )
        .await?;
    }
    for (key_hash, key_json) in repeated {
        if let Some(carried) = carried.as_mut() {
            carried.seen(&key_json, key_hash);
        }
        if reported.insert(key_hash) {
            errors.push(duplicate_error(key_json));
        }
    }
    if streamed && !duplicates.is_empty() {
        // Delivered as the extract went: with the key proven unique, a key hash seen twice
        // is two different keys hashing alike. Both went out; neither enters the state
        // (the diff dropped the hash), so the next run sends them again.
        tracing::warn!(run_id = %run.id, sync_id = %run.sync_id, collisions = duplicates.len(), "different keys of a unique key hashed alike; they stay out of the state");
        if let Some(adds) = &mut sender.outcomes.delivered_adds {
            adds.retain(|(key_hash, _)| !is_duplicate(*key_hash));
        }
        for key_hash in &duplicates {
            errors.push(RecordError {
                change: RecordChange::Added,
                key_json: format!("{{\"key_hash\":\"{key_hash:016x}\"}}"),
                rejected: false,
                message: "two different keys hash alike: delivered, kept out of the state".into(),
                destination_status: 0,
                attempts: 0,
                given_up: false,
            });
        }
    }
    // deletes carried over a diff strategy change: a failed one is reported like any
    // failed record, and owed to the next runs (the old state is void once this run
    // commits)
    let mut carried_deletes = Vec::new();
    let mut carried_key_values = HashMap::new();
    let mut carried_held = HashMap::new();
    if let Some(carried) = carried.take() {
        let Orphans {
            hashes: orphans,
            keys,
            crossed,
        } = carried.into_orphans();
        carried_held = crossed;
        if !orphans.is_empty() {
            tracing::info!(run_id = %run.id, sync_id = %run.sync_id, deletes = orphans.len(),
                "deleting records whose rows left the model while the diff strategy changed");
            progress.counts.deleted += orphans.len() as i64;
            deletes::deliver(
                ctx,
                run,
                &orphans,
                Some(&keys),
                &mut sender,
                progress,
                &mut checkpoint,
                errors,
            )
            .await?;
            carried_deletes = orphans;
            carried_key_values = keys;
        }
    }
    if !deletes.is_empty() {
        deletes::deliver(
            ctx,
            run,
            &deletes,
            delete_keys.as_ref(),
            &mut sender,
            progress,
            &mut checkpoint,
            errors,
        )
        .await?;
    }
    sender
        .drain(&mut progress.counts, &mut checkpoint, &progress.cancel)
        .await?;
    checkpoint.flush(true).await?;
    if progress.cancel.is_cancelled() {
        return Err(ExecError::Cancelled);
    }

    progress.enter(RunPhase::Committing);
    progress.tick().await?;
    let mut outcomes = std::mem::take(&mut sender.outcomes);
    if let (Some(sink), Some(delivered)) = (ledger.as_mut(), outcomes.ledger.take()) {
        sink.delivered = delivered;
    }
    errors.extend(outcomes.errors);
    // Carried deletes belong to no state (their key hashes are the old state's, or of an
    // earlier owed delete): the commits pass over them, their attempts are counted.
    let mut given_up = Vec::new();
    let mut still_failing = Vec::new();
    let attempts = std::mem::take(&mut sender.attempts);
    for key in &outcomes.failed {
        let tries = attempts.get(key).copied().unwrap_or(0) + 1;
        if tries >= settings.max_record_attempts {
            given_up.push(*key);
        } else {
            still_failing.push((*key, tries));
        }
    }
    // Owed to the next runs: failed carried deletes not given up, and carried records the
    // extract holds that stay out of the new state (failed not given up, refused, or a
    // duplicated key; a given-up one enters it, observed).
    let mut owed_next: Vec<(u64, String)> = still_failing
        .iter()
        .filter(|(key, _)| carried_deletes.binary_search(key).is_ok())
        .filter_map(|(key, _)| carried_key_values.remove(key).map(|json| (*key, json)))
        .collect();
    if !carried_held.is_empty() {
        let out_of_state = still_failing
            .iter()
            .map(|(key, _)| key)
            .chain(&outcomes.rejected)
            .chain(&duplicates);
        for key in out_of_state {
            if let Some(held) = carried_held.remove(key) {
                owed_next.push(held);
            }
        }
    }
    let cleared: Vec<u64> = outcomes
        .delivered
        .iter()
        .filter(|key| attempts.contains_key(key))
        .copied()
        .chain(given_up.iter().copied())
        // owed deletes crossed off: their keys are back in the model
        .chain(owed_hashes.iter().copied().filter(|key| {
            attempts.contains_key(key) && carried_deletes.binary_search(key).is_err()
        }))
        .collect();
    let mut not_committed = outcomes.failed.clone();
    not_committed.extend(&outcomes.rejected);
    let current = ctx
        .store
        .get_sync(&run.workspace_id, &run.sync_id)
        .await?
        .ok_or_else(|| {
            ExecError::Sync(format!("sync {} was deleted during the run", run.sync_id))
        })?;
    if current.state_epoch != settings.state_epoch {
        return Err(ExecError::Sync(format!(
            "the state of sync {} was reset during the run; nothing was committed",
            run.sync_id
        )));
    }
    // A commit replacing a void state moves the sync to a new epoch first, so the other
    // strategy's state (if any) is void from then on (`store::diff_state::load_at`); a run
    // that carried deletes writes the ones it still owes in the same transaction.
    let epoch = if settles_carried {
        ctx.store
            .settle_carried_deletes(
                &run.workspace_id,
                &run.sync_id,
                settings.state_epoch,
                pending.replaces(),
                &owed_next,
            )
            .await?
    } else if pending.replaces() {
        ctx.store
            .advance_state_epoch(&run.workspace_id, &run.sync_id, settings.state_epoch)
            .await?
    } else {
        settings.state_epoch
    };
    match pending {
        Pending::Backflow { outcome, base, .. } => {
            // A run that changed few records commits only what it changed.
            let (state, delta) = outcome.commit_noting(not_committed, given_up, base.delta_room());
            // The key values of delivered additions are kept before the state says they
            // were delivered: a crash between the two then leaves extra key values
            // (harmless), never a delivered record whose later delete finds no key to send.
            if let Some(adds) = &outcomes.delivered_adds {
                ctx.store.save_keys(&run.sync_id, adds).await?;
            }
            ctx.states
                .commit_after(&run.sync_id, &state, delta.as_ref(), &base, epoch)
                .await?;
            if mode == DeliveryMode::Mirror {
                ctx.store
                    .delete_keys(&run.sync_id, &outcomes.delivered_deletes)
                    .await?;
            }
        }
        Pending::Warehouse(pending) => {
            // key values live in the state table itself, committed in the same transaction
            pending
                .commit(
                    run,
                    &settings,
                    epoch,
                    &not_committed,
                    &given_up,
                    ctx.settings.statement_timeout,
                )
                .await?;
        }
    }
    ctx.store
        .update_record_attempts(&run.sync_id, &still_failing, &cleared)
        .await?;
    tracing::info!(
        run_id = %run.id,
        sync_id = %run.sync_id,
        extracted = progress.counts.extracted,
        delivered = progress.counts.delivered,
        failed = progress.counts.failed,
        rejected = progress.counts.rejected,
        "run committed"
    );
    Ok(Ended::Succeeded)
}

/// A run's delivery, opened when the first record is about to go out.
pub(crate) struct Delivery<'a> {
    pub sender: Sender<'a>,
    pub checkpoint: Checkpoint,
}

impl<'a> Delivery<'a> {
    /// The destination, what earlier attempts of this run got acknowledged, and the
    /// failed attempts of earlier runs.
    pub(crate) async fn open(
        ctx: &RunContext,
        run: &'a RunRecord,
        destination_id: &str,
        settings: &SyncSettings,
        keeps_ledger: bool,
    ) -> Result<Self, ExecError> {
        let resolved = ctx
            .destinations
            .destination(&run.workspace_id, destination_id)
            .await?;
        let (acked, checkpoint) =
            Checkpoint::load(&ctx.store, &run.id, ctx.settings.checkpoint_every).await?;
        let attempts: HashMap<u64, i32> = ctx
            .store
            .record_attempts(&run.sync_id)
            .await?
            .into_iter()
            .collect();
        let deliverer = Arc::new(Deliverer::new(
            resolved.destination,
            DeliveryOptions {
                rate_limit_per_second: resolved.rate_limit_per_second,
                retry: ctx.settings.retry,
                ..DeliveryOptions::default()
            },
        ));
        let sender = Sender {
            run,
            options: settings.destination_options.clone(),
            max_records: deliverer.max_batch_records(),
            max_in_flight: deliverer.concurrency(),
            deliverer,
            open: Vec::new(),
            in_flight: FuturesUnordered::new(),
            acked,
            outcomes: Outcomes {
                ledger: keeps_ledger.then(Vec::new),
                delivered_adds: (settings.mode == DeliveryMode::Mirror).then(Vec::new),
                ..Outcomes::default()
            },
            attempts,
            max_attempts: settings.max_record_attempts,
        };
        Ok(Self { sender, checkpoint })
    }
}

/// Whether the extract may deliver as it goes, and the delivery it opened if it did.
pub(crate) struct EarlyDelivery<'a, 'r> {
    /// Not for dry runs.
    pub allowed: bool,
    pub destination_id: &'a str,
    pub keeps_ledger: bool,
    pub opened: Option<Delivery<'r>>,
}

/// A record the mapping refused (null policy): counted, reported, kept out of the state.
pub(crate) fn refused(
    sender: &mut Sender<'_>,
    progress: &mut Progress<'_>,
    errors: &mut Vec<RecordError>,
    key_hash: u64,
    change: Change,
    key_json: String,
    reason: String,
) {
    progress.counts.rejected += 1;
    sender.outcomes.rejected.push(key_hash);
    errors.push(RecordError {
        change: record_change(change),
        key_json,
        rejected: true,
        message: reason,
        destination_status: 0,
        attempts: 0,
        given_up: false,
    });
}

/// Hands one candidate to the sender (which cuts, sends and settles batches).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send(
    sender: &mut Sender<'_>,
    checkpoint: &mut Checkpoint,
    progress: &mut Progress<'_>,
    mode: DeliveryMode,
    change: Change,
    key_hash: u64,
    row_hash: u64,
    key: crate::destinations::JsonObject,
    fields: crate::destinations::JsonObject,
) -> Result<(), ExecError> {
    if let Some(full) = stage(sender, mode, change, key_hash, row_hash, key, fields) {
        sender
            .cut_full(full, &mut progress.counts, checkpoint, &progress.cancel)
            .await?;
    }
    progress.tick_record().await
}

/// [`send`] without waiting: stages the record in its batch; `Some(operation)` when that
/// batch is full and must be cut ([`Sender::cut_full`]) before the next record. For the
/// per-record loop of a streamed extract, which then awaits once per batch.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn stage(
    sender: &mut Sender<'_>,
    mode: DeliveryMode,
    change: Change,
    key_hash: u64,
    row_hash: u64,
    key: crate::destinations::JsonObject,
    fields: crate::destinations::JsonObject,
) -> Option<Operation> {
    let row_word = (row_hash & crate::diff::ROW_HASH_MASK) | DELIVERED;
    let outbound = OutboundRecord {
        key_hash,
        key,
        fields,
    };
    let meta = InFlight {
        key_hash,
        row_word,
        change,
    };
    let operation = operation(mode, change);
    sender.stage(operation, outbound, meta).then_some(operation)
}

/// The guards' view of a run that carries the previous diff strategy's delivered keys: the
/// old state is the last committed one, and the keys the extract no longer holds are
/// deletes. Counting them reads the spill once before delivery (then rewinds it; the keys
/// it crossed off stay crossed off), so a model emptied or mostly deleted across a
/// strategy change still stops for approval.
fn carried_guard_input(
    input: GuardInput,
    carried: &mut CarriedKeys,
    reader: &mut SpillReader,
    repeated: &HashMap<u64, String>,
) -> Result<GuardInput, ExecError> {
    let delivered = carried.unseen() as u64;
    while let Some(record) = reader.next_record()? {
        carried.seen(record.key.as_str(), record.key_hash);
    }
    for (key_hash, json) in repeated {
        carried.seen(json, *key_hash);
    }
    reader.rewind()?;
    Ok(GuardInput {
        previous: input.previous.max(delivered),
        previous_delivered: input.previous_delivered.max(delivered),
        extracted: input.extracted,
        deletes: input.deletes + carried.unseen() as u64,
    })
}

/// What the extract and diff of either strategy hand to guards, delivery and commit.
pub(crate) struct Extracted {
    pub previous: u64,
    pub previous_delivered: u64,
    pub extracted: u64,
    /// Candidates to deliver, in extract order.
    pub spill: SpillReader,
    /// Key hashes rejected as duplicates, ascending (skipped when read from the spill).
    pub duplicates: Vec<u64>,
    /// Key values of duplicated keys seen only as repeats, to report each once.
    pub repeated: HashMap<u64, String>,
    /// Keys to delete (mirror).
    pub deletes: Vec<u64>,
    /// Their key values when the strategy keeps them (else the service's key table).
    pub delete_keys: Option<HashMap<u64, String>>,
    pub pending: Pending,
}

/// What committing needs, per strategy.
pub(crate) enum Pending {
    Backflow {
        outcome: Box<crate::diff::DiffOutcome>,
        /// What was loaded: the pointer the commit compares and sets, and the version a
        /// delta builds on.
        base: crate::store::diff_state::Base,
        /// No current state was loaded (see `Pending::replaces`).
        replaces: bool,
    },
    Warehouse(crate::executor::warehouse_run::PendingCommit),
}

impl Pending {
    /// Whether the commit replaces a void state (first commit, after a reset, after the
    /// diff strategy changed).
    fn replaces(&self) -> bool {
        match self {
            Pending::Backflow { replaces, .. } => *replaces,
            Pending::Warehouse(pending) => pending.replaces(),
        }
    }
}
