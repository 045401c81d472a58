//! Paging a completed query into record batches: the first page came with the answer
//! that said `jobComplete`; each later page is `getQueryResults` with the previous
//! `pageToken`, until an answer carries none (the official client decides by the token,
//! not by `totalRows`). Rows are re-cut into batches of exactly `batch_rows` (the last may
//! be shorter), whatever size the pages are.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::RecordBatch;
use futures::Stream;
use tokio_util::sync::CancellationToken;

use super::client::BqClient;
use super::decode::row_cells;
use super::errors::ErrorContext;
use super::schema::ResultColumn;
use super::wire::{JobReference, TableRow};
use crate::cells::CellBatchBuilder;
use crate::WarehouseError;

pub(crate) struct Pager {
    pub client: Arc<BqClient>,
    pub job: Option<JobReference>,
    pub next_token: Option<String>,
    pub columns: Vec<ResultColumn>,
    pub builder: CellBatchBuilder,
    pub ready: VecDeque<RecordBatch>,
    pub page_rows: u32,
    pub batch_rows: usize,
    pub cancel: CancellationToken,
    pub ctx: ErrorContext,
    pub failed: bool,
}

impl Pager {
    /// Converts the rows of one page; full batches go to `ready`.
    pub fn absorb(&mut self, rows: Vec<TableRow>, last: bool) -> Result<(), WarehouseError> {
        for row in rows {
            let cells = row_cells(row, &self.columns)?;
            self.builder.push_row(&cells)?;
            if self.builder.len() >= self.batch_rows {
                self.ready.push_back(self.builder.finish()?);
            }
        }
        if last && !self.builder.is_empty() {
            self.ready.push_back(self.builder.finish()?);
        }
        Ok(())
    }

    async fn next_batch(&mut self) -> Option<Result<RecordBatch, WarehouseError>> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Some(Ok(batch));
            }
            if self.failed {
                return None;
            }
            let token = self.next_token.take()?;
            match self.fetch(&token).await {
                Ok(()) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }

    async fn fetch(&mut self, token: &str) -> Result<(), WarehouseError> {
        let Some(job) = self.job.clone() else {
            return Err(WarehouseError::Protocol {
                detail: "a pageToken came without a jobReference to page through".into(),
            });
        };
        let page = tokio::select! {
            r = self.client.get_query_results(&job, Some(token), self.page_rows, None, &self.ctx) => r?,
            _ = self.cancel.cancelled() => return Err(WarehouseError::Cancelled),
        };
        self.next_token = page.next_page().map(str::to_string);
        let last = self.next_token.is_none();
        self.absorb(page.rows, last)
    }

    pub fn into_stream(
        self,
    ) -> impl Stream<Item = Result<RecordBatch, WarehouseError>> + Send + 'static {
        futures::stream::unfold(self, |mut pager| async move {
            let item = pager.next_batch().await?;
            Some((item, pager))
        })
    }
}
