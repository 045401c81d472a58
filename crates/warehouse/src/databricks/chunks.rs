//! Reading a succeeded statement's chunks in order into record batches: the first chunk
//! came with the status; each next one is `GET <next_chunk_internal_link>`, until a chunk
//! has no link (the last). Rows are re-cut into batches of `batch_rows` (the last may be
//! shorter). We ask for `INLINE` results, so a chunk of `external_links` is a protocol
//! error.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::RecordBatch;
use futures::Stream;
use tokio_util::sync::CancellationToken;

use super::client::DbxClient;
use super::errors::ErrorContext;
use super::wire::ResultData;
use crate::cells::CellBatchBuilder;
use crate::WarehouseError;

pub(crate) struct Chunks {
    pub client: Arc<DbxClient>,
    pub next_link: Option<String>,
    pub builder: CellBatchBuilder,
    pub ready: VecDeque<RecordBatch>,
    pub batch_rows: usize,
    pub cancel: CancellationToken,
    pub ctx: ErrorContext,
    pub failed: bool,
}

impl Chunks {
    /// Converts one chunk; full batches go to `ready`, and the link to the next is kept.
    pub fn absorb(&mut self, chunk: ResultData) -> Result<(), WarehouseError> {
        if chunk.external_links.is_some() {
            return Err(WarehouseError::Protocol {
                detail: "an inline result came as external links".into(),
            });
        }
        for row in chunk.data_array.unwrap_or_default() {
            self.builder.push_row(&row)?;
            if self.builder.len() >= self.batch_rows {
                self.ready.push_back(self.builder.finish()?);
            }
        }
        self.next_link = chunk.next_chunk_internal_link.filter(|l| !l.is_empty());
        if self.next_link.is_none() && !self.builder.is_empty() {
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
            let link = self.next_link.take()?;
            let fetched = tokio::select! {
                r = self.client.chunk(&link, &self.ctx) => r,
                _ = self.cancel.cancelled() => Err(WarehouseError::Cancelled),
            };
            if let Err(e) = fetched.and_then(|chunk| self.absorb(chunk)) {
                self.failed = true;
                return Some(Err(e));
            }
        }
    }

    pub fn into_stream(
        self,
    ) -> impl Stream<Item = Result<RecordBatch, WarehouseError>> + Send + 'static {
        futures::stream::unfold(self, |mut chunks| async move {
            let item = chunks.next_batch().await?;
            Some((item, chunks))
        })
    }
}
