//! The statement deadline and cancellation of one query run, shared by the REST
//! connectors that poll (BigQuery, Databricks): every wait races the caller's
//! [`CancellationToken`] and the client-side deadline, which then surface as
//! [`WarehouseError::Cancelled`] and [`WarehouseError::Timeout`].

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{QueryOptions, WarehouseError};

/// What stops a wait early.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    pub cancel: CancellationToken,
    pub deadline: Instant,
    pub timeout: Duration,
}

impl Stop {
    pub fn new(options: &QueryOptions) -> Self {
        Self {
            cancel: options.cancel.clone(),
            deadline: Instant::now() + options.statement_timeout,
            timeout: options.statement_timeout,
        }
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Runs `work` unless the deadline passes or the cancel fires first.
    pub async fn run<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, WarehouseError>>,
    ) -> Result<T, WarehouseError> {
        tokio::select! {
            r = work => r,
            _ = self.cancel.cancelled() => Err(WarehouseError::Cancelled),
            _ = tokio::time::sleep_until(self.deadline) => Err(WarehouseError::Timeout { after: self.timeout }),
        }
    }

    /// Sleeps `delay` unless stopped first.
    pub async fn sleep(&self, delay: Duration) -> Result<(), WarehouseError> {
        self.run(async {
            tokio::time::sleep(delay).await;
            Ok(())
        })
        .await
    }
}

/// Cancelled or timed out: the warehouse should be told to stop the statement.
pub(crate) fn is_stop(e: &WarehouseError) -> bool {
    matches!(
        e,
        WarehouseError::Cancelled | WarehouseError::Timeout { .. }
    )
}
