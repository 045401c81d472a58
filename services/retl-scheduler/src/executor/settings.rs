//! What a run needs to know about its sync, read from the sync record: the delivery mode,
//! the fields (column or constant, null policy), the guards, the attempt limit and the
//! per-sync destination options. One place, so the sync record can grow without the
//! pipeline changing.

use crate::diff::DeliveryMode;
use crate::executor::error::ExecError;
use crate::executor::guards::Guards;
use crate::executor::mapping::{FieldSource, FieldSpec, NullPolicy};
use crate::sync::SyncRecord;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Failed runs in a row after which a record is given up, when the sync sets none.
pub const DEFAULT_MAX_RECORD_ATTEMPTS: i32 = 5;

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub mode: DeliveryMode,
    pub fields: Vec<FieldSpec>,
    pub guards: Guards,
    pub max_record_attempts: i32,
    pub destination_options: Arc<BTreeMap<String, String>>,
    /// The sync's state epoch when the run started (a reset bumps it).
    pub state_epoch: i64,
}

impl SyncSettings {
    pub fn of(sync: &SyncRecord) -> Result<Self, ExecError> {
        let mode = DeliveryMode::from_sync_mode(sync.mode)
            .ok_or_else(|| ExecError::Sync(format!("sync {} has no mode", sync.id)))?;
        let fields = sync
            .mappings
            .iter()
            .map(|mapping| FieldSpec {
                destination_field: mapping.destination_field.clone(),
                source: match &mapping.constant {
                    Some(constant) => FieldSource::Constant(constant.clone()),
                    None => FieldSource::Column(mapping.source_column.clone()),
                },
                null_policy: match mapping.null_policy {
                    crate::sync::NullPolicy::SendNull => NullPolicy::SendNull,
                    crate::sync::NullPolicy::OmitField => NullPolicy::OmitField,
                    crate::sync::NullPolicy::RejectRecord => NullPolicy::RejectRecord,
                },
            })
            .collect();
        Ok(Self {
            mode,
            fields,
            guards: Guards {
                max_delete_share: sync.guards.max_delete_share,
                allow_empty_extract: sync.guards.allow_empty_extract,
            },
            max_record_attempts: if sync.max_record_attempts > 0 {
                sync.max_record_attempts
            } else {
                DEFAULT_MAX_RECORD_ATTEMPTS
            },
            destination_options: Arc::new(sync.destination_options.clone()),
            state_epoch: sync.state_epoch,
        })
    }

    /// Source columns the fields read, in mapping order (what the row hash covers).
    pub fn mapped_columns(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter_map(|field| match &field.source {
                FieldSource::Column(name) => Some(name.clone()),
                FieldSource::Constant(_) => None,
            })
            .collect()
    }
}
