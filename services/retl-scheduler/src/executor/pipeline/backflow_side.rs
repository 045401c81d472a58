//! The Backflow-side extract: streams the model through the diff against the state in
//! object storage and spills each candidate as it passes — its key and fields JSON
//! written once, straight from the batch's columns, into the spill.

use super::{Extracted, Pending, Progress, RunContext};
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
pub(super) async fn extract(
    ctx: &RunContext,
    run: &RunRecord,
    settings: &SyncSettings,
    model: &ResolvedModel,
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
            expected,
            replaces,
        },
    })
}
