//! Storage of dbt Cloud connections and received events. Everything here is portable
//! SQL that runs on PostgreSQL and SQLite; the contract tests run it on both.

use crate::error::DbtCloudError;
use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;
use backflow_proto::dbtcloud::v1::{RunCompletedEvent, RunEventPart};

pub mod artifact_fetches;
pub mod problems;
pub mod subscriptions;
pub mod sync_jobs;
pub use artifact_fetches::PendingFetch;
pub use subscriptions::{SubscriptionRecord, SubscriptionStatus, WebhookTarget};
pub use sync_jobs::{JobKey, SyncJobApplied, WatchedJob};

/// Most received events returned by one listing (newest first).
pub const RECEIVED_EVENTS_PAGE: i64 = 500;

/// A dbt Cloud account a workspace listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// Normalized `https://<host>`.
    pub access_url: String,
    pub account_id: i64,
    pub api_token_credential_id: String,
    pub created_at_ms: i64,
    /// The newest check of the token and account; `None` before the first.
    pub last_test: Option<LastTest>,
}

/// One check of a connection's token and account against dbt Cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastTest {
    pub ok: bool,
    /// `ConnectionProblem` as its number (0 when ok).
    pub problem: i32,
    pub message: String,
    pub tested_at_ms: i64,
    pub account_name: String,
}

type ConnectionRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    i64,
    String,
    String,
);

const CONNECTION_COLUMNS: &str =
    "id, workspace_id, name, access_url, account_id, api_token_credential_id, created_at_ms, \
     last_test_at_ms, last_test_ok, last_test_problem, last_test_message, last_test_account_name";

fn connection_of(row: ConnectionRow) -> ConnectionRecord {
    let (
        id,
        workspace_id,
        name,
        access_url,
        account_id,
        api_token_credential_id,
        created_at_ms,
        tested_at_ms,
        ok,
        problem,
        message,
        account_name,
    ) = row;
    let last_test = (tested_at_ms > 0).then(|| LastTest {
        ok: ok != 0,
        problem: i32::try_from(problem).unwrap_or(0),
        message,
        tested_at_ms,
        account_name,
    });
    ConnectionRecord {
        id,
        workspace_id,
        name,
        access_url,
        account_id,
        api_token_credential_id,
        created_at_ms,
        last_test,
    }
}

/// One webhook delivery (or polled run) as recorded for de-duplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEventRecord {
    pub event_id: String,
    pub connection_id: String,
    pub event_type: String,
    pub job_id: i64,
    pub run_id: i64,
    pub run_status_code: i64,
    pub received_at_ms: i64,
}

type ReceivedEventRow = (String, String, String, i64, i64, i64, i64);

/// What recording one received event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// This event id was already recorded for the connection: nothing changed.
    Duplicate,
    /// Recorded; nothing to announce (a started, errored or cancelled run).
    Recorded,
    /// Recorded, but another delivery (or subscription, or poll) announced the run first.
    RunAlreadyAnnounced,
    /// Recorded and `evt.dbt.run.completed` queued in the outbox.
    Announced,
}

impl Received {
    pub fn is_new(self) -> bool {
        !matches!(self, Self::Duplicate)
    }
}

#[derive(Clone, Debug)]
pub struct ConnectionStore {
    db: Database,
    outbox: Outbox,
    /// Woken after a commit that queued a node-results fetch (see `artifact_fetches`).
    fetches_queued: std::sync::Arc<tokio::sync::Notify>,
}

impl ConnectionStore {
    pub fn new(db: Database, outbox: Outbox) -> Self {
        Self {
            db,
            outbox,
            fetches_queued: Default::default(),
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub async fn create(&self, record: &ConnectionRecord) -> Result<(), DbtCloudError> {
        let test = record.last_test.clone().unwrap_or(LastTest {
            ok: false,
            problem: 0,
            message: String::new(),
            tested_at_ms: 0,
            account_name: String::new(),
        });
        let inserted = sqlx::query(&format!(
            "INSERT INTO dbt_connections ({CONNECTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.name)
        .bind(&record.access_url)
        .bind(record.account_id)
        .bind(&record.api_token_credential_id)
        .bind(record.created_at_ms)
        .bind(test.tested_at_ms)
        .bind(i64::from(test.ok))
        .bind(i64::from(test.problem))
        .bind(&test.message)
        .bind(&test.account_name)
        .execute(self.db.pool())
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if backflow_platform::db::is_unique_violation(&error) => {
                Err(DbtCloudError::AlreadyExists(record.name.clone()))
            }
            Err(error) => Err(error.into()),
        }
    }

    pub async fn get(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, DbtCloudError> {
        let row: Option<ConnectionRow> = sqlx::query_as(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM dbt_connections WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(connection_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(connection_of))
    }

    /// Stores the newest check; false when the connection is gone.
    pub async fn set_last_test(
        &self,
        workspace_id: &str,
        connection_id: &str,
        test: &LastTest,
    ) -> Result<bool, DbtCloudError> {
        let updated = sqlx::query(
            "UPDATE dbt_connections SET last_test_at_ms = $3, last_test_ok = $4, last_test_problem = $5, \
             last_test_message = $6, last_test_account_name = $7 WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace_id)
        .bind(connection_id)
        .bind(test.tested_at_ms)
        .bind(i64::from(test.ok))
        .bind(i64::from(test.problem))
        .bind(&test.message)
        .bind(&test.account_name)
        .execute(self.db.pool())
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// The connection a workspace's syncs on `account_id` go through: the oldest one
    /// for that account, if any.
    pub async fn connection_for_account(
        &self,
        workspace_id: &str,
        account_id: i64,
    ) -> Result<Option<ConnectionRecord>, DbtCloudError> {
        let row: Option<ConnectionRow> = sqlx::query_as(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM dbt_connections WHERE workspace_id = $1 AND account_id = $2 \
             ORDER BY created_at_ms, id LIMIT 1"
        ))
        .bind(workspace_id)
        .bind(account_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(connection_of))
    }

    pub async fn list(&self, workspace_id: &str) -> Result<Vec<ConnectionRecord>, DbtCloudError> {
        let rows: Vec<ConnectionRow> = sqlx::query_as(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM dbt_connections WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(connection_of).collect())
    }

    /// Deletes a connection with its subscriptions and received events. Returns false
    /// if it did not exist in this workspace.
    pub async fn delete(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<bool, DbtCloudError> {
        let mut tx = self.db.begin().await?;
        let deleted =
            sqlx::query("DELETE FROM dbt_connections WHERE workspace_id = $1 AND id = $2")
                .bind(workspace_id)
                .bind(connection_id)
                .execute(&mut *tx)
                .await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        for table in ["dbt_subscriptions", "dbt_received_events"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE workspace_id = $1 AND connection_id = $2"
            ))
            .bind(workspace_id)
            .bind(connection_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a received event unless its id was seen before for this connection.
    /// When it is new and `announce` is given, the run is claimed in
    /// `dbt_announced_runs` and, if no delivery, subscription or poll claimed it first,
    /// `evt.dbt.run.completed.<account>` is published through the outbox — all in one
    /// transaction, so a crash leaves either everything or nothing. A dbt Cloud run of
    /// a job some enabled sync waits on is announced as its COMPLETED part and leaves a
    /// pending fetch of its node results in the same transaction (`artifact_fetches`).
    pub async fn record_received(
        &self,
        workspace_id: &str,
        event: &ReceivedEventRecord,
        announce: Option<&RunCompletedEvent>,
    ) -> Result<Received, DbtCloudError> {
        self.record_received_via(workspace_id, event, announce, "webhook")
            .await
    }

    /// [`Self::record_received`] naming how the run was learnt (`webhook`, `poll`, `core`).
    pub async fn record_received_via(
        &self,
        workspace_id: &str,
        event: &ReceivedEventRecord,
        announce: Option<&RunCompletedEvent>,
        via: &str,
    ) -> Result<Received, DbtCloudError> {
        let mut tx = self.db.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO dbt_received_events (connection_id, event_id, workspace_id, event_type, job_id, run_id, run_status_code, received_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (connection_id, event_id) DO NOTHING",
        )
        .bind(&event.connection_id)
        .bind(&event.event_id)
        .bind(workspace_id)
        .bind(&event.event_type)
        .bind(event.job_id)
        .bind(event.run_id)
        .bind(event.run_status_code)
        .bind(event.received_at_ms)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(Received::Duplicate);
        }
        let Some(completed) = announce else {
            tx.commit().await?;
            return Ok(Received::Recorded);
        };
        // A dbt Core run has no account, job or run id: its event id (the invocation id)
        // is its only identity, so there is no run to claim.
        let claim_run = completed.account_id > 0;
        let claimed = sqlx::query(
            "INSERT INTO dbt_announced_runs (workspace_id, account_id, job_id, run_id, connection_id, via, announced_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workspace_id, account_id, job_id, run_id) DO NOTHING",
        )
        .bind(workspace_id)
        .bind(completed.account_id)
        .bind(completed.job_id)
        .bind(completed.run_id)
        .bind(&event.connection_id)
        .bind(via)
        .bind(event.received_at_ms);
        let claimed = if claim_run {
            claimed.execute(&mut *tx).await?.rows_affected()
        } else {
            1
        };
        if claimed == 0 {
            tx.commit().await?;
            return Ok(Received::RunAlreadyAnnounced);
        }
        let fetch = claim_run
            && completed.part == RunEventPart::Completed as i32
            && artifact_fetches::queue_if_waited_on(
                &mut tx,
                workspace_id,
                completed,
                event.received_at_ms,
            )
            .await?;
        let mut announced = completed.clone();
        if claim_run && !fetch {
            // No sync waits on the job: nothing will read its node results.
            announced.part = RunEventPart::Unspecified as i32;
        }
        self.outbox
            .enqueue(
                &mut tx,
                &backflow_proto::subjects::DBT_RUN_COMPLETED.for_id(completed.account_id),
                &announced,
            )
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        if fetch {
            self.fetches_queued.notify_one();
        }
        Ok(Received::Announced)
    }

    /// Received events of one connection, newest first, at most [`RECEIVED_EVENTS_PAGE`].
    pub async fn list_received(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<Vec<ReceivedEventRecord>, DbtCloudError> {
        let rows: Vec<ReceivedEventRow> = sqlx::query_as(
            "SELECT event_id, connection_id, event_type, job_id, run_id, run_status_code, received_at_ms \
             FROM dbt_received_events WHERE workspace_id = $1 AND connection_id = $2 \
             ORDER BY received_at_ms DESC, event_id DESC LIMIT $3",
        )
        .bind(workspace_id)
        .bind(connection_id)
        .bind(RECEIVED_EVENTS_PAGE)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    event_id,
                    connection_id,
                    event_type,
                    job_id,
                    run_id,
                    run_status_code,
                    received_at_ms,
                )| {
                    ReceivedEventRecord {
                        event_id,
                        connection_id,
                        event_type,
                        job_id,
                        run_id,
                        run_status_code,
                        received_at_ms,
                    }
                },
            )
            .collect())
    }
}
