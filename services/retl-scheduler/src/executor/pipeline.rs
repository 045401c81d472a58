//! One run, end to end: resolve the model and connect → stream the extract through the
//! diff (candidates spilled to disk as they pass, NULL keys rejected) → settle duplicates
//! → guards → deliver in batches (skipping what an earlier attempt of this run got
//! acknowledged) → commit the new state minus the failed records. A dry run stops after
//! the diff with samples. What the run did comes back as a [`Finish`] for the store.
//!
//! I/O (catalog, warehouse, destination, state store, database) is reached only through
//! [`RunContext`]; the decisions (diff, mapping, guards, commit) are the pure modules.

use crate::destinations::delivery::{content_key, Deliverer, DeliveryOptions};
use crate::destinations::{Operation, OutboundBatch, OutboundRecord, RecordOutcome};
use crate::diff::{Change, DeliveryMode, Diff, RowSpec, DELIVERED};
use crate::executor::checkpoint::Checkpoint;
use crate::executor::error::ExecError;
use crate::executor::guards::{self, GuardInput};
use crate::executor::mapping::RecordMapper;
use crate::executor::resolve::{DestinationSource, ModelSource};
use crate::executor::settings::SyncSettings;
use crate::executor::spill::{SpillReader, SpillWriter, Spilled};
use crate::run::{RunCounts, RunRecord, Sample};
use crate::store::diff_state::DiffStateStore;
use crate::store::runs::{Finish, RecordError};
use crate::store::SyncStore;
use crate::warehouse_diff::Strategy;
use backflow_platform::lease::RenewalGuard;
use backflow_proto::retl::v1::{RecordChange, RunPhase, RunStatus};
use backflow_warehouse::{QueryOptions, ReadOnlyQuery};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
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
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            batch_rows: 8192,
            statement_timeout: Duration::from_secs(3600),
            progress_every: Duration::from_millis(500),
            checkpoint_every: crate::executor::checkpoint::FLUSH_EVERY,
            spill_dir: None,
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
}

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

    fn finish(mut self, status: RunStatus) -> (RunCounts, Vec<(RunPhase, i64)>, RunStatus) {
        self.enter(RunPhase::Done);
        (self.counts, self.timings, status)
    }
}

fn record_change(change: Change) -> RecordChange {
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

fn json_text(map: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::to_string(map).unwrap_or_default()
}

/// What a record in flight is, to settle its result.
#[derive(Debug, Clone)]
struct InFlight {
    key_hash: u64,
    row_word: u64,
    change: Change,
    key_json: String,
}

/// Delivery bookkeeping of one run.
#[derive(Debug, Default)]
struct Outcomes {
    /// Key values and change of delivered records, when the run keeps a ledger.
    ledger: Option<Vec<(String, Change)>>,
    /// Refused by the destination (retried next run until given up).
    failed: Vec<u64>,
    /// Refused by the mapping (null policy): kept out of the state, never given up.
    rejected: Vec<u64>,
    /// Keys that got through, with whether they were additions (for the attempt table
    /// and the mirror's key values).
    delivered_adds: Vec<(u64, String)>,
    delivered_deletes: Vec<u64>,
    delivered: Vec<u64>,
    errors: Vec<RecordError>,
}

/// Executes a claimed run; `Ok` carries how it ended (incl. awaiting approval).
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
    };
    let mut samples = Vec::new();
    let mut errors = Vec::new();
    let mut ledger = None;
    let result = run_phases(
        ctx,
        run,
        &mut progress,
        &mut samples,
        &mut errors,
        &mut ledger,
    )
    .await;
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
) -> Result<Ended, ExecError> {
    let sync = ctx
        .store
        .get_sync(&run.workspace_id, &run.sync_id)
        .await?
        .ok_or_else(|| ExecError::Sync(format!("sync {} no longer exists", run.sync_id)))?;
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
            backflow_extract(ctx, run, &settings, &model, progress, errors).await?
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
    if !run.exec.dry_run && !run.exec.approved {
        let input = GuardInput {
            previous,
            previous_delivered,
            extracted,
            deletes: deletes.len() as u64,
        };
        if let Some(reason) = guards::check(&settings.guards, &input) {
            tracing::warn!(run_id = %run.id, sync_id = %run.sync_id, %reason, "run stopped for approval");
            return Ok(Ended::AwaitingApproval(reason));
        }
    }
    let mut reader = spill;
    let is_duplicate = |key: u64| duplicates.binary_search(&key).is_ok();
    if run.exec.dry_run {
        let mut per_change: HashMap<Change, usize> = HashMap::new();
        while let Some(record) = reader.next_record()? {
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
                    key_json: json_text(&record.key),
                    fields_json: json_text(&fields),
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
        for (_, key_json) in sampled {
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
    let resolved = ctx
        .destinations
        .destination(&run.workspace_id, &sync.destination_id)
        .await?;
    let (acked, mut checkpoint) =
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
            ..DeliveryOptions::default()
        },
    ));
    let mut sender = Sender {
        run,
        options: settings.destination_options.clone(),
        max_records: deliverer.max_batch_records(),
        max_in_flight: deliverer.concurrency(),
        deliverer,
        open: HashMap::new(),
        in_flight: FuturesUnordered::new(),
        acked: &acked,
        outcomes: Outcomes {
            ledger: ledger.is_some().then(Vec::new),
            ..Outcomes::default()
        },
        attempts: &attempts,
        max_attempts: settings.max_record_attempts,
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
        if is_duplicate(record.key_hash) {
            if reported.insert(record.key_hash) {
                errors.push(duplicate_error(json_text(&record.key)));
            }
            continue;
        }
        let change = record.change();
        let key_json = json_text(&record.key);
        let fields = match record.fields {
            Ok(fields) => fields,
            Err(reason) => {
                progress.counts.rejected += 1;
                sender.outcomes.rejected.push(record.key_hash);
                errors.push(RecordError {
                    change: record_change(change),
                    key_json,
                    rejected: true,
                    message: reason,
                    destination_status: 0,
                    attempts: 0,
                    given_up: false,
                });
                continue;
            }
        };
        let row_word = (record.row_hash & crate::diff::ROW_HASH_MASK) | DELIVERED;
        let outbound = OutboundRecord {
            key_hash: record.key_hash,
            key: record.key,
            fields,
        };
        let meta = InFlight {
            key_hash: record.key_hash,
            row_word,
            change,
            key_json,
        };
        sender
            .push(
                operation(mode, change),
                outbound,
                meta,
                &mut progress.counts,
                &mut checkpoint,
                &progress.cancel,
            )
            .await?;
        progress.tick().await?;
    }
    for (key_hash, key_json) in repeated {
        if reported.insert(key_hash) {
            errors.push(duplicate_error(key_json));
        }
    }
    if !deletes.is_empty() {
        deliver_deletes(
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
    let mut given_up = Vec::new();
    let mut still_failing = Vec::new();
    for key in &outcomes.failed {
        let tries = attempts.get(key).copied().unwrap_or(0) + 1;
        if tries >= settings.max_record_attempts {
            given_up.push(*key);
        } else {
            still_failing.push((*key, tries));
        }
    }
    let cleared: Vec<u64> = outcomes
        .delivered
        .iter()
        .filter(|key| attempts.contains_key(key))
        .copied()
        .chain(given_up.iter().copied())
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
    // strategy's state (if any) is void from then on (`store::diff_state::load_at`).
    let epoch = if pending.replaces() {
        ctx.store
            .advance_state_epoch(&run.workspace_id, &run.sync_id, settings.state_epoch)
            .await?
    } else {
        settings.state_epoch
    };
    match pending {
        Pending::Backflow {
            outcome, expected, ..
        } => {
            let state = outcome.commit_giving_up(not_committed, given_up);
            // The key values of delivered additions are kept before the state says they
            // were delivered: a crash between the two then leaves extra key values
            // (harmless), never a delivered record whose later delete finds no key to send.
            if mode == DeliveryMode::Mirror {
                ctx.store
                    .save_keys(&run.sync_id, &outcomes.delivered_adds)
                    .await?;
            }
            ctx.states
                .commit_at(&run.sync_id, &state, expected, epoch)
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
        expected: crate::store::diff_state::Expected,
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

/// Backflow-side: streams the extract through the diff against the state in object
/// storage, spilling candidates as they pass.
async fn backflow_extract(
    ctx: &RunContext,
    run: &RunRecord,
    settings: &SyncSettings,
    model: &crate::executor::resolve::ResolvedModel,
    progress: &mut Progress<'_>,
    errors: &mut Vec<RecordError>,
) -> Result<Extracted, ExecError> {
    let mode = settings.mode;
    let loaded = ctx
        .states
        .load_at(&run.sync_id, settings.state_epoch)
        .await?;
    let expected = loaded.expected();
    let replaces = loaded.replaces();
    let previous = loaded.state.len() as u64;
    let previous_delivered = loaded
        .state
        .entries()
        .iter()
        .filter(|entry| entry.is_delivered())
        .count() as u64;
    let spec = RowSpec {
        key_columns: model.primary_key.clone(),
        mapped_columns: settings.mapped_columns(),
    };
    let mut diff = Diff::new(loaded.state, spec, mode)?;
    let query = ReadOnlyQuery::from_sql_for(model.connector.kind(), &model.sql)?;
    let options = QueryOptions {
        statement_timeout: ctx.settings.statement_timeout,
        batch_rows: ctx.settings.batch_rows,
        max_rows: None,
        cancel: progress.cancel.child_token(),
    };
    let mut stream = model.connector.stream(&query, &options).await?;
    let mapper = RecordMapper::new(&stream.schema, &model.primary_key, &settings.fields)?;
    let mut spill = SpillWriter::create(ctx.settings.spill_dir.as_deref())?;
    // Key values of rows repeating a state key, to report each duplicated key once.
    let mut repeated: HashMap<u64, String> = HashMap::new();
    loop {
        let next = tokio::select! {
            () = progress.cancel.cancelled() => return Err(ExecError::Cancelled),
            next = stream.batches.next() => next,
        };
        let Some(batch) = next else { break };
        let batch = batch?;
        diff.push(&batch)?;
        for (row, column) in diff.last_null_keys() {
            progress.counts.rejected += 1;
            errors.push(RecordError {
                change: RecordChange::Unspecified,
                key_json: json_text(&mapper.key(&batch, row)),
                rejected: true,
                message: format!("primary key column {column:?} is null"),
                destination_status: 0,
                attempts: 0,
                given_up: false,
            });
        }
        for (row, key_hash) in diff.last_repeats() {
            if repeated.len() < crate::store::runs::MAX_STORED_RECORD_ERRORS {
                repeated
                    .entry(key_hash)
                    .or_insert_with(|| json_text(&mapper.key(&batch, row)));
            }
        }
        for (row, change, key_hash, row_hash) in diff.last_candidates() {
            if !mode.delivers(change) {
                continue;
            }
            spill.write(&Spilled {
                key_hash,
                row_hash,
                added: change == Change::Added,
                key: mapper.key(&batch, row),
                fields: mapper.fields(&batch, row).map_err(|refusal| refusal.reason),
            })?;
        }
        progress.counts.extracted = diff.rows_pushed() as i64;
        progress.tick().await?;
    }
    drop(stream);

    progress.enter(RunPhase::Diffing);
    let outcome = diff.finish();
    let counts = outcome.counts;
    let duplicates = outcome.duplicate_keys().to_vec();
    let deletes: Vec<u64> = outcome.deletes().collect();
    progress.counts.extracted = counts.extracted as i64;
    progress.counts.rejected += counts.duplicate_keys as i64;
    if mode.delivers(Change::Added) {
        progress.counts.added = counts.added as i64;
    }
    if mode.delivers(Change::Updated) {
        progress.counts.updated = counts.updated as i64;
    }
    progress.counts.deleted = deletes.len() as i64;
    let reader = spill.finish()?;
    Ok(Extracted {
        previous,
        previous_delivered,
        extracted: counts.extracted,
        spill: reader,
        duplicates,
        repeated,
        deletes,
        delete_keys: None,
        pending: Pending::Backflow {
            outcome: Box::new(outcome),
            expected,
            replaces,
        },
    })
}

#[allow(clippy::too_many_arguments)]
async fn deliver_deletes(
    ctx: &RunContext,
    run: &RunRecord,
    deletes: &[u64],
    known_keys: Option<&HashMap<u64, String>>,
    sender: &mut Sender<'_>,
    progress: &mut Progress<'_>,
    checkpoint: &mut Checkpoint,
    errors: &mut Vec<RecordError>,
) -> Result<(), ExecError> {
    let supported = sender.deliverer.destination().capabilities().deletes;
    for chunk in deletes.chunks(500) {
        let known: HashMap<u64, String> = match known_keys {
            Some(keys) => chunk
                .iter()
                .filter_map(|key| keys.get(key).map(|json| (*key, json.clone())))
                .collect(),
            None => ctx
                .store
                .load_keys(&run.sync_id, chunk)
                .await?
                .into_iter()
                .collect(),
        };
        for key_hash in chunk {
            let Some(key_json) = known.get(key_hash) else {
                sender.outcomes.failed.push(*key_hash);
                progress.counts.failed += 1;
                errors.push(RecordError {
                    change: RecordChange::Deleted,
                    key_json: format!("{{\"key_hash\":\"{key_hash:016x}\"}}"),
                    rejected: false,
                    message: "the key values of this record were not kept, so it cannot be deleted"
                        .into(),
                    destination_status: 0,
                    attempts: 0,
                    given_up: false,
                });
                continue;
            };
            let meta = InFlight {
                key_hash: *key_hash,
                row_word: 0,
                change: Change::Deleted,
                key_json: key_json.clone(),
            };
            if !supported {
                sender.outcomes.failed.push(*key_hash);
                progress.counts.failed += 1;
                errors.push(RecordError {
                    change: RecordChange::Deleted,
                    key_json: key_json.clone(),
                    rejected: false,
                    message: "the destination does not support deletes".into(),
                    destination_status: 0,
                    attempts: 0,
                    given_up: false,
                });
                continue;
            }
            let key = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(key_json)
                .unwrap_or_default();
            let record = OutboundRecord {
                key_hash: *key_hash,
                key,
                fields: serde_json::Map::new(),
            };
            sender
                .push(
                    Operation::Delete,
                    record,
                    meta,
                    &mut progress.counts,
                    checkpoint,
                    &progress.cancel,
                )
                .await?;
            progress.tick().await?;
        }
    }
    Ok(())
}

type BatchFuture<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = (Vec<InFlight>, crate::destinations::BatchResult)>
            + Send
            + 'a,
    >,
>;

/// Records of one operation not yet sent, with what settles each.
type OpenBatch = (Vec<OutboundRecord>, Vec<InFlight>);

/// Batches records per operation and keeps up to `max_in_flight` batches in flight.
///
/// Records an earlier attempt of the run got acknowledged still take their place when
/// batches are cut (and are settled as delivered, not sent), so a resumed run cuts the
/// batches the interrupted attempt cut and resends an unacknowledged one whole, under its
/// content key ([`content_key`]): a destination that deduplicates drops the resend.
struct Sender<'a> {
    deliverer: Arc<Deliverer>,
    run: &'a RunRecord,
    options: Arc<std::collections::BTreeMap<String, String>>,
    max_records: usize,
    max_in_flight: usize,
    open: HashMap<Operation, OpenBatch>,
    in_flight: FuturesUnordered<BatchFuture<'a>>,
    /// (key hash → row word) acknowledged by earlier attempts of this run.
    acked: &'a HashMap<u64, u64>,
    outcomes: Outcomes,
    attempts: &'a HashMap<u64, i32>,
    max_attempts: i32,
}

impl<'a> Sender<'a> {
    async fn push(
        &mut self,
        operation: Operation,
        record: OutboundRecord,
        meta: InFlight,
        counts: &mut RunCounts,
        checkpoint: &mut Checkpoint,
        cancel: &CancellationToken,
    ) -> Result<(), ExecError> {
        let open = self.open.entry(operation).or_default();
        open.0.push(record);
        open.1.push(meta);
        if open.0.len() >= self.max_records {
            let (records, metas) = self.open.remove(&operation).unwrap_or_default();
            self.cut(operation, records, metas, counts, cancel);
            while self.in_flight.len() >= self.max_in_flight {
                self.settle_next(counts, checkpoint).await?;
            }
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
        let mut to_send = (
            Vec::with_capacity(records.len()),
            Vec::with_capacity(metas.len()),
        );
        for (record, meta) in records.into_iter().zip(metas) {
            if self.acked.get(&meta.key_hash) == Some(&meta.row_word) {
                counts.delivered += 1;
                self.settle_delivered(&meta);
            } else {
                to_send.0.push(record);
                to_send.1.push(meta);
            }
        }
        if !to_send.0.is_empty() {
            self.dispatch(operation, to_send.0, to_send.1, cancel);
        }
    }

    fn dispatch(
        &mut self,
        operation: Operation,
        records: Vec<OutboundRecord>,
        metas: Vec<InFlight>,
        cancel: &CancellationToken,
    ) {
        let idempotency_key = content_key(
            &self.run.id,
            operation,
            metas.iter().map(|meta| (meta.key_hash, meta.row_word)),
        );
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
        self.in_flight.push(Box::pin(async move {
            // A cancelled run stops waiting for its batches; their records count as failed.
            tokio::select! {
                delivered = deliverer.send(batch) => (
                    metas,
                    crate::destinations::BatchResult {
                        results: delivered.results,
                        requests: delivered.requests,
                    },
                ),
                () = cancel.cancelled() => (metas, crate::destinations::BatchResult::default()),
            }
        }));
    }

    async fn settle_next(
        &mut self,
        counts: &mut RunCounts,
        checkpoint: &mut Checkpoint,
    ) -> Result<(), ExecError> {
        let Some((metas, result)) = self.in_flight.next().await else {
            return Ok(());
        };
        counts.requests += result.requests as i64;
        let outcomes: HashMap<u64, RecordOutcome> = result
            .results
            .into_iter()
            .map(|r| (r.key_hash, r.outcome))
            .collect();
        for meta in metas {
            match outcomes.get(&meta.key_hash) {
                Some(RecordOutcome::Delivered) => {
                    checkpoint.ack(meta.key_hash, meta.row_word);
                    counts.delivered += 1;
                    self.settle_delivered(&meta);
                }
                failure => {
                    let (message, status) = match failure {
                        Some(RecordOutcome::Failed { message, status }) => {
                            (message.clone(), i32::from(*status))
                        }
                        _ => (
                            "the destination reported no result for this record".to_string(),
                            0,
                        ),
                    };
                    counts.failed += 1;
                    self.outcomes.failed.push(meta.key_hash);
                    let tries = self.attempts.get(&meta.key_hash).copied().unwrap_or(0) + 1;
                    let given_up = tries >= self.max_attempts;
                    if given_up {
                        counts.given_up += 1;
                    }
                    self.outcomes.errors.push(RecordError {
                        change: record_change(meta.change),
                        key_json: meta.key_json,
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
        Ok(())
    }

    fn settle_delivered(&mut self, meta: &InFlight) {
        self.outcomes.delivered.push(meta.key_hash);
        if let Some(ledger) = &mut self.outcomes.ledger {
            ledger.push((meta.key_json.clone(), meta.change));
        }
        match meta.change {
            Change::Added => self
                .outcomes
                .delivered_adds
                .push((meta.key_hash, meta.key_json.clone())),
            Change::Deleted => self.outcomes.delivered_deletes.push(meta.key_hash),
            Change::Updated => {}
        }
    }

    /// Sends what is still open and waits for every batch.
    async fn drain(
        &mut self,
        counts: &mut RunCounts,
        checkpoint: &mut Checkpoint,
        cancel: &CancellationToken,
    ) -> Result<(), ExecError> {
        let open: Vec<(Operation, OpenBatch)> = self.open.drain().collect();
        for (operation, (records, metas)) in open {
            self.cut(operation, records, metas, counts, cancel);
        }
        while !self.in_flight.is_empty() {
            self.settle_next(counts, checkpoint).await?;
        }
        Ok(())
    }
}
