//! What a sync is and which syncs may be created: a Reverse ETL model, a destination,
//! a mode, a field mapping and a schedule, all within one workspace.

use crate::error::RetlError;
use crate::schedule::{self, Schedule};
use backflow_proto::retl::v1::SyncMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which warehouse column feeds which destination field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub source_column: String,
    pub destination_field: String,
}

/// A request to create a sync, already decoded from the wire.
#[derive(Debug, Clone)]
pub struct NewSync {
    pub workspace_id: String,
    pub name: String,
    pub retl_model_id: String,
    pub destination_id: String,
    /// Raw wire value of [`SyncMode`], checked by [`validate_new`].
    pub mode: i32,
    pub mappings: Vec<Mapping>,
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub retl_model_id: String,
    pub destination_id: String,
    pub mode: SyncMode,
    pub mappings: Vec<Mapping>,
    pub schedule: Schedule,
    pub paused: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Checks a new sync and builds its record (unpaused, schedule normalized).
pub fn validate_new(new: NewSync, id: String, now_ms: i64) -> Result<SyncRecord, RetlError> {
    require("workspace_id", &new.workspace_id)?;
    require("name", &new.name)?;
    require("retl_model_id", &new.retl_model_id)?;
    require("destination_id", &new.destination_id)?;
    let mode = match SyncMode::try_from(new.mode) {
        Ok(SyncMode::Unspecified) => return Err(invalid("mode is required".into())),
        Ok(mode) => mode,
        Err(_) => {
            return Err(invalid(format!(
                "mode {} is not a known sync mode",
                new.mode
            )))
        }
    };
    validate_mappings(&new.mappings)?;
    let schedule = new
        .schedule
        .ok_or_else(|| invalid("schedule is required".into()))?;
    let schedule = schedule::validate(schedule).map_err(invalid)?;
    Ok(SyncRecord {
        id,
        workspace_id: new.workspace_id,
        name: new.name.trim().to_string(),
        retl_model_id: new.retl_model_id,
        destination_id: new.destination_id,
        mode,
        mappings: new.mappings,
        schedule,
        paused: false,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    })
}

fn validate_mappings(mappings: &[Mapping]) -> Result<(), RetlError> {
    let mut destinations = BTreeSet::new();
    for (index, mapping) in mappings.iter().enumerate() {
        require(
            &format!("mappings[{index}].source_column"),
            &mapping.source_column,
        )?;
        require(
            &format!("mappings[{index}].destination_field"),
            &mapping.destination_field,
        )?;
        if !destinations.insert(mapping.destination_field.as_str()) {
            return Err(invalid(format!(
                "mappings[{index}].destination_field {:?} is mapped more than once",
                mapping.destination_field
            )));
        }
    }
    Ok(())
}

pub(crate) fn require(field: &str, value: &str) -> Result<(), RetlError> {
    if value.trim().is_empty() {
        Err(invalid(format!("{field} is required")))
    } else {
        Ok(())
    }
}

fn invalid(message: String) -> RetlError {
    RetlError::InvalidArgument(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_sync() -> NewSync {
        NewSync {
            workspace_id: "ws".into(),
            name: " contacts ".into(),
            retl_model_id: "model-1".into(),
            destination_id: "dest-1".into(),
            mode: SyncMode::Upsert as i32,
            mappings: vec![Mapping {
                source_column: "email".into(),
                destination_field: "Email".into(),
            }],
            schedule: Some(Schedule::Interval { seconds: 300 }),
        }
    }

    fn invalid_message(new: NewSync) -> String {
        match validate_new(new, "id".into(), 1) {
            Err(RetlError::InvalidArgument(message)) => message,
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn valid_sync_becomes_an_unpaused_record() {
        let record = validate_new(new_sync(), "id".into(), 9).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(record.name, "contacts");
        assert_eq!(record.mode, SyncMode::Upsert);
        assert!(!record.paused);
        assert_eq!(record.created_at_ms, 9);
    }

    #[test]
    fn required_fields_are_named() {
        type Clear = fn(&mut NewSync);
        let cases: [(&str, Clear); 5] = [
            ("workspace_id is required", |n| n.workspace_id.clear()),
            ("name is required", |n| n.name = " ".into()),
            ("retl_model_id is required", |n| n.retl_model_id.clear()),
            ("destination_id is required", |n| n.destination_id.clear()),
            ("schedule is required", |n| n.schedule = None),
        ];
        for (expected, clear) in cases {
            let mut new = new_sync();
            clear(&mut new);
            assert_eq!(invalid_message(new), expected);
        }
    }

    #[test]
    fn mode_must_be_specified_and_known() {
        let mut new = new_sync();
        new.mode = SyncMode::Unspecified as i32;
        assert_eq!(invalid_message(new), "mode is required");
        let mut new = new_sync();
        new.mode = 99;
        assert!(invalid_message(new).contains("not a known sync mode"));
    }

    #[test]
    fn mappings_are_complete_and_unique() {
        let mut new = new_sync();
        new.mappings[0].source_column.clear();
        assert_eq!(
            invalid_message(new),
            "mappings[0].source_column is required"
        );
        let mut new = new_sync();
        new.mappings.push(new.mappings[0].clone());
        assert!(invalid_message(new).contains("mapped more than once"));
    }

    #[test]
    fn schedule_rules_apply() {
        let mut new = new_sync();
        new.schedule = Some(Schedule::Interval { seconds: 30 });
        assert!(invalid_message(new).contains("interval_seconds"));
    }
}
