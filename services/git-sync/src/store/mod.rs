//! Storage of connections and sync runs. Every change that others must hear about is
//! written with its event in one transaction (outbox), so a crash can lose neither.

mod rows;
pub mod runs;
pub mod snapshots;
pub mod sources;

use crate::error::GitSyncError;
use crate::settings::Settings;
use backflow_platform::db::{Database, Transaction};
use backflow_platform::lease::{LeasePolicy, Leases};
use backflow_platform::outbox::Outbox;
use backflow_proto::gitsync::v1 as pb;
pub use rows::{ConnectionRecord, RunRecord};
pub use runs::{PollTarget, RunFailure, SyncResult};
pub use sources::SourceApplied;
use std::time::Duration;

/// The lease kind of a running sync run (`platform_leases.kind`).
pub const RUN_LEASE_KIND: &str = "git_sync.run";

/// A running run's lease: renewed every 10 s, reaped 30 s after its last renewal.
pub const DEFAULT_RUN_LEASE: LeasePolicy = LeasePolicy {
    ttl: Duration::from_secs(30),
    renew_every: Duration::from_secs(10),
    reap_every: Duration::from_secs(15),
};

pub(crate) const CONNECTION_COLUMNS: &str = "id, workspace_id, name, provider, protocol, repository_url, branch, dbt_version, default_schema, project_path, credential_id, warehouse_source_id, webhook_secret_credential_id, settings_version, created_at_ms, updated_at_ms";
pub(crate) const RUN_COLUMNS: &str = "id, workspace_id, connection_id, trigger, status, commit_sha, model_count, error, queued_at_ms, started_at_ms, finished_at_ms, duration_ms, node_errors";

#[derive(Clone, Debug)]
pub struct GitSyncStore {
    db: Database,
    outbox: Outbox,
    leases: Leases,
}

impl GitSyncStore {
    pub fn new(db: Database, outbox: Outbox) -> Self {
        let leases = Leases::new(db.clone(), RUN_LEASE_KIND, DEFAULT_RUN_LEASE);
        Self { db, outbox, leases }
    }

    /// The same store with another run lease policy (shorter in tests).
    pub fn with_run_lease(self, policy: LeasePolicy) -> Self {
        let leases = Leases::new(self.db.clone(), RUN_LEASE_KIND, policy);
        Self { leases, ..self }
    }

    /// The leases this process holds on running runs.
    pub fn run_leases(&self) -> &Leases {
        &self.leases
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Inserts the connection, queues its initial sync, and announces both.
    pub async fn create_connection(
        &self,
        workspace_id: &str,
        name: &str,
        settings: &Settings,
    ) -> Result<(ConnectionRecord, RunRecord), GitSyncError> {
        let now = backflow_platform::now_unix_ms();
        let record = ConnectionRecord {
            id: backflow_platform::new_id(),
            workspace_id: workspace_id.to_string(),
            name: name.to_string(),
            settings: settings.clone(),
            settings_version: 1,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let mut tx = self.db.begin().await?;
        if let Err(error) = write_connection(&mut tx, &record).await {
            if backflow_platform::db::is_unique_violation(&error) {
                return Err(GitSyncError::AlreadyExists(name.to_string()));
            }
            return Err(error.into());
        }
        let (record, run) = self
            .resync_and_announce(
                tx,
                record,
                Some(pb::SyncTrigger::Initial),
                pb::ConnectionChange::Created,
            )
            .await?;
        let run = run.ok_or_else(|| GitSyncError::Corrupt("no initial run queued".into()))?;
        Ok((record, run))
    }

    /// Replaces the settings (optionally only if unchanged since `expected_version`)
    /// and queues a re-sync, unless only the webhook secret changed (it does not
    /// change what is synced). A real change also forgets past failures.
    pub async fn update_settings(
        &self,
        workspace_id: &str,
        connection_id: &str,
        settings: &Settings,
        expected_version: i64,
    ) -> Result<(ConnectionRecord, Option<RunRecord>), GitSyncError> {
        let mut tx = self.db.begin().await?;
        let current = fetch_connection(&mut tx, workspace_id, connection_id).await?;
        if expected_version != 0 && expected_version != current.settings_version {
            return Err(GitSyncError::Conflict {
                expected: expected_version,
                found: current.settings_version,
            });
        }
        let resync = !current.settings.same_sync_source(settings);
        let record = ConnectionRecord {
            settings: settings.clone(),
            settings_version: current.settings_version + 1,
            updated_at_ms: backflow_platform::now_unix_ms(),
            ..current
        };
        write_connection(&mut tx, &record).await?;
        if resync {
            runs::write_poll_state(&mut tx, &record.id, &Default::default()).await?;
        }
        self.resync_and_announce(
            tx,
            record,
            resync.then_some(pb::SyncTrigger::SettingsChanged),
            pb::ConnectionChange::Updated,
        )
        .await
    }

    /// Ends a create or settings change: queues the sync, announces the change, and
    /// commits both with the change itself.
    async fn resync_and_announce(
        &self,
        mut tx: Transaction<'static>,
        record: ConnectionRecord,
        trigger: Option<pb::SyncTrigger>,
        change: pb::ConnectionChange,
    ) -> Result<(ConnectionRecord, Option<RunRecord>), GitSyncError> {
        let run = match trigger {
            Some(trigger) => Some(self.queue_run(&mut tx, &record, trigger, "").await?),
            None => None,
        };
        self.announce(&mut tx, &record, change).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok((record, run))
    }

    pub async fn delete_connection(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<(), GitSyncError> {
        let mut tx = self.db.begin().await?;
        let record = fetch_connection(&mut tx, workspace_id, connection_id).await?;
        sqlx::query("DELETE FROM sync_runs WHERE connection_id = $1")
            .bind(connection_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM connections WHERE id = $1")
            .bind(connection_id)
            .execute(&mut *tx)
            .await?;
        self.announce(&mut tx, &record, pb::ConnectionChange::Deleted)
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    pub async fn get_connection(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<ConnectionRecord, GitSyncError> {
        let mut conn = self.db.pool().acquire().await?;
        let row = sqlx::query_as(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(connection_id)
        .fetch_optional(&mut *conn)
        .await?;
        row.map(ConnectionRecord::from_row)
            .ok_or_else(|| not_found("connection", connection_id))
    }

    /// A connection by id alone, for entry points authenticated otherwise (webhooks).
    pub async fn find_connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<ConnectionRecord>, GitSyncError> {
        let row = sqlx::query_as(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = $1"
        ))
        .bind(connection_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(ConnectionRecord::from_row))
    }

    pub async fn list_connections(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<ConnectionRecord>, GitSyncError> {
        let rows = sqlx::query_as(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(ConnectionRecord::from_row).collect())
    }

    /// Queues a sync unless one is already queued for the connection, in which case
    /// that run is returned: concurrent requests coalesce into one sync.
    pub async fn trigger_sync(
        &self,
        workspace_id: &str,
        connection_id: &str,
        trigger: pb::SyncTrigger,
    ) -> Result<RunRecord, GitSyncError> {
        self.trigger_sync_at(workspace_id, connection_id, trigger, "")
            .await
    }

    /// [`Self::trigger_sync`] for a known target head (poll, push): a failed run
    /// then records the commit it tried even if the fetch never got that far.
    pub async fn trigger_sync_at(
        &self,
        workspace_id: &str,
        connection_id: &str,
        trigger: pb::SyncTrigger,
        target_commit: &str,
    ) -> Result<RunRecord, GitSyncError> {
        let mut tx = self.db.begin().await?;
        let record = fetch_connection(&mut tx, workspace_id, connection_id).await?;
        let queued = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE connection_id = $1 AND status = $2 ORDER BY queued_at_ms LIMIT 1"
        ))
        .bind(connection_id)
        .bind(pb::SyncStatus::Queued as i32)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = queued {
            tx.rollback().await?;
            return Ok(RunRecord::from_row(row));
        }
        let run = self
            .queue_run(&mut tx, &record, trigger, target_commit)
            .await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(run)
    }

    pub async fn get_run(
        &self,
        workspace_id: &str,
        run_id: &str,
    ) -> Result<RunRecord, GitSyncError> {
        let row = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(run_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(RunRecord::from_row)
            .ok_or_else(|| not_found("sync run", run_id))
    }

    /// Newest first; an empty `connection_id` lists the whole workspace's runs.
    pub async fn list_runs(
        &self,
        workspace_id: &str,
        connection_id: &str,
        limit: i64,
    ) -> Result<Vec<RunRecord>, GitSyncError> {
        let rows = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE workspace_id = $1 AND ($2 = '' OR connection_id = $2) \
             ORDER BY queued_at_ms DESC, id DESC LIMIT $3"
        ))
        .bind(workspace_id)
        .bind(connection_id)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(RunRecord::from_row).collect())
    }

    async fn queue_run(
        &self,
        tx: &mut Transaction<'_>,
        connection: &ConnectionRecord,
        trigger: pb::SyncTrigger,
        target_commit: &str,
    ) -> Result<RunRecord, GitSyncError> {
        let mut run = RunRecord::queued(connection, trigger);
        run.commit_sha = target_commit.to_string();
        sqlx::query(&format!(
            "INSERT INTO sync_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&run.id)
        .bind(&run.workspace_id)
        .bind(&run.connection_id)
        .bind(run.trigger)
        .bind(run.status)
        .bind(&run.commit_sha)
        .bind(run.model_count)
        .bind(&run.error)
        .bind(run.queued_at_ms)
        .bind(run.started_at_ms)
        .bind(run.finished_at_ms)
        .bind(run.duration_ms)
        .bind(serde_json::to_string(&run.node_errors).unwrap_or_else(|_| "[]".into()))
        .execute(&mut **tx)
        .await?;
        let command = pb::SyncCommand {
            workspace_id: run.workspace_id.clone(),
            connection_id: run.connection_id.clone(),
            run_id: run.id.clone(),
            trigger: run.trigger,
        };
        self.outbox
            .enqueue(
                tx,
                &backflow_proto::subjects::SYNC_CONNECTION.for_id(&run.connection_id),
                &command,
            )
            .await?;
        Ok(run)
    }

    async fn announce(
        &self,
        tx: &mut Transaction<'_>,
        record: &ConnectionRecord,
        change: pb::ConnectionChange,
    ) -> Result<(), GitSyncError> {
        let verb = match change {
            pb::ConnectionChange::Created => "created",
            pb::ConnectionChange::Deleted => "deleted",
            _ => "updated",
        };
        let event = pb::ConnectionChangedEvent {
            workspace_id: record.workspace_id.clone(),
            change: change as i32,
            connection: Some(record.to_proto()),
        };
        self.outbox
            .enqueue(
                tx,
                &backflow_proto::subjects::connection_changed(verb, &record.id),
                &event,
            )
            .await?;
        Ok(())
    }
}

fn not_found(kind: &'static str, id: &str) -> GitSyncError {
    GitSyncError::NotFound {
        kind,
        id: id.to_string(),
    }
}

pub(crate) async fn fetch_connection(
    tx: &mut Transaction<'_>,
    workspace_id: &str,
    connection_id: &str,
) -> Result<ConnectionRecord, GitSyncError> {
    let row = sqlx::query_as(&format!(
        "SELECT {CONNECTION_COLUMNS} FROM connections WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(connection_id)
    .fetch_optional(&mut **tx)
    .await?;
    row.map(ConnectionRecord::from_row)
        .ok_or_else(|| not_found("connection", connection_id))
}

/// Writes the whole connection row: inserts a new one, or replaces the settings of an
/// existing one (same id). A second connection with the same name in the workspace
/// fails with a unique violation.
async fn write_connection(
    tx: &mut Transaction<'_>,
    record: &ConnectionRecord,
) -> Result<(), sqlx::Error> {
    let s = &record.settings;
    sqlx::query(&format!(
        "INSERT INTO connections ({CONNECTION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, protocol = excluded.protocol, \
         repository_url = excluded.repository_url, branch = excluded.branch, dbt_version = excluded.dbt_version, \
         default_schema = excluded.default_schema, project_path = excluded.project_path, \
         credential_id = excluded.credential_id, warehouse_source_id = excluded.warehouse_source_id, \
         webhook_secret_credential_id = excluded.webhook_secret_credential_id, \
         settings_version = excluded.settings_version, updated_at_ms = excluded.updated_at_ms"
    ))
    .bind(&record.id)
    .bind(&record.workspace_id)
    .bind(&record.name)
    .bind(s.provider)
    .bind(s.protocol)
    .bind(&s.repository_url)
    .bind(&s.branch)
    .bind(&s.dbt_version)
    .bind(&s.default_schema)
    .bind(&s.project_path)
    .bind(&s.credential_id)
    .bind(&s.warehouse_source_id)
    .bind(&s.webhook_secret_credential_id)
    .bind(record.settings_version)
    .bind(record.created_at_ms)
    .bind(record.updated_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
