//! The warehouse-side diff state of a sync, in the source's Backflow schema (not in the
//! service's database): `backflow_syncs` (one row per sync: state table, epoch, version,
//! last run) and `backflow_state_<sync id>` (key hash, row hash, delivered, key values).
//!
//! A run opens it (creating what is missing), reads epoch and version, diffs in SQL, and
//! commits its delta in one transaction that first bumps the version it read: a
//! concurrent commit turns the second into a conflict, and a crash before `COMMIT` leaves
//! the previous state whole (the resumed run diffs again and skips what its checkpoint
//! says the destination acknowledged). A state whose epoch is older than the sync's (the
//! sync was reset) counts as empty and is replaced by the next commit.

use crate::executor::error::ExecError;
use crate::warehouse_diff::sql::{self, Delta};
use backflow_warehouse::write::{table_name, Applied, Param, SchemaWriter};
use backflow_warehouse::WarehouseError;
use std::sync::Arc;
use std::time::Duration;

/// Bookkeeping statements are small; commits get the run's statement timeout.
const SMALL: Duration = Duration::from_secs(60);

/// What a run reads before diffing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// -1 before the first commit.
    pub epoch: i64,
    pub version: i64,
    pub entries: u64,
    pub delivered: u64,
}

#[derive(Debug, Clone)]
pub struct WarehouseState {
    writer: Arc<dyn SchemaWriter>,
    sync_id: String,
    table: String,
}

fn number(cell: &Option<String>) -> Result<i64, ExecError> {
    cell.as_deref()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            ExecError::Warehouse(WarehouseError::Protocol {
                detail: format!("backflow_syncs holds {cell:?} where a number belongs"),
            })
        })
}

impl WarehouseState {
    pub fn new(writer: Arc<dyn SchemaWriter>, sync_id: &str) -> Self {
        Self {
            table: table_name(sql::STATE_PREFIX, sync_id),
            writer,
            sync_id: sync_id.to_string(),
        }
    }

    pub fn schema(&self) -> &str {
        self.writer.schema()
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the schema (when missing and the role may), the tables and the sync's row
    /// if missing; reads epoch, version and counts.
    pub async fn open(&self) -> Result<Meta, ExecError> {
        self.writer.ensure_schema(SMALL).await?;
        let ensure = sql::ensure_state(self.schema(), &self.sync_id, &self.table);
        if let Err(first) = self.writer.transaction(&ensure, SMALL).await {
            // two syncs creating `backflow_syncs` at once: one loses the race; once more
            tracing::debug!(sync_id = %self.sync_id, error = %first, "creating warehouse state tables; retrying once");
            self.writer.transaction(&ensure, SMALL).await?;
        }
        let rows = self
            .writer
            .query_text(
                &sql::read_meta(self.schema(), &self.table),
                &[Param::Text(self.sync_id.clone())],
                1,
                SMALL,
            )
            .await?;
        let row = rows.first().ok_or_else(|| {
            ExecError::Sync(format!(
                "the warehouse-side state row of sync {} is missing from {}.backflow_syncs",
                self.sync_id,
                self.schema()
            ))
        })?;
        let cell = |at: usize| number(row.get(at).unwrap_or(&None));
        Ok(Meta {
            epoch: cell(0)?,
            version: cell(1)?,
            entries: cell(2)?.max(0) as u64,
            delivered: cell(3)?.max(0) as u64,
        })
    }

    /// Commits `delta` if the version is still `version`; the new epoch is `epoch`.
    pub async fn commit(
        &self,
        run_id: &str,
        epoch: i64,
        version: i64,
        delta: &Delta,
        timeout: Duration,
    ) -> Result<(), ExecError> {
        let statements = sql::commit(
            self.schema(),
            &self.table,
            &self.sync_id,
            run_id,
            epoch,
            version,
            delta,
        );
        match self.writer.transaction(&statements, timeout).await? {
            Applied::Committed(_) => Ok(()),
            Applied::Conflict { index: 0, .. } => Err(ExecError::Sync(format!(
                "the warehouse-side state of sync {} was committed by another run meanwhile; nothing was committed",
                self.sync_id
            ))),
            Applied::Conflict { index, rows } => Err(ExecError::Sync(format!(
                "committing the warehouse-side state of sync {}: statement {index} changed {rows} rows, not what it should; nothing was committed",
                self.sync_id
            ))),
        }
    }
}
