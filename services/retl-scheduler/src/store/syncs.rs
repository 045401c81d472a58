//! Sync rows: create, update, pause/resume, delete and state reset. Every change that
//! alters what a sync reads or whether it is enabled bumps its version and writes the
//! `SyncChangedEvent` in the same transaction. The ticker's bookkeeping (interval anchor,
//! next due tick) is set here whenever the schedule or the pause state changes.

use super::rows::{sync_of, SyncRow, SYNC_COLUMNS};
use super::{events, SyncStore};
use crate::error::RetlError;
use crate::schedule::{self, Schedule};
use crate::sync::SyncRecord;
use backflow_platform::db::Transaction;
use backflow_proto::retl::v1::RunStatus;

/// The schedule flattened into its columns: interval seconds, cron expression, time
/// zone, dbt account, dbt job, dbt project.
fn schedule_columns(schedule: &Schedule) -> (i64, &str, &str, i64, i64, &str) {
    match schedule {
        Schedule::Manual => (0, "", "", 0, 0, ""),
        Schedule::Interval { seconds } => (*seconds, "", "", 0, 0, ""),
        Schedule::Cron {
            expression,
            time_zone,
        } => (0, expression.as_str(), time_zone.as_str(), 0, 0, ""),
        Schedule::AfterDbtCloudJob { account_id, job_id } => (0, "", "", *account_id, *job_id, ""),
        Schedule::AfterDbtCoreRun { project_name } => (0, "", "", 0, 0, project_name.as_str()),
    }
}

fn json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, RetlError> {
    serde_json::to_string(value).map_err(|err| RetlError::InvalidArgument(format!("{what}: {err}")))
}

/// Runs of a sync in a state that a delete or reset must not cut under.
async fn active_run(
    tx: &mut Transaction<'_>,
    sync_id: &str,
    statuses: &[RunStatus],
) -> Result<Option<String>, RetlError> {
    for status in statuses {
        let found: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM retl_runs WHERE sync_id = $1 AND status = $2 ORDER BY queued_at_ms LIMIT 1",
        )
        .bind(sync_id)
        .bind(*status as i32)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some((id,)) = found {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

impl SyncStore {
    /// Stores a new sync (its destination must exist in the workspace) and announces it.
    pub async fn create_sync(&self, record: &SyncRecord) -> Result<(), RetlError> {
        let mappings = json("mappings", &record.mappings)?;
        let options = json("destination_options", &record.destination_options)?;
        let primary_key = json("primary_key", &record.primary_key)?;
        let (
            interval_seconds,
            cron_expression,
            time_zone,
            dbt_account_id,
            dbt_job_id,
            dbt_project_name,
        ) = schedule_columns(&record.schedule);
        let anchor = record.created_at_ms;
        let next_tick = schedule::next_tick(&record.schedule, anchor, anchor).unwrap_or(0);
        let mut tx = self.db.begin().await?;
        self.require_destination(&mut tx, &record.workspace_id, &record.destination_id)
            .await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO retl_syncs ({SYNC_COLUMNS}, schedule_anchor_ms, next_tick_ms) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
              $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)"
        ))
        .bind(&record.id)
        .bind(&record.workspace_id)
        .bind(&record.name)
        .bind(&record.retl_model_id)
        .bind(&record.destination_id)
        .bind(record.mode as i32)
        .bind(mappings)
        .bind(record.schedule.kind())
        .bind(interval_seconds)
        .bind(cron_expression)
        .bind(time_zone)
        .bind(dbt_account_id)
        .bind(dbt_job_id)
        .bind(i32::from(record.paused))
        .bind(record.created_at_ms)
        .bind(record.updated_at_ms)
        .bind(options)
        .bind(record.guards.max_delete_share)
        .bind(i32::from(record.guards.allow_empty_extract))
        .bind(record.diff_strategy as i32)
        .bind(record.max_record_attempts)
        .bind(i32::from(record.only_if_model_rebuilt))
        .bind(record.state_epoch)
        .bind(primary_key)
        .bind(record.version)
        .bind(dbt_project_name)
        .bind(&record.paused_reason)
        .bind(anchor)
        .bind(next_tick)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if backflow_platform::db::is_unique_violation(&error) => {
                return Err(RetlError::AlreadyExists(record.name.clone()))
            }
            Err(error) => return Err(error.into()),
        }
        events::announce(&self.outbox, &mut tx, record, record.version, false).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    pub(super) async fn require_destination(
        &self,
        tx: &mut Transaction<'_>,
        workspace_id: &str,
        destination_id: &str,
    ) -> Result<(), RetlError> {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM retl_destinations WHERE workspace_id = $1 AND id = $2")
                .bind(workspace_id)
                .bind(destination_id)
                .fetch_optional(&mut **tx)
                .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(RetlError::DestinationNotFound(destination_id.to_string())),
        }
    }

    /// Writes an updated record whose version is `current_version + 1` (refused if the
    /// sync changed meanwhile) and announces it; a changed schedule restarts its ticks
    /// from now.
    pub async fn update_sync(
        &self,
        record: &SyncRecord,
        current_version: i64,
        schedule_changed: bool,
    ) -> Result<(), RetlError> {
        let mappings = json("mappings", &record.mappings)?;
        let options = json("destination_options", &record.destination_options)?;
        let primary_key = json("primary_key", &record.primary_key)?;
        let (
            interval_seconds,
            cron_expression,
            time_zone,
            dbt_account_id,
            dbt_job_id,
            dbt_project_name,
        ) = schedule_columns(&record.schedule);
        let mut tx = self.db.begin().await?;
        let updated = sqlx::query(
            "UPDATE retl_syncs SET name = $1, mode = $2, mappings = $3, schedule_kind = $4, \
             interval_seconds = $5, cron_expression = $6, time_zone = $7, dbt_account_id = $8, \
             dbt_job_id = $9, updated_at_ms = $10, destination_options = $11, max_delete_share = $12, \
             allow_empty_extract = $13, max_record_attempts = $14, only_if_model_rebuilt = $15, \
             model_primary_key = $16, version = $17, dbt_project_name = $18, diff_strategy = $19 \
             WHERE workspace_id = $20 AND id = $21 AND version = $22",
        )
        .bind(&record.name)
        .bind(record.mode as i32)
        .bind(mappings)
        .bind(record.schedule.kind())
        .bind(interval_seconds)
        .bind(cron_expression)
        .bind(time_zone)
        .bind(dbt_account_id)
        .bind(dbt_job_id)
        .bind(record.updated_at_ms)
        .bind(options)
        .bind(record.guards.max_delete_share)
        .bind(i32::from(record.guards.allow_empty_extract))
        .bind(record.max_record_attempts)
        .bind(i32::from(record.only_if_model_rebuilt))
        .bind(primary_key)
        .bind(record.version)
        .bind(dbt_project_name)
        .bind(record.diff_strategy as i32)
        .bind(&record.workspace_id)
        .bind(&record.id)
        .bind(current_version)
        .execute(&mut *tx)
        .await;
        let updated = match updated {
            Ok(updated) => updated,
            Err(error) if backflow_platform::db::is_unique_violation(&error) => {
                return Err(RetlError::AlreadyExists(record.name.clone()))
            }
            Err(error) => return Err(error.into()),
        };
        if updated.rows_affected() != 1 {
            return Err(RetlError::FailedPrecondition(format!(
                "sync {} changed while it was being updated; read it again and retry",
                record.id
            )));
        }
        if schedule_changed {
            let now = record.updated_at_ms;
            let next = schedule::next_tick(&record.schedule, now, now).unwrap_or(0);
            sqlx::query(
                "UPDATE retl_syncs SET schedule_anchor_ms = $1, next_tick_ms = $2 WHERE id = $3",
            )
            .bind(now)
            .bind(next)
            .bind(&record.id)
            .execute(&mut *tx)
            .await?;
        }
        events::announce(&self.outbox, &mut tx, record, record.version, false).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(())
    }

    /// Pauses or resumes (bumping the version and announcing it in the same transaction;
    /// a sync already in that state is left alone); returns false if the sync does not
    /// exist in this workspace. Resuming restarts the ticks from now, so ticks missed while
    /// paused do not fire, and clears the reason Backflow paused it for (if it did).
    pub async fn set_paused(
        &self,
        workspace_id: &str,
        sync_id: &str,
        paused: bool,
    ) -> Result<bool, RetlError> {
        let mut tx = self.db.begin().await?;
        let now = backflow_platform::now_unix_ms();
        let updated = sqlx::query(
            "UPDATE retl_syncs SET paused = $1, paused_reason = '', updated_at_ms = $2, version = version + 1 WHERE workspace_id = $3 AND id = $4 AND paused <> $1",
        )
        .bind(i32::from(paused))
        .bind(now)
        .bind(workspace_id)
        .bind(sync_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            // Already in that state (nothing to announce), or not there at all.
            let exists: Option<(i32,)> =
                sqlx::query_as("SELECT paused FROM retl_syncs WHERE workspace_id = $1 AND id = $2")
                    .bind(workspace_id)
                    .bind(sync_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Ok(exists.is_some());
        }
        let record = self.sync_in(&mut tx, workspace_id, sync_id).await?;
        if !paused {
            let (anchor,): (i64,) =
                sqlx::query_as("SELECT schedule_anchor_ms FROM retl_syncs WHERE id = $1")
                    .bind(sync_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let next = schedule::next_tick(&record.schedule, anchor, now).unwrap_or(0);
            sqlx::query("UPDATE retl_syncs SET next_tick_ms = $1 WHERE id = $2")
                .bind(next)
                .bind(sync_id)
                .execute(&mut *tx)
                .await?;
        }
        events::announce(&self.outbox, &mut tx, &record, record.version, false).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(true)
    }

    /// Pauses every enabled sync of the workspace that delivers to `destination_id`, with
    /// `reason` shown on each (Backflow pausing them by itself: the destination's endpoint
    /// is gone). Each one is bumped and announced as [`SyncStore::set_paused`] does; a
    /// sync already paused keeps its state and reason, so calling it again (another run,
    /// another replica) changes nothing. Returns the ids it paused, in id order.
    pub async fn pause_syncs_of_destination(
        &self,
        workspace_id: &str,
        destination_id: &str,
        reason: &str,
    ) -> Result<Vec<String>, RetlError> {
        let mut tx = self.db.begin().await?;
        let now = backflow_platform::now_unix_ms();
        let enabled: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM retl_syncs WHERE workspace_id = $1 AND destination_id = $2 AND paused = 0 ORDER BY id",
        )
        .bind(workspace_id)
        .bind(destination_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut paused = Vec::with_capacity(enabled.len());
        for (sync_id,) in enabled {
            let updated = sqlx::query(
                "UPDATE retl_syncs SET paused = 1, paused_reason = $1, updated_at_ms = $2, version = version + 1 \
                 WHERE workspace_id = $3 AND id = $4 AND paused = 0",
            )
            .bind(reason)
            .bind(now)
            .bind(workspace_id)
            .bind(&sync_id)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() != 1 {
                continue;
            }
            let record = self.sync_in(&mut tx, workspace_id, &sync_id).await?;
            events::announce(&self.outbox, &mut tx, &record, record.version, false).await?;
            paused.push(sync_id);
        }
        tx.commit().await?;
        if !paused.is_empty() {
            self.outbox.committed();
        }
        Ok(paused)
    }

    /// Deletes a sync (refused while one of its runs is running) and announces it as
    /// deleted; its queued and guarded runs end cancelled, and its run history (runs,
    /// record errors) stays readable in the workspace. Returns the record as it was.
    pub async fn delete_sync(
        &self,
        workspace_id: &str,
        sync_id: &str,
    ) -> Result<SyncRecord, RetlError> {
        let mut tx = self.db.begin().await?;
        let record = self.sync_in(&mut tx, workspace_id, sync_id).await?;
        if let Some(run_id) = active_run(&mut tx, sync_id, &[RunStatus::Running]).await? {
            return Err(RetlError::FailedPrecondition(format!(
                "sync {sync_id} has a running run {run_id}; cancel it (or wait for it) before deleting the sync"
            )));
        }
        // Runs that would never run now end, cancelled; the history stays readable.
        let waiting: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM retl_runs WHERE sync_id = $1 AND status IN ($2, $3)")
                .bind(sync_id)
                .bind(RunStatus::Queued as i32)
                .bind(RunStatus::AwaitingApproval as i32)
                .fetch_all(&mut *tx)
                .await?;
        for (run_id,) in waiting {
            self.end_run_in(
                &mut tx,
                &run_id,
                RunStatus::Cancelled,
                "the sync was deleted",
            )
            .await?;
        }
        for table in [
            "retl_sync_keys",
            "retl_record_attempts",
            "retl_carried_deletes",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE sync_id = $1"))
                .bind(sync_id)
                .execute(&mut *tx)
                .await?;
        }
        // The row stays as a tombstone outside every workspace (runs refer to it), so
        // the sync's runs and their record errors stay in the workspace's history. It
        // never ticks, frees its name and no longer holds its destination.
        sqlx::query(
            "UPDATE retl_syncs SET workspace_id = '', name = id, paused = 1, next_tick_ms = 0, \
             dbt_account_id = 0, dbt_job_id = 0, version = version + 1 WHERE workspace_id = $1 AND id = $2",
        )
        .bind(workspace_id)
        .bind(sync_id)
        .execute(&mut *tx)
        .await?;
        events::announce(&self.outbox, &mut tx, &record, record.version + 1, true).await?;
        tx.commit().await?;
        self.outbox.committed();
        Ok(record)
    }

    /// Checks that nothing is running or waiting for approval, then bumps the state
    /// epoch: diff state written at an older epoch is void. Returns the new record.
    pub async fn bump_state_epoch(
        &self,
        workspace_id: &str,
        sync_id: &str,
    ) -> Result<SyncRecord, RetlError> {
        let mut tx = self.db.begin().await?;
        self.sync_in(&mut tx, workspace_id, sync_id).await?;
        self.refuse_active(&mut tx, sync_id, "resetting its state")
            .await?;
        sqlx::query(
            "UPDATE retl_syncs SET state_epoch = state_epoch + 1, updated_at_ms = $1 WHERE workspace_id = $2 AND id = $3",
        )
        .bind(backflow_platform::now_unix_ms())
        .bind(workspace_id)
        .bind(sync_id)
        .execute(&mut *tx)
        .await?;
        let record = self.sync_in(&mut tx, workspace_id, sync_id).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Moves the sync from state epoch `from` to `from + 1`: what a run does before
    /// committing a state that replaces a void one (first commit, after a reset, under a
    /// new diff strategy), so any state of the older epoch, wherever it lives, is void from
    /// then on. FAILED_PRECONDITION if the epoch is no longer `from` (reset meanwhile).
    pub async fn advance_state_epoch(
        &self,
        workspace_id: &str,
        sync_id: &str,
        from: i64,
    ) -> Result<i64, RetlError> {
        let done = sqlx::query(
            "UPDATE retl_syncs SET state_epoch = $1 WHERE workspace_id = $2 AND id = $3 AND state_epoch = $4",
        )
        .bind(from + 1)
        .bind(workspace_id)
        .bind(sync_id)
        .bind(from)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() != 1 {
            return Err(RetlError::FailedPrecondition(format!(
                "the state of sync {sync_id} was reset during the run; nothing was committed"
            )));
        }
        Ok(from + 1)
    }

    /// What a mirror run that carried deletes across a diff strategy change writes before
    /// its commit, in one transaction: the deletes still owed (`owed`: key hash, key values;
    /// they replace every earlier one), at the epoch the run commits at, which is `from`
    /// moved on by one when `advance` (as [`Self::advance_state_epoch`]). So the first run
    /// under a new strategy voids the old state and keeps what it still owes at once, and a
    /// reset meanwhile (the epoch is no longer `from`: FAILED_PRECONDITION) writes nothing.
    pub async fn settle_carried_deletes(
        &self,
        workspace_id: &str,
        sync_id: &str,
        from: i64,
        advance: bool,
        owed: &[(u64, String)],
    ) -> Result<i64, RetlError> {
        let epoch = if advance { from + 1 } else { from };
        let mut tx = self.db.begin().await?;
        let done = sqlx::query(
            "UPDATE retl_syncs SET state_epoch = $1 WHERE workspace_id = $2 AND id = $3 AND state_epoch = $4",
        )
        .bind(epoch)
        .bind(workspace_id)
        .bind(sync_id)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(RetlError::FailedPrecondition(format!(
                "the state of sync {sync_id} was reset during the run; nothing was committed"
            )));
        }
        sqlx::query("DELETE FROM retl_carried_deletes WHERE sync_id = $1")
            .bind(sync_id)
            .execute(&mut *tx)
            .await?;
        for chunk in owed.chunks(200) {
            let mut sql = String::from(
                "INSERT INTO retl_carried_deletes (sync_id, key_json, key_hash, state_epoch) VALUES ",
            );
            for at in 0..chunk.len() {
                if at > 0 {
                    sql.push_str(", ");
                }
                let first = at * 4;
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${})",
                    first + 1,
                    first + 2,
                    first + 3,
                    first + 4
                ));
            }
            let mut query = sqlx::query(&sql);
            for (key_hash, key_json) in chunk {
                query = query
                    .bind(sync_id)
                    .bind(key_json.as_str())
                    .bind(*key_hash as i64)
                    .bind(epoch);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(epoch)
    }

    /// FAILED_PRECONDITION when a run of the sync is running or awaiting approval.
    pub async fn check_idle(&self, workspace_id: &str, sync_id: &str) -> Result<(), RetlError> {
        let mut tx = self.db.begin().await?;
        self.sync_in(&mut tx, workspace_id, sync_id).await?;
        self.refuse_active(&mut tx, sync_id, "resetting its state")
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn refuse_active(
        &self,
        tx: &mut Transaction<'_>,
        sync_id: &str,
        doing: &str,
    ) -> Result<(), RetlError> {
        let statuses = [RunStatus::Running, RunStatus::AwaitingApproval];
        if let Some(run_id) = active_run(tx, sync_id, &statuses).await? {
            return Err(RetlError::FailedPrecondition(format!(
                "sync {sync_id} has run {run_id} running or awaiting approval; finish, cancel or reject it before {doing}"
            )));
        }
        Ok(())
    }

    /// The sync inside a transaction; NotFound if it is not in the workspace.
    pub(super) async fn sync_in(
        &self,
        tx: &mut Transaction<'_>,
        workspace_id: &str,
        sync_id: &str,
    ) -> Result<SyncRecord, RetlError> {
        let row: Option<SyncRow> = sqlx::query_as(&format!(
            "SELECT {SYNC_COLUMNS} FROM retl_syncs WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(sync_id)
        .fetch_optional(&mut **tx)
        .await?;
        match row {
            Some(row) => sync_of(row),
            None => Err(RetlError::NotFound(sync_id.to_string())),
        }
    }

    pub async fn get_sync(
        &self,
        workspace_id: &str,
        sync_id: &str,
    ) -> Result<Option<SyncRecord>, RetlError> {
        let row: Option<SyncRow> = sqlx::query_as(&format!(
            "SELECT {SYNC_COLUMNS} FROM retl_syncs WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(sync_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(sync_of).transpose()
    }

    pub async fn list_syncs(&self, workspace_id: &str) -> Result<Vec<SyncRecord>, RetlError> {
        let rows: Vec<SyncRow> = sqlx::query_as(&format!(
            "SELECT {SYNC_COLUMNS} FROM retl_syncs WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter().map(sync_of).collect()
    }

    /// Names of the syncs of the workspace delivering to `destination_id`.
    pub async fn syncs_using_destination(
        &self,
        workspace_id: &str,
        destination_id: &str,
    ) -> Result<Vec<String>, RetlError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM retl_syncs WHERE workspace_id = $1 AND destination_id = $2 ORDER BY name",
        )
        .bind(workspace_id)
        .bind(destination_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }
}
