//! What a sync is and which syncs may be created: a Reverse ETL model, a destination,
//! a mode, a field mapping (columns, constants, a null policy per field), a schedule,
//! per-sync destination options, guards and an attempt limit, all within one workspace.
//! Checks against the Reverse ETL model itself are in [`model`]; partial updates in
//! [`update`]. Everything here is pure.

pub mod model;
pub mod update;

pub use model::{ModelShape, RetlModelLookup, StaticModels, UnconfiguredModels};
pub use update::{apply_update, SyncUpdate};

use crate::error::RetlError;
use crate::schedule::{self, Schedule};
use backflow_proto::retl::v1::{DiffStrategy, SyncMode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Share of committed records a run may delete without approval when the sync sets none.
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 0.5;
/// Runs in a row a record may fail before it is given up, when the sync sets none.
pub const DEFAULT_MAX_RECORD_ATTEMPTS: i32 = 5;
/// Highest attempt limit a sync may set.
pub const MAX_RECORD_ATTEMPTS: i32 = 1000;

/// What to do with a mapped column that is NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NullPolicy {
    /// Send null.
    #[default]
    SendNull,
    /// Leave the field out (the destination keeps its value).
    OmitField,
    /// Do not send the record: it becomes a rejected record.
    RejectRecord,
}

impl NullPolicy {
    pub fn from_wire(value: i32) -> Result<Self, RetlError> {
        use backflow_proto::retl::v1::NullPolicy as Wire;
        match Wire::try_from(value) {
            Ok(Wire::Unspecified | Wire::SendNull) => Ok(Self::SendNull),
            Ok(Wire::OmitField) => Ok(Self::OmitField),
            Ok(Wire::RejectRecord) => Ok(Self::RejectRecord),
            Err(_) => Err(invalid(format!(
                "null_policy {value} is not a known policy"
            ))),
        }
    }

    pub fn to_wire(self) -> backflow_proto::retl::v1::NullPolicy {
        use backflow_proto::retl::v1::NullPolicy as Wire;
        match self {
            Self::SendNull => Wire::SendNull,
            Self::OmitField => Wire::OmitField,
            Self::RejectRecord => Wire::RejectRecord,
        }
    }
}

/// One destination field: fed by a warehouse column, or a constant (then
/// `source_column` is empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    #[serde(default)]
    pub source_column: String,
    pub destination_field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<String>,
    #[serde(default)]
    pub null_policy: NullPolicy,
}

impl Mapping {
    /// A column → field mapping that sends nulls.
    pub fn column(source_column: &str, destination_field: &str) -> Self {
        Self {
            source_column: source_column.to_string(),
            destination_field: destination_field.to_string(),
            constant: None,
            null_policy: NullPolicy::SendNull,
        }
    }

    /// A field that always carries `value`.
    pub fn constant(destination_field: &str, value: &str) -> Self {
        Self {
            source_column: String::new(),
            destination_field: destination_field.to_string(),
            constant: Some(value.to_string()),
            null_policy: NullPolicy::SendNull,
        }
    }
}

/// When a run stops before delivering and waits for approval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guards {
    /// Share of committed records a run may delete without approval (1 → never stop).
    pub max_delete_share: f64,
    /// An empty extract after a non-empty one goes ahead without approval.
    pub allow_empty_extract: bool,
}

impl Default for Guards {
    fn default() -> Self {
        Self {
            max_delete_share: DEFAULT_MAX_DELETE_SHARE,
            allow_empty_extract: false,
        }
    }
}

impl Guards {
    /// Wire guards (0 share → the default), checked.
    pub fn from_wire(max_delete_share: f64, allow_empty_extract: bool) -> Result<Self, RetlError> {
        if !max_delete_share.is_finite() || !(0.0..=1.0).contains(&max_delete_share) {
            return Err(invalid(format!(
                "guards.max_delete_share must be between 0 and 1, got {max_delete_share}"
            )));
        }
        Ok(Self {
            max_delete_share: if max_delete_share == 0.0 {
                DEFAULT_MAX_DELETE_SHARE
            } else {
                max_delete_share
            },
            allow_empty_extract,
        })
    }
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
    pub destination_options: BTreeMap<String, String>,
    pub guards: Guards,
    /// Raw wire value of [`DiffStrategy`] (0 → auto).
    pub diff_strategy: i32,
    /// 0 → [`DEFAULT_MAX_RECORD_ATTEMPTS`].
    pub max_record_attempts: i32,
    pub only_if_model_rebuilt: bool,
    /// Create it paused.
    pub paused: bool,
}

impl NewSync {
    /// A sync with the defaults for everything but what it names.
    pub fn basic(
        workspace_id: &str,
        name: &str,
        retl_model_id: &str,
        destination_id: &str,
        mode: SyncMode,
        mappings: Vec<Mapping>,
        schedule: Schedule,
    ) -> Self {
        Self {
            workspace_id: workspace_id.to_string(),
            name: name.to_string(),
            retl_model_id: retl_model_id.to_string(),
            destination_id: destination_id.to_string(),
            mode: mode as i32,
            mappings,
            schedule: Some(schedule),
            destination_options: BTreeMap::new(),
            guards: Guards::default(),
            diff_strategy: 0,
            max_record_attempts: 0,
            only_if_model_rebuilt: false,
            paused: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
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
    /// Why Backflow paused it by itself (its webhook endpoint answered 410 Gone); empty
    /// when a user paused it or it is not paused. Resuming clears it.
    pub paused_reason: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub destination_options: BTreeMap<String, String>,
    pub guards: Guards,
    pub diff_strategy: DiffStrategy,
    /// Never 0 once validated.
    pub max_record_attempts: i32,
    pub only_if_model_rebuilt: bool,
    /// Bumped by a state reset: diff state written at another epoch is void.
    pub state_epoch: i64,
    /// The Reverse ETL model's primary key when the sync was last validated.
    pub primary_key: Vec<String>,
    /// Increases with every change (also carried by `SyncChangedEvent`).
    pub version: i64,
}

impl SyncRecord {
    /// Source columns the sync reads: the primary key, then the mapped columns, each once.
    pub fn used_columns(&self) -> Vec<String> {
        let mut used: Vec<String> = Vec::new();
        let mapped = self
            .mappings
            .iter()
            .filter(|mapping| mapping.constant.is_none())
            .map(|mapping| &mapping.source_column);
        for column in self.primary_key.iter().chain(mapped) {
            if !used.contains(column) {
                used.push(column.clone());
            }
        }
        used
    }
}

/// Checks a new sync (without the model: see [`model::check_against`]) and builds its
/// record (schedule normalized, defaults filled in, version 1).
pub fn validate_new(new: NewSync, id: String, now_ms: i64) -> Result<SyncRecord, RetlError> {
    require("workspace_id", &new.workspace_id)?;
    require("name", &new.name)?;
    require("retl_model_id", &new.retl_model_id)?;
    require("destination_id", &new.destination_id)?;
    let mode = mode_of(new.mode)?;
    validate_mappings(&new.mappings)?;
    let schedule = new
        .schedule
        .ok_or_else(|| invalid("schedule is required".into()))?;
    let schedule = schedule::validate(schedule).map_err(invalid)?;
    Ok(SyncRecord {
        id,
        workspace_id: new.workspace_id,
        name: new.name.trim().to_string(),
        retl_model_id: new.retl_model_id.trim().to_string(),
        destination_id: new.destination_id.trim().to_string(),
        mode,
        mappings: new.mappings,
        schedule,
        paused: new.paused,
        paused_reason: String::new(),
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        destination_options: clean_options(new.destination_options)?,
        guards: new.guards,
        diff_strategy: diff_strategy_of(new.diff_strategy)?,
        max_record_attempts: attempts_of(new.max_record_attempts)?,
        only_if_model_rebuilt: new.only_if_model_rebuilt,
        state_epoch: 0,
        primary_key: Vec::new(),
        version: 1,
    })
}

pub(crate) fn mode_of(wire: i32) -> Result<SyncMode, RetlError> {
    match SyncMode::try_from(wire) {
        Ok(SyncMode::Unspecified) => Err(invalid("mode is required".into())),
        Ok(mode) => Ok(mode),
        Err(_) => Err(invalid(format!("mode {wire} is not a known sync mode"))),
    }
}

pub(crate) fn diff_strategy_of(wire: i32) -> Result<DiffStrategy, RetlError> {
    match DiffStrategy::try_from(wire) {
        Ok(DiffStrategy::Unspecified) => Ok(DiffStrategy::Auto),
        Ok(strategy) => Ok(strategy),
        Err(_) => Err(invalid(format!(
            "diff_strategy {wire} is not a known strategy"
        ))),
    }
}

pub(crate) fn attempts_of(wire: i32) -> Result<i32, RetlError> {
    match wire {
        0 => Ok(DEFAULT_MAX_RECORD_ATTEMPTS),
        1..=MAX_RECORD_ATTEMPTS => Ok(wire),
        _ => Err(invalid(format!(
            "max_record_attempts must be between 1 and {MAX_RECORD_ATTEMPTS} (0 for the default), got {wire}"
        ))),
    }
}

/// Option keys trimmed and non-empty.
pub(crate) fn clean_options(
    options: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, RetlError> {
    let mut cleaned = BTreeMap::new();
    for (key, value) in options {
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid("destination_options has an empty key".into()));
        }
        cleaned.insert(key.to_string(), value);
    }
    Ok(cleaned)
}

/// Each mapping is a column or a constant, with a field name used once.
pub(crate) fn validate_mappings(mappings: &[Mapping]) -> Result<(), RetlError> {
    let mut destinations = BTreeSet::new();
    for (index, mapping) in mappings.iter().enumerate() {
        require(
            &format!("mappings[{index}].destination_field"),
            &mapping.destination_field,
        )?;
        match &mapping.constant {
            Some(_) if !mapping.source_column.trim().is_empty() => {
                return Err(invalid(format!(
                    "mappings[{index}] has both a constant and source_column {:?}; a constant field reads no column",
                    mapping.source_column
                )))
            }
            Some(_) if mapping.null_policy != NullPolicy::SendNull => {
                return Err(invalid(format!(
                    "mappings[{index}] is a constant; null_policy applies to column fields only"
                )))
            }
            Some(_) => {}
            None => require(
                &format!("mappings[{index}].source_column"),
                &mapping.source_column,
            )?,
        }
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

pub(crate) fn invalid(message: String) -> RetlError {
    RetlError::InvalidArgument(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_sync() -> NewSync {
        NewSync::basic(
            "ws",
            " contacts ",
            "model-1",
            "dest-1",
            SyncMode::Upsert,
            vec![Mapping::column("email", "Email")],
            Schedule::Interval { seconds: 300 },
        )
    }

    fn invalid_message(new: NewSync) -> String {
        match validate_new(new, "id".into(), 1) {
            Err(RetlError::InvalidArgument(message)) => message,
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn valid_sync_becomes_a_record_with_defaults() {
        let record = validate_new(new_sync(), "id".into(), 9).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(record.name, "contacts");
        assert_eq!(record.mode, SyncMode::Upsert);
        assert!(!record.paused);
        assert_eq!(record.created_at_ms, 9);
        assert_eq!(record.max_record_attempts, DEFAULT_MAX_RECORD_ATTEMPTS);
        assert_eq!(record.diff_strategy, DiffStrategy::Auto);
        assert_eq!(record.guards, Guards::default());
        assert_eq!(record.version, 1);
        let mut paused = new_sync();
        paused.paused = true;
        assert!(validate_new(paused, "id".into(), 9).is_ok_and(|r| r.paused));
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
    fn constants_read_no_column() {
        let mut new = new_sync();
        new.mappings.push(Mapping::constant("source", "backflow"));
        assert!(validate_new(new, "id".into(), 1).is_ok());
        let mut new = new_sync();
        let mut both = Mapping::constant("source", "backflow");
        both.source_column = "email".into();
        new.mappings.push(both);
        assert!(invalid_message(new).contains("both a constant and source_column"));
        let mut new = new_sync();
        let mut omitted = Mapping::constant("source", "backflow");
        omitted.null_policy = NullPolicy::OmitField;
        new.mappings.push(omitted);
        assert!(invalid_message(new).contains("null_policy applies to column fields only"));
    }

    #[test]
    fn limits_and_options_are_checked() {
        let mut new = new_sync();
        new.max_record_attempts = -1;
        assert!(invalid_message(new).contains("max_record_attempts"));
        let mut new = new_sync();
        new.destination_options.insert(" ".into(), "x".into());
        assert!(invalid_message(new).contains("empty key"));
        let mut new = new_sync();
        new.diff_strategy = 42;
        assert!(invalid_message(new).contains("diff_strategy"));
        assert!(Guards::from_wire(1.5, false).is_err());
        assert!(Guards::from_wire(f64::NAN, false).is_err());
        assert_eq!(
            Guards::from_wire(0.0, true)
                .map(|g| g.max_delete_share)
                .ok(),
            Some(DEFAULT_MAX_DELETE_SHARE)
        );
    }

    #[test]
    fn used_columns_are_the_key_then_mapped_columns_once() {
        let mut new = new_sync();
        new.mappings = vec![
            Mapping::column("email", "Email"),
            Mapping::column("email", "Login"),
            Mapping::constant("source", "backflow"),
            Mapping::column("id", "ExternalId"),
        ];
        let mut record = validate_new(new, "id".into(), 1).unwrap_or_else(|err| panic!("{err}"));
        record.primary_key = vec!["id".into()];
        assert_eq!(record.used_columns(), vec!["id", "email"]);
    }

    #[test]
    fn schedule_rules_apply() {
        let mut new = new_sync();
        new.schedule = Some(Schedule::Interval { seconds: 30 });
        assert!(invalid_message(new).contains("interval_seconds"));
    }
}
