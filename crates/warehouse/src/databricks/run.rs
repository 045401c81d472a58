//! Running one statement until it succeeds: submit with `wait_timeout` (only `0s` or
//! `5s`–`50s` are allowed: we wait up to 10 s, less when the deadline is nearer, `0s`
//! when under 5 s are left) and `on_wait_timeout: CONTINUE`, then poll
//! `GET /statements/{id}` with jittered back-off while the state is PENDING or RUNNING.
//!
//! SUCCEEDED hands back the manifest and the first chunk. FAILED (HTTP 200!) is mapped by
//! [`super::errors::from_failed`]; CANCELED is [`WarehouseError::Cancelled`]; CLOSED (the
//! result is gone) is a failed query. When the deadline passes or the caller cancels, the
//! statement is cancelled with `POST …/cancel` in the background; a cancel arriving while
//! the submit is in flight is sent once the answer names the statement.

use std::sync::Arc;
use std::time::Duration;

use super::client::DbxClient;
use super::errors::{self, ErrorContext};
use super::wire::{ExecuteRequest, StatementResponse};
use crate::deadline::{is_stop, Stop};
use crate::http::Backoff;
use crate::WarehouseError;

/// The longest server-side wait we ask for.
const MAX_WAIT_SECS: u64 = 10;

/// `wait_timeout` for the time left: 0 or 5..=10 seconds.
pub(crate) fn wait_timeout(left: Duration) -> String {
    let secs = left.as_secs().min(MAX_WAIT_SECS);
    if secs < 5 {
        "0s".into()
    } else {
        format!("{secs}s")
    }
}

/// Where to run the statement.
#[derive(Debug, Clone, Default)]
pub(crate) struct Target {
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub row_limit: Option<u64>,
}

/// Submits `statement` (already wrapped read-only) and waits until it SUCCEEDED.
pub(crate) async fn execute(
    client: &Arc<DbxClient>,
    statement: String,
    target: Target,
    stop: &Stop,
    ctx: &ErrorContext,
) -> Result<StatementResponse, WarehouseError> {
    let request = ExecuteRequest {
        statement,
        warehouse_id: client.warehouse_id.clone(),
        catalog: target.catalog,
        schema: target.schema,
        wait_timeout: wait_timeout(stop.remaining()),
        on_wait_timeout: "CONTINUE",
        disposition: "INLINE",
        format: "JSON_ARRAY",
        row_limit: target.row_limit,
    };
    let mut call = {
        let client = client.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move { client.submit(&request, &ctx).await })
    };
    let submitted = stop
        .run(async {
            (&mut call).await.map_err(|_| WarehouseError::Protocol {
                detail: "the submit task ended unexpectedly".into(),
            })?
        })
        .await;
    let mut response = match submitted {
        Ok(r) => r,
        Err(e) if is_stop(&e) => {
            cancel_when_known(client.clone(), call, ctx.clone());
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let id = response.statement_id.clone().unwrap_or_default();
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    loop {
        let state = response
            .status
            .as_ref()
            .map(|s| s.state.as_str())
            .unwrap_or_default();
        match state {
            "SUCCEEDED" => return Ok(response),
            "PENDING" | "RUNNING" => {}
            "FAILED" => {
                let error = response.status.as_ref().and_then(|s| s.error.as_ref());
                return Err(errors::from_failed(error, ctx));
            }
            "CANCELED" => return Err(WarehouseError::Cancelled),
            "CLOSED" => {
                return Err(WarehouseError::QueryFailed {
                    code: Some("CLOSED".into()),
                    message: "the statement's result is no longer available".into(),
                })
            }
            other => {
                return Err(WarehouseError::Protocol {
                    detail: format!("statement state {other:?} is not a documented state"),
                })
            }
        }
        if id.is_empty() {
            return Err(WarehouseError::Protocol {
                detail: "a pending statement has no statement_id".into(),
            });
        }
        let polled = async {
            stop.sleep(backoff.next_delay()).await?;
            stop.run(client.status(&id, ctx)).await
        };
        response = match polled.await {
            Ok(r) => r,
            Err(e) => {
                if is_stop(&e) {
                    cancel_in_background(client.clone(), id, ctx.clone());
                }
                return Err(e);
            }
        };
    }
}

fn cancel_in_background(client: Arc<DbxClient>, id: String, ctx: ErrorContext) {
    tokio::spawn(async move {
        match client.cancel(&id, &ctx).await {
            Ok(()) => tracing::debug!(statement_id = %id, "databricks statement cancel sent"),
            Err(e) => {
                tracing::warn!(statement_id = %id, error = %e, "databricks statement cancel failed")
            }
        }
    });
}

fn cancel_when_known(
    client: Arc<DbxClient>,
    call: tokio::task::JoinHandle<Result<StatementResponse, WarehouseError>>,
    ctx: ErrorContext,
) {
    tokio::spawn(async move {
        if let Ok(Ok(response)) = call.await {
            let running = response
                .status
                .as_ref()
                .is_some_and(|s| matches!(s.state.as_str(), "PENDING" | "RUNNING"));
            if let (true, Some(id)) = (running, response.statement_id) {
                cancel_in_background(client, id, ctx);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeout_is_0_or_5_to_10_seconds() {
        assert_eq!(wait_timeout(Duration::from_secs(300)), "10s");
        assert_eq!(wait_timeout(Duration::from_secs(7)), "7s");
        assert_eq!(wait_timeout(Duration::from_millis(4999)), "0s");
        assert_eq!(wait_timeout(Duration::ZERO), "0s");
    }
}
