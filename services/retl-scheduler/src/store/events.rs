//! `evt.retl.sync.changed.<sync>`: which Reverse ETL model a sync uses, the source
//! columns it reads and whether it is enabled, written to the outbox in the same
//! transaction as the change. The catalog's in-use guard is a projection of these.
//! The columns are the model's primary key (as the sync last validated it) and the
//! mapped source columns; constants read none.

use crate::error::RetlError;
use crate::schedule::Schedule;
use crate::sync::SyncRecord;
use backflow_platform::db::Transaction;
use backflow_platform::outbox::Outbox;
use backflow_proto::retl::v1::{DbtCloudJobSchedule, SyncChangedEvent};

/// The event for `record` at `version` (`deleted` for a sync that is gone).
pub fn sync_changed(record: &SyncRecord, version: i64, deleted: bool) -> SyncChangedEvent {
    let used_columns = record.used_columns();
    SyncChangedEvent {
        workspace_id: record.workspace_id.clone(),
        sync_id: record.id.clone(),
        retl_model_id: record.retl_model_id.clone(),
        enabled: !record.paused && !deleted,
        deleted,
        used_columns,
        version,
        sync_name: record.name.clone(),
        after_dbt_cloud_job: match record.schedule {
            Schedule::AfterDbtCloudJob { account_id, job_id } => {
                Some(DbtCloudJobSchedule { account_id, job_id })
            }
            _ => None,
        },
    }
}

pub(super) async fn announce(
    outbox: &Outbox,
    tx: &mut Transaction<'_>,
    record: &SyncRecord,
    version: i64,
    deleted: bool,
) -> Result<(), RetlError> {
    outbox
        .enqueue(
            tx,
            &backflow_proto::subjects::SYNC_CHANGED.for_id(&record.id),
            &sync_changed(record, version, deleted),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{validate_new, Mapping, NewSync};
    use backflow_proto::retl::v1::SyncMode;

    #[test]
    fn the_event_names_the_model_the_used_columns_once_and_whether_enabled() {
        let new = NewSync::basic(
            "ws",
            "contacts",
            "m1",
            "d1",
            SyncMode::Upsert,
            vec![
                Mapping::column("email", "Email"),
                Mapping::column("email", "Login"),
                Mapping::constant("source", "backflow"),
                Mapping::column("name", "Name"),
            ],
            Schedule::Manual,
        );
        let mut record = validate_new(new, "s1".into(), 1).unwrap_or_else(|err| panic!("{err}"));
        record.primary_key = vec!["id".into()];
        let event = sync_changed(&record, 3, false);
        assert_eq!(event.used_columns, vec!["id", "email", "name"]);
        assert!(event.enabled);
        assert_eq!(event.version, 3);
        assert_eq!(event.retl_model_id, "m1");
        record.paused = true;
        assert!(!sync_changed(&record, 4, false).enabled);
        record.paused = false;
        let gone = sync_changed(&record, 5, true);
        assert!(gone.deleted && !gone.enabled);
    }
}
