//! A finished statement's partitions as a stream of record batches.
//!
//! Partition 0 arrives inline with the result set; partitions 1..n are fetched one at a
//! time, in order, only when the consumer has taken every row before them, so at most one
//! partition's rows (plus one batch being built) are in memory. Batches are filled
//! across partition boundaries up to `batch_rows`. Each partition's row count is checked
//! against `partitionInfo`.

use std::sync::Arc;

use arrow_array::RecordBatch;
use futures::stream;
use tokio_util::sync::CancellationToken;

use super::api::{self, Api};
use super::wire::ResultSet;
use crate::cells::{CellBatchBuilder, CellFormat};
use crate::{Column, RowStream, WarehouseError};

struct Partitions {
    api: Arc<Api>,
    handle: String,
    /// Rows per partition, from `partitionInfo`.
    expected: Vec<u64>,
    next: usize,
    rows: std::vec::IntoIter<Vec<Option<String>>>,
    builder: CellBatchBuilder,
    batch_rows: usize,
    cancel: CancellationToken,
}

impl Partitions {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>, WarehouseError> {
        loop {
            while self.builder.len() < self.batch_rows {
                match self.rows.next() {
                    Some(row) => self.builder.push_row(&row)?,
                    None => break,
                }
            }
            if self.builder.len() >= self.batch_rows {
                return self.builder.finish().map(Some);
            }
            if self.next < self.expected.len() {
                let n = self.next;
                let rows = self.api.partition(&self.handle, n, &self.cancel).await?;
                check_count(n, rows.len(), self.expected[n])?;
                self.rows = rows.into_iter();
                self.next += 1;
                continue;
            }
            if self.builder.is_empty() {
                return Ok(None);
            }
            return self.builder.finish().map(Some);
        }
    }
}

fn check_count(partition: usize, got: usize, expected: u64) -> Result<(), WarehouseError> {
    if u64::try_from(got).ok() == Some(expected) {
        Ok(())
    } else {
        Err(WarehouseError::Protocol {
            detail: format!(
                "result partition {partition} has {got} rows, partitioninfo says {expected}"
            ),
        })
    }
}

pub(crate) fn rows(
    api: Arc<Api>,
    result: ResultSet,
    columns: &[(Column, CellFormat)],
    batch_rows: usize,
    cancel: CancellationToken,
) -> Result<RowStream, WarehouseError> {
    let builder = CellBatchBuilder::new(columns)?;
    let schema = builder.schema();
    let mut expected: Vec<u64> = result
        .meta
        .partition_info
        .iter()
        .map(|p| p.row_count)
        .collect();
    if expected.is_empty() {
        // No partitionInfo (an empty result): everything is inline.
        expected.push(u64::try_from(result.data.len()).unwrap_or(u64::MAX));
    }
    check_count(0, result.data.len(), expected[0])?;
    let state = Partitions {
        api,
        handle: api::checked(&result.statement_handle)?,
        expected,
        next: 1,
        rows: result.data.into_iter(),
        builder,
        batch_rows: batch_rows.max(1),
        cancel,
    };
    let batches = stream::try_unfold(state, |mut state| async move {
        Ok(state.next_batch().await?.map(|batch| (batch, state)))
    });
    Ok(RowStream {
        schema,
        batches: Box::pin(batches),
    })
}
