//! The extract of a warehouse-side run: open the sync's state table, describe the model
//! (column types decide the hash text), run the diff query, and turn its classed rows into
//! what the shared delivery needs (candidates spilled like the Backflow-side ones, rejected
//! rows as record errors, mirror deletes with the key values the state kept) plus what the
//! commit needs ([`PendingCommit`]: the changes and missing entries, settled after delivery
//! by `warehouse_diff::delta`).

use crate::diff::{Change, DeliveryMode, RowSpec};
use crate::executor::error::ExecError;
use crate::executor::mapping::RecordMapper;
use crate::executor::pipeline::{Extracted, Pending, Progress, RunContext};
use crate::executor::resolve::ResolvedModel;
use crate::executor::settings::SyncSettings;
use crate::executor::spill::{SpillWriter, Spilled};
use crate::run::RunRecord;
use crate::store::runs::RecordError;
use crate::store::warehouse_state::{Meta, WarehouseState};
use crate::warehouse_diff::sql::{self, CLASS, KEY_HASH, ROW_HASH, STATE_KEY};
use crate::warehouse_diff::{build_delta, Changed, Missing};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use backflow_proto::retl::v1::{RecordChange, RunPhase};
use backflow_warehouse::{QueryOptions, ReadOnlyQuery, SchemaWriter};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What the commit of a warehouse-side run needs.
#[derive(Debug)]
pub struct PendingCommit {
    state: WarehouseState,
    meta: Meta,
    replace: bool,
    changes: Vec<Changed>,
    missing: Vec<Missing>,
}

impl PendingCommit {
    /// Whether the state read was void (its epoch is not the sync's): the commit replaces
    /// it, at the new epoch the caller moved the sync to.
    pub fn replaces(&self) -> bool {
        self.replace
    }

    /// Settles the changes by the destination's answers and commits them in one
    /// transaction (refused if another commit happened since the run read the version),
    /// stamping the state with `epoch`.
    pub async fn commit(
        self,
        run: &RunRecord,
        settings: &SyncSettings,
        epoch: i64,
        failed: &[u64],
        given_up: &[u64],
        timeout: Duration,
    ) -> Result<(), ExecError> {
        let delta = build_delta(
            settings.mode,
            self.replace,
            self.changes,
            &self.missing,
            failed,
            given_up,
        );
        self.state
            .commit(&run.id, epoch, self.meta.version, &delta, timeout)
            .await
    }
}

fn json_text(map: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::to_string(map).unwrap_or_default()
}

fn column_index(batch: &RecordBatch, name: &str) -> Result<usize, ExecError> {
    batch.schema().index_of(name).map_err(|_| {
        ExecError::Sync(format!(
            "the warehouse-side diff query returned no column {name}"
        ))
    })
}

/// Runs the diff in the warehouse and pulls what changed.
pub(crate) async fn extract(
    ctx: &RunContext,
    run: &RunRecord,
    settings: &SyncSettings,
    model: &ResolvedModel,
    writer: Arc<dyn SchemaWriter>,
    progress: &mut Progress<'_>,
    errors: &mut Vec<RecordError>,
) -> Result<Extracted, ExecError> {
    let mode = settings.mode;
    let kind = model.connector.kind();
    let state = WarehouseState::new(writer, &run.sync_id);
    let meta = state.open().await?;
    let replace = meta.epoch != settings.state_epoch;
    let (previous, previous_delivered) = if replace {
        (0, 0)
    } else {
        (meta.entries, meta.delivered)
    };
    let spec = RowSpec {
        key_columns: model.primary_key.clone(),
        mapped_columns: settings.mapped_columns(),
    };
    let model_query = ReadOnlyQuery::from_sql_for(kind, &model.sql)?;
    let columns = model.connector.describe_query(&model_query).await?;
    let diff_sql = sql::diff_query(
        model_query.sql(),
        &columns,
        &spec,
        mode,
        state.schema(),
        (!replace).then_some(state.table()),
    )
    .map_err(|error| ExecError::Sync(error.to_string()))?;
    let query = ReadOnlyQuery::from_sql_for(kind, &diff_sql)?;
    let cancel = progress.cancel.clone();
    let options = || QueryOptions {
        statement_timeout: ctx.settings.statement_timeout,
        batch_rows: ctx.settings.batch_rows,
        max_rows: None,
        cancel: cancel.child_token(),
        work_mem_kib: sql::work_mem_kib(ctx.settings.warehouse_diff_work_mem_mb),
    };
    let mut stream = model.connector.stream(&query, &options()).await?;
    let mapper = RecordMapper::new(&stream.schema, &model.primary_key, &settings.fields)?;
    let mut spill = SpillWriter::create(ctx.settings.spill_dir.as_deref())?;
    let mut changes = Vec::new();
    let mut missing = Vec::new();
    let mut deletes = Vec::new();
    let mut delete_keys = HashMap::new();
    let (mut added_rows, mut extracted, mut null_rows, mut pulled) = (0u64, 0u64, 0u64, 0i64);
    loop {
        let next = tokio::select! {
            () = progress.cancel.cancelled() => return Err(ExecError::Cancelled),
            next = stream.batches.next() => next,
        };
        let Some(batch) = next else { break };
        let batch = batch?;
        let classes = batch
            .column(column_index(&batch, CLASS)?)
            .as_string::<i32>()
            .clone();
        let keys = batch
            .column(column_index(&batch, KEY_HASH)?)
            .as_primitive::<Int64Type>()
            .clone();
        let rows = batch
            .column(column_index(&batch, ROW_HASH)?)
            .as_primitive::<Int64Type>()
            .clone();
        let state_keys = batch
            .column(column_index(&batch, STATE_KEY)?)
            .as_string::<i32>()
            .clone();
        for row in 0..batch.num_rows() {
            let key_hash = keys.value(row) as u64;
            let row_hash = rows.value(row) as u64;
            match classes.value(row) {
                class @ ("a" | "u") => {
                    let change = if class == "a" {
                        added_rows += 1;
                        Change::Added
                    } else {
                        Change::Updated
                    };
                    pulled += 1;
                    let key_json =
                        (mode == DeliveryMode::Mirror).then(|| json_text(&mapper.key(&batch, row)));
                    if mode.delivers(change) {
                        spill.write(&Spilled {
                            key_hash,
                            row_hash,
                            added: change == Change::Added,
                            key: mapper.key(&batch, row),
                            fields: mapper.fields(&batch, row).map_err(|refusal| refusal.reason),
                        })?;
                    }
                    changes.push(Changed {
                        key_hash,
                        row_hash,
                        change,
                        key_json,
                    });
                }
                "n" => {
                    pulled += 1;
                    progress.counts.rejected += 1;
                    let column = model
                        .primary_key
                        .iter()
                        .find(|name| {
                            batch
                                .column_by_name(name)
                                .is_some_and(|values| values.is_null(row))
                        })
                        .cloned()
                        .unwrap_or_default();
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
                class @ ("m" | "x") => {
                    pulled += 1;
                    let delivered = class == "x";
                    missing.push(Missing {
                        key_hash,
                        delivered,
                    });
                    if delivered && mode == DeliveryMode::Mirror {
                        deletes.push(key_hash);
                        if !state_keys.is_null(row) {
                            delete_keys.insert(key_hash, state_keys.value(row).to_string());
                        }
                    }
                }
                "t" => {
                    extracted = key_hash;
                    null_rows = row_hash;
                }
                other => {
                    return Err(ExecError::Sync(format!(
                        "the warehouse-side diff query returned an unknown class {other:?}"
                    )))
                }
            }
        }
        progress.counts.extracted = pulled;
        progress.tick().await?;
    }
    drop(stream);
    progress.enter(RunPhase::Diffing);
    progress.counts.extracted = extracted as i64;
    // Duplicate keys: repeated among the pulled rows, or (unchanged rows are not pulled)
    // betrayed by the counts; then one more query names them all.
    let repeats = {
        let mut pulled_keys: Vec<u64> = changes.iter().map(|c| c.key_hash).collect();
        pulled_keys.sort_unstable();
        pulled_keys.windows(2).any(|w| w[0] == w[1])
    };
    let mut duplicates = Vec::new();
    let mut repeated = HashMap::new();
    if repeats
        || sql::duplicates_possible(
            extracted,
            null_rows,
            added_rows,
            previous,
            missing.len() as u64,
        )
    {
        let dup_sql = sql::duplicates_query(model_query.sql(), &columns, &spec)
            .map_err(|error| ExecError::Sync(error.to_string()))?;
        let query = ReadOnlyQuery::from_sql_for(kind, &dup_sql)?;
        let mut stream = model.connector.stream(&query, &options()).await?;
        let mapper = RecordMapper::new(&stream.schema, &model.primary_key, &settings.fields)?;
        loop {
            let next = tokio::select! {
                () = progress.cancel.cancelled() => return Err(ExecError::Cancelled),
                next = stream.batches.next() => next,
            };
            let Some(batch) = next else { break };
            let batch = batch?;
            let keys = batch
                .column(column_index(&batch, KEY_HASH)?)
                .as_primitive::<Int64Type>()
                .clone();
            for row in 0..batch.num_rows() {
                let key_hash = keys.value(row) as u64;
                duplicates.push(key_hash);
                if repeated.len() < crate::store::runs::MAX_STORED_RECORD_ERRORS {
                    repeated.insert(key_hash, json_text(&mapper.key(&batch, row)));
                }
            }
        }
        duplicates.sort_unstable();
        duplicates.dedup();
        progress.counts.rejected += duplicates.len() as i64;
        // a duplicated key is rejected: its state entry (if any) stays as it was
        changes.retain(|c| duplicates.binary_search(&c.key_hash).is_err());
    }
    let added = changes.iter().filter(|c| c.change == Change::Added).count() as i64;
    let updated = changes.len() as i64 - added;
    if mode.delivers(Change::Added) {
        progress.counts.added = added;
    }
    if mode.delivers(Change::Updated) {
        progress.counts.updated = updated;
    }
    tracing::info!(
        run_id = %run.id,
        sync_id = %run.sync_id,
        extracted,
        pulled,
        schema = state.schema(),
        table = state.table(),
        "warehouse-side diff done"
    );
    Ok(Extracted {
        previous,
        previous_delivered,
        extracted,
        spill: spill.finish()?,
        duplicates,
        repeated,
        deletes,
        delete_keys: Some(delete_keys),
        pending: Pending::Warehouse(PendingCommit {
            state,
            meta,
            replace,
            changes,
            missing,
        }),
    })
}
