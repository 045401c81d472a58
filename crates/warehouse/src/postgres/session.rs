//! One connection per operation: dial (with the connect timeout), open the read-only
//! transaction with its statement timeout, and cancel a running statement from a second
//! connection (`pg_cancel_backend`) when the caller cancels or the client-side deadline
//! passes.

use std::future::Future;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection, Row};
use tokio_util::sync::CancellationToken;

use super::errors::{map_error, ErrorContext};
use super::{sql, PgSource};
use crate::WarehouseError;

/// Extra time the client waits past the server's statement timeout before it gives up.
pub(crate) const CLIENT_GRACE: Duration = Duration::from_secs(2);

pub(crate) struct Session {
    pub conn: PgConnection,
    pub pid: i32,
}

impl PgSource {
    pub(crate) fn ctx(
        &self,
        statement_timeout: Duration,
        cancelled_by_us: bool,
    ) -> ErrorContext<'_> {
        ErrorContext {
            endpoint: &self.endpoint,
            database: &self.settings.database,
            statement_timeout,
            cancelled_by_us,
        }
    }

    pub(crate) async fn dial(&self) -> Result<PgConnection, WarehouseError> {
        let options = self.settings.connect_options(&self.password);
        match tokio::time::timeout(
            self.settings.connect_timeout,
            PgConnection::connect_with(&options),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(map_error(e, self.ctx(Duration::ZERO, false))),
            Err(_) => Err(WarehouseError::Unreachable {
                endpoint: self.endpoint.clone(),
                detail: format!(
                    "no answer within {}s",
                    self.settings.connect_timeout.as_secs()
                ),
            }),
        }
    }

    /// A connection inside `BEGIN READ ONLY` with `statement_timeout` set.
    pub(crate) async fn read_only(&self, timeout: Duration) -> Result<Session, WarehouseError> {
        self.read_only_with(timeout, None).await
    }

    /// The same with a transaction-local `work_mem` (PostgreSQL; Redshift has none).
    pub(crate) async fn read_only_with(
        &self,
        timeout: Duration,
        work_mem_kib: Option<u64>,
    ) -> Result<Session, WarehouseError> {
        let mut conn = self.dial().await?;
        let work_mem_kib = work_mem_kib.filter(|_| self.flavor == super::Flavor::Postgres);
        let begin = sql::begin_read_only(timeout, work_mem_kib);
        let rows = conn
            .fetch_all(begin.as_str())
            .await
            .map_err(|e| map_error(e, self.ctx(timeout, false)))?;
        let pid = rows
            .first()
            .and_then(|r| r.try_get::<i32, _>(0).ok())
            .ok_or_else(|| WarehouseError::Protocol {
                detail: "pg_backend_pid() returned no row".into(),
            })?;
        Ok(Session { conn, pid })
    }

    /// Asks the server to cancel what backend `pid` runs (best effort, bounded).
    pub(crate) async fn cancel_backend(&self, pid: i32) {
        let attempt = async {
            let mut conn = self.dial().await.ok()?;
            let cancel = sql::cancel_backend(pid);
            let _ = conn.execute(cancel.as_str()).await;
            let _ = conn.close().await;
            Some(())
        };
        if tokio::time::timeout(Duration::from_secs(5), attempt)
            .await
            .is_err()
        {
            tracing::warn!(pid, endpoint = %self.endpoint, "cancelling the warehouse query timed out");
        }
    }

    /// Runs `work` (which uses the session's connection) until it finishes, `cancel`
    /// fires, or `timeout` plus a grace period passes; the last two cancel the statement
    /// in the server. The session must not be reused after an error.
    pub(crate) async fn guarded<T, F>(
        &self,
        pid: i32,
        timeout: Duration,
        cancel: &CancellationToken,
        work: F,
    ) -> Result<T, WarehouseError>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        let outcome = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(WarehouseError::Cancelled),
            _ = tokio::time::sleep(timeout + CLIENT_GRACE) => Err(WarehouseError::Timeout { after: timeout }),
            r = work => return r.map_err(|e| map_error(e, self.ctx(timeout, cancel.is_cancelled()))),
        };
        self.cancel_backend(pid).await;
        outcome
    }
}

impl Session {
    /// Ends the read-only transaction and closes the connection politely.
    pub(crate) async fn finish(mut self) {
        let _ = self.conn.execute("ROLLBACK").await;
        let _ = self.conn.close().await;
    }
}
