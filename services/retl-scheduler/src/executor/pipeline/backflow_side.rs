//! The Backflow-side extract: streams the model through the diff against the state in
//! object storage and spills each candidate as it passes — its key and fields JSON
//! written once, straight from the batch's columns, into the spill.
//!
//! **Delivering while extracting.** Candidates normally wait in the spill until the
//! extract has ended, because only then are duplicate keys known (every occurrence of a
//! duplicated key is rejected, none is ever sent) and the guards decided. A run skips the
//! spill and hands each candidate to the sender as it passes when all of these hold:
//!
//! - it is not a dry run and its state is empty (a first run, or after a reset): with no
//!   previous entry, neither guard can stop it (the empty-extract guard needs a non-empty
//!   state, the delete guard delivered entries) and no row can repeat a state key;
//! - it carries no delivered keys of a warehouse-side state (`executor::carried_keys`: a
//!   mirror sync's first run after its diff strategy changed crosses every extracted key
//!   off that set, from the spill);
//! - the mode delivers additions (what every row of such a run is);
//! - the warehouse proved the key unique before any row was read
//!   ([`backflow_warehouse::KeyProof`]: on PostgreSQL, the model is one scan of a
//!   relation whose unique index covers the key's columns, locked for the stream's
//!   transaction). Without the proof — any other warehouse, a join, a computed key, no
//!   such index — the run spills and waits, as always.
//!
//! NULL keys are rejected per row in both ways. A key hash the diff still sees twice
//! under the proof can only be two different keys hashing alike: both were delivered
//! (they are different records), the hash stays out of the state and is reported.
//! Batches are cut in extract order either way, so checkpoints and content-derived
//! idempotency keys (crash resume) work the same.

use super::{Delivery, EarlyDelivery, Extracted, Pending, Progress, RunContext};
use crate::destinations::JsonObject;
use crate::diff::{Change, Diff, RowSpec};
use crate::executor::error::ExecError;
use crate::executor::mapping::RecordMapper;
use crate::executor::resolve::ResolvedModel;
use crate::executor::settings::SyncSettings;
use crate::executor::spill::SpillWriter;
use crate::run::RunRecord;
use crate::store::runs::RecordError;
use backflow_proto::retl::v1::{RecordChange, RunPhase};
use backflow_warehouse::{QueryOptions, ReadOnlyQuery};
use futures::StreamExt;
use std::collections::HashMap;

/// Backflow-side: streams the extract through the diff against the state in object
/// storage, spilling candidates as they pass.
pub(super) async fn extract<'r>(
    ctx: &RunContext,
    run: &'r RunRecord,
    settings: &SyncSettings,
    model: &ResolvedModel,
    progress: &mut Progress<'_>,
    errors: &mut Vec<RecordError>,
    early: &mut EarlyDelivery<'_, 'r>,
) -> Result<Extracted, ExecError> {
    let mode = settings.mode;
    let loaded = ctx
        .states
        .load_at(&run.sync_id, settings.state_epoch)
        .await?;
    let base = loaded.base();
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
        work_mem_kib: None,
    };
    let may_stream = early.allowed && previous == 0 && mode.delivers(Change::Added);
    let mut stream = if may_stream {
        let (stream, proof) = model
            .connector
            .stream_proving_key(&query, &options, &model.primary_key)
            .await?;
        if proof.is_proven() {
            tracing::debug!(run_id = %run.id, sync_id = %run.sync_id, ?proof, "key proven unique: delivering while extracting");
            early.opened = Some(
                Delivery::open(ctx, run, early.destination_id, settings, early.keeps_ledger)
                    .await?,
            );
        }
        stream
    } else {
        model.connector.stream(&query, &options).await?
    };
    let mapper = RecordMapper::new(&stream.schema, &model.primary_key, &settings.fields)?;
    let mut spill = SpillWriter::create(ctx.settings.spill_dir.as_deref())?;
    // Key values of rows repeating a state key, to report each duplicated key once.
    let mut repeated: HashMap<u64, String> = HashMap::new();
    // One record's key and fields text, reused.
    let (mut key, mut fields) = (Vec::with_capacity(64), Vec::with_capacity(1024));
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
                key_json: mapper.key(&batch, row).as_str().to_string(),
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
                    .or_insert_with(|| mapper.key(&batch, row).as_str().to_string());
            }
        }
        let rows = mapper.rows(&batch);
        if let Some(delivery) = early.opened.as_mut() {
            for (row, change, key_hash, row_hash) in diff.last_candidates() {
                if !mode.delivers(change) {
                    continue;
                }
                key.clear();
                fields.clear();
                rows.key_into(row, &mut key);
                let key = text(&key)?;
                match rows.fields_into(row, &mut fields) {
                    Ok(()) => {
                        // the record keeps the buffer it was written into (no copy); the
                        // next one starts a buffer of about its size
                        let next = Vec::with_capacity(fields.len() + FIELDS_SLACK);
                        let fields = owned_text(std::mem::replace(&mut fields, next))?;
                        let full = super::stage(
                            &mut delivery.sender,
                            mode,
                            change,
                            key_hash,
                            row_hash,
                            key,
                            fields,
                        );
                        if let Some(operation) = full {
                            delivery
                                .sender
                                .cut_full(
                                    operation,
                                    &mut progress.counts,
                                    &mut delivery.checkpoint,
                                    &progress.cancel,
                                )
                                .await?;
                        }
                        if progress.record_due() {
                            progress.tick().await?;
                        }
                    }
                    Err(refusal) => super::refused(
                        &mut delivery.sender,
                        progress,
                        errors,
                        key_hash,
                        change,
                        key.as_str().to_string(),
                        refusal.reason,
                    ),
                }
            }
            progress.counts.extracted = diff.rows_pushed() as i64;
            progress.tick().await?;
            continue;
        }
        for (row, change, key_hash, row_hash) in diff.last_candidates() {
            if !mode.delivers(change) {
                continue;
            }
            key.clear();
            fields.clear();
            rows.key_into(row, &mut key);
            let mapped = rows.fields_into(row, &mut fields);
            spill.write_encoded(
                key_hash,
                row_hash,
                change == Change::Added,
                &key,
                match &mapped {
                    Ok(()) => Ok(&fields),
                    Err(refusal) => Err(&refusal.reason),
                },
            )?;
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
            base,
            replaces,
        },
    })
}

/// Bytes a record's fields buffer starts with beyond the last record's length: a record a
/// little longer than the last still fits, and a shrink this small stays in place.
const FIELDS_SLACK: usize = 64;

/// JSON text the mapping wrote (always UTF-8) as an object to send, keeping `bytes`'
/// allocation (shrunk to its length: in place, as the slack is small).
fn owned_text(bytes: Vec<u8>) -> Result<JsonObject, ExecError> {
    let text = String::from_utf8(bytes)
        .map_err(|_| ExecError::Sync("a mapped record's text is not utf-8".into()))?;
    Ok(JsonObject::from_encoded(text.into_boxed_str()))
}

/// JSON text the mapping wrote (always UTF-8) as an object to send, in an allocation of
/// its exact size.
fn text(bytes: &[u8]) -> Result<JsonObject, ExecError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ExecError::Sync("a mapped record's text is not utf-8".into()))?;
    Ok(JsonObject::from_encoded(Box::from(text)))
}
