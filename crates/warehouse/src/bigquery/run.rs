//! Running one query to completion: `jobs.query`, then — while `jobComplete` is false,
//! which means no schema and no rows yet — `jobs.getQueryResults` long polls (each at
//! most 10 s, BigQuery's default) with a `jobs.get` between them, so a job that failed
//! (`status.errorResult` on a 200) is reported as soon as it is known.
//!
//! The statement timeout is enforced twice: BigQuery's `jobTimeoutMs` on the job, and a
//! client-side deadline. When the deadline passes or [`QueryOptions::cancel`] fires, the
//! job is cancelled with `jobs.cancel` (in the background, so the caller is not held up)
//! and the call returns [`WarehouseError::Timeout`] or [`WarehouseError::Cancelled`]. A
//! cancel that arrives while `jobs.query` itself is in flight is sent as soon as that
//! call returns the job's id.

use std::sync::Arc;
use std::time::Duration;

use super::client::BqClient;
use super::errors::{self, ErrorContext};
use super::wire::{DatasetReference, FormatOptions, JobReference, QueryRequest, QueryResponse};
use crate::deadline::{is_stop, Stop};
use crate::http::Backoff;
use crate::WarehouseError;

/// The longest one `jobs.query` / `getQueryResults` call waits (the API default).
const LONG_POLL: Duration = Duration::from_secs(10);

/// A finished query: its first page, and the job to page through.
#[derive(Debug)]
pub(crate) struct Completed {
    pub first: QueryResponse,
    pub job: Option<JobReference>,
}

fn poll_ms(stop: &Stop) -> u32 {
    u32::try_from(stop.remaining().min(LONG_POLL).as_millis()).unwrap_or(u32::MAX)
}

/// Runs `sql` (already wrapped read-only) until BigQuery says the job is complete.
pub(crate) async fn execute(
    client: &Arc<BqClient>,
    sql: String,
    page_rows: u32,
    stop: &Stop,
) -> Result<Completed, WarehouseError> {
    let ctx = ErrorContext {
        endpoint: client.endpoint.clone(),
        statement_timeout: stop.timeout,
    };
    let request = QueryRequest {
        query: sql,
        use_legacy_sql: false,
        location: client.location.clone(),
        timeout_ms: poll_ms(stop),
        max_results: page_rows,
        format_options: FormatOptions {
            use_int64_timestamp: true,
        },
        default_dataset: client.dataset.as_ref().map(|d| DatasetReference {
            project_id: client.project.clone(),
            dataset_id: d.clone(),
        }),
        job_timeout_ms: Some(stop.timeout.as_millis().to_string()),
    };
    // jobs.query runs in its own task so that a cancel arriving mid-call can still reach
    // the job once the answer names it.
    let mut call = {
        let client = client.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move { client.query(&request, &ctx).await })
    };
    let joined = stop
        .run(async {
            (&mut call).await.map_err(|_| WarehouseError::Protocol {
                detail: "the jobs.query task ended unexpectedly".into(),
            })?
        })
        .await;
    let first = match joined {
        Ok(response) => response,
        Err(e) if is_stop(&e) => {
            cancel_when_known(client.clone(), call, ctx);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let job = first.job_reference.clone();
    if first.is_complete() {
        return Ok(Completed { first, job });
    }
    let Some(job) = job else {
        return Err(WarehouseError::Protocol {
            detail: "jobs.query answered jobComplete=false without a jobReference".into(),
        });
    };
    match wait(client, &job, page_rows, stop, &ctx).await {
        Ok(first) => Ok(Completed {
            first,
            job: Some(job),
        }),
        Err(e) => {
            if is_stop(&e) {
                cancel_in_background(client.clone(), job, ctx);
            }
            Err(e)
        }
    }
}

/// Polls until `getQueryResults` answers with the job complete.
async fn wait(
    client: &BqClient,
    job: &JobReference,
    page_rows: u32,
    stop: &Stop,
    ctx: &ErrorContext,
) -> Result<QueryResponse, WarehouseError> {
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    loop {
        let results = stop
            .run(client.get_query_results(job, None, page_rows, Some(poll_ms(stop)), ctx))
            .await?;
        if results.is_complete() {
            return Ok(results);
        }
        let status = stop.run(client.get_job(job, ctx)).await?.status;
        if let Some(status) = status {
            if status.state == "DONE" {
                if let Some(err) = status.error_result {
                    return Err(errors::from_error_result(&err, ctx));
                }
                // Done without error: the next getQueryResults has the rows.
            }
        }
        stop.sleep(backoff.next_delay()).await?;
    }
}

fn cancel_in_background(client: Arc<BqClient>, job: JobReference, ctx: ErrorContext) {
    tokio::spawn(async move {
        match client.cancel_job(&job, &ctx).await {
            Ok(()) => tracing::debug!(job_id = %job.job_id, "bigquery job cancelled"),
            Err(e) => {
                tracing::warn!(job_id = %job.job_id, error = %e, "bigquery job cancel failed")
            }
        }
    });
}

/// Waits for an abandoned `jobs.query` and cancels its job if it was still running.
fn cancel_when_known(
    client: Arc<BqClient>,
    call: tokio::task::JoinHandle<Result<QueryResponse, WarehouseError>>,
    ctx: ErrorContext,
) {
    tokio::spawn(async move {
        if let Ok(Ok(response)) = call.await {
            if let (false, Some(job)) = (response.is_complete(), response.job_reference) {
                cancel_in_background(client, job, ctx);
            }
        }
    });
}
