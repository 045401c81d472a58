//! Streaming one query's rows as Arrow batches from a task that owns the connection.
//!
//! The task reads either binary `COPY (...) TO STDOUT` (PostgreSQL) or `FETCH FORWARD n`
//! from a cursor (Redshift, which has no `COPY TO STDOUT`), decodes into a
//! [`BatchBuilder`] and hands each full batch over a channel of two: at most a few
//! batches exist at once, whatever the result size. Cancel, a dropped stream, or the
//! client-side deadline stop the task, which then cancels the statement in the server
//! and drops the connection.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures::{FutureExt, StreamExt};
use sqlx::postgres::PgValueFormat;
use sqlx::{Executor, Row, ValueRef};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::copy::CopyParser;
use super::decode::BatchBuilder;
use super::errors::map_error;
use super::session::{Session, CLIENT_GRACE};
use super::types::ColumnPlan;
use super::{sql, PgSource, StreamMode};
use crate::{QueryOptions, RowStream, WarehouseError};

type Item = Result<RecordBatch, WarehouseError>;

/// Copy messages taken without waiting before the loop looks at cancel and deadline.
const READY_CHUNKS: usize = 512;

/// Why the reading loop stopped early.
enum Stop {
    Failed(WarehouseError),
    Cancelled,
    Dropped,
    Deadline,
}

impl From<WarehouseError> for Stop {
    fn from(e: WarehouseError) -> Self {
        Stop::Failed(e)
    }
}

struct Job {
    source: Arc<PgSource>,
    select: String,
    plans: Vec<ColumnPlan>,
    schema: SchemaRef,
    options: QueryOptions,
    tx: mpsc::Sender<Item>,
}

/// Starts streaming `select` on `session` (already inside the read-only transaction).
pub(crate) fn spawn(
    source: Arc<PgSource>,
    session: Session,
    select: String,
    plans: Vec<ColumnPlan>,
    schema: SchemaRef,
    options: &QueryOptions,
) -> RowStream {
    let (tx, rx) = mpsc::channel::<Item>(2);
    let cancel = options.cancel.clone();
    let job = Job {
        source,
        select,
        plans,
        schema: schema.clone(),
        options: options.clone(),
        tx,
    };
    tokio::spawn(job.run(session));
    let batches = futures::stream::unfold(Some((rx, cancel)), |state| async move {
        let (mut rx, cancel) = state?;
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Some((Err(WarehouseError::Cancelled), None)),
            item = rx.recv() => item.map(|item| {
                let next = if item.is_ok() { Some((rx, cancel)) } else { None };
                (item, next)
            }),
        }
    });
    RowStream {
        schema,
        batches: Box::pin(batches),
    }
}

impl Job {
    async fn run(self, mut session: Session) {
        let timeout = self.options.statement_timeout;
        let deadline = Instant::now() + timeout + CLIENT_GRACE;
        let batch_rows = self.options.batch_rows.max(1);
        let mut rows = BatchBuilder::new(&self.plans, self.schema.clone(), batch_rows.min(65_536));
        let result = match self.source.mode {
            StreamMode::Copy => {
                self.copy(&mut session, &mut rows, batch_rows, deadline)
                    .await
            }
            StreamMode::Cursor { fetch_rows } => {
                self.cursor(&mut session, &mut rows, batch_rows, fetch_rows, deadline)
                    .await
            }
        };
        let result = match result {
            Ok(()) if rows.rows() > 0 => match rows.finish() {
                Ok(batch) => self.send(batch, deadline).await,
                Err(e) => Err(Stop::Failed(e)),
            },
            other => other,
        };
        match result {
            Ok(()) => session.finish().await,
            Err(Stop::Failed(e)) => {
                let _ = self.tx.send(Err(e)).await;
            }
            Err(Stop::Deadline) => {
                let _ = self
                    .tx
                    .try_send(Err(WarehouseError::Timeout { after: timeout }));
                self.source.cancel_backend(session.pid).await;
            }
            Err(Stop::Cancelled | Stop::Dropped) => self.source.cancel_backend(session.pid).await,
        }
    }

    fn stop_for(&self, e: sqlx::Error) -> Stop {
        let ctx = self.source.ctx(
            self.options.statement_timeout,
            self.options.cancel.is_cancelled(),
        );
        Stop::Failed(map_error(e, ctx))
    }

    /// Hands a batch to the consumer, unless it goes away or the query is cancelled.
    async fn send(&self, batch: RecordBatch, deadline: Instant) -> Result<(), Stop> {
        tokio::select! {
            biased;
            _ = self.options.cancel.cancelled() => Err(Stop::Cancelled),
            _ = tokio::time::sleep_until(deadline) => Err(Stop::Deadline),
            sent = self.tx.send(Ok(batch)) => sent.map_err(|_| Stop::Dropped),
        }
    }

    async fn copy(
        &self,
        session: &mut Session,
        rows: &mut BatchBuilder,
        batch_rows: usize,
        deadline: Instant,
    ) -> Result<(), Stop> {
        let statement = sql::copy_out(&self.select);
        let cancel = self.options.cancel.clone();
        let sleep = tokio::time::sleep_until(deadline);
        tokio::pin!(sleep);
        let mut copy = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Stop::Cancelled),
            _ = self.tx.closed() => return Err(Stop::Dropped),
            _ = &mut sleep => return Err(Stop::Deadline),
            c = session.conn.copy_out_raw(&statement) => c.map_err(|e| self.stop_for(e))?,
        };
        let mut parser = CopyParser::default();
        let mut ready = Vec::new();
        let mut done = false;
        while !done {
            let chunk = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Stop::Cancelled),
                _ = self.tx.closed() => return Err(Stop::Dropped),
                _ = &mut sleep => return Err(Stop::Deadline),
                chunk = copy.next() => chunk,
            };
            match chunk {
                None => break,
                Some(Err(e)) => return Err(self.stop_for(e)),
                Some(Ok(bytes)) => parser.feed(&bytes, rows, batch_rows, &mut ready)?,
            }
            // The server sends a message per row: take the ones already received without
            // arming the select's cancel, drop and deadline futures for each (a bounded
            // run, so those are still looked at every few hundred rows).
            for _ in 0..READY_CHUNKS {
                match copy.next().now_or_never() {
                    None => break,
                    Some(None) => {
                        done = true;
                        break;
                    }
                    Some(Some(Err(e))) => return Err(self.stop_for(e)),
                    Some(Some(Ok(bytes))) => parser.feed(&bytes, rows, batch_rows, &mut ready)?,
                }
            }
            for batch in ready.drain(..) {
                self.send(batch, deadline).await?;
            }
        }
        if !parser.is_complete() {
            return Err(Stop::Failed(WarehouseError::Protocol {
                detail: "binary copy ended without its trailer".into(),
            }));
        }
        Ok(())
    }

    async fn cursor(
        &self,
        session: &mut Session,
        rows: &mut BatchBuilder,
        batch_rows: usize,
        fetch_rows: usize,
        deadline: Instant,
    ) -> Result<(), Stop> {
        let cancel = self.options.cancel.clone();
        let declare = sql::declare_cursor(&self.select);
        let fetch = sql::fetch_forward(fetch_rows);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Stop::Cancelled),
            _ = tokio::time::sleep_until(deadline) => return Err(Stop::Deadline),
            r = session.conn.execute(declare.as_str()) => { r.map_err(|e| self.stop_for(e))?; }
        }
        loop {
            let fetched = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Stop::Cancelled),
                _ = self.tx.closed() => return Err(Stop::Dropped),
                _ = tokio::time::sleep_until(deadline) => return Err(Stop::Deadline),
                r = sqlx::query(&fetch).persistent(false).fetch_all(&mut session.conn) => {
                    r.map_err(|e| self.stop_for(e))?
                }
            };
            for row in &fetched {
                append_row(row, rows)?;
                if rows.rows() >= batch_rows {
                    let batch = rows.finish()?;
                    self.send(batch, deadline).await?;
                }
            }
            if fetched.len() < fetch_rows {
                return Ok(());
            }
        }
    }
}

/// One fetched row (binary values, as sqlx asks for them) into the builder.
fn append_row(row: &sqlx::postgres::PgRow, rows: &mut BatchBuilder) -> Result<(), WarehouseError> {
    if row.len() != rows.width() {
        return Err(WarehouseError::Protocol {
            detail: format!(
                "fetched row has {} columns, expected {}",
                row.len(),
                rows.width()
            ),
        });
    }
    for i in 0..rows.width() {
        let value = row.try_get_raw(i).map_err(|e| WarehouseError::Protocol {
            detail: e.to_string(),
        })?;
        if value.is_null() {
            rows.append(i, None)?;
            continue;
        }
        if value.format() != PgValueFormat::Binary {
            return Err(WarehouseError::Protocol {
                detail: "the server sent a text value where binary was requested".into(),
            });
        }
        let bytes = value.as_bytes().map_err(|e| WarehouseError::Protocol {
            detail: e.to_string(),
        })?;
        rows.append(i, Some(bytes))?;
    }
    rows.end_row();
    Ok(())
}
