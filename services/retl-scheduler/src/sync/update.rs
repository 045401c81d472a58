//! Partial updates of a sync: what a request leaves unset keeps its value. Mappings and
//! destination options either replace the whole set or merge into it (a mapping by its
//! destination field; an option by key, an empty value removing it).

use super::{attempts_of, clean_options, mode_of, validate_mappings, Guards, Mapping, SyncRecord};
use crate::error::RetlError;
use crate::schedule::{self, Schedule};
use std::collections::BTreeMap;

/// A decoded `UpdateSyncRequest`.
#[derive(Debug, Clone, Default)]
pub struct SyncUpdate {
    pub name: Option<String>,
    /// Raw wire value of the mode.
    pub mode: Option<i32>,
    pub mappings: Vec<Mapping>,
    pub replace_mappings: bool,
    pub schedule: Option<Schedule>,
    pub destination_options: BTreeMap<String, String>,
    pub replace_destination_options: bool,
    pub guards: Option<Guards>,
    pub max_record_attempts: Option<i32>,
    pub only_if_model_rebuilt: Option<bool>,
    /// Raw wire value of the diff strategy.
    pub diff_strategy: Option<i32>,
}

impl SyncUpdate {
    /// Whether the update changes which columns the sync reads.
    pub fn touches_mappings(&self) -> bool {
        self.replace_mappings || !self.mappings.is_empty()
    }
}

/// The record after `update`, checked, with its version bumped; `Ok(None)` when nothing
/// would change.
pub fn apply_update(
    current: &SyncRecord,
    update: SyncUpdate,
    now_ms: i64,
) -> Result<Option<SyncRecord>, RetlError> {
    let mut next = current.clone();
    if let Some(name) = update.name {
        super::require("name", &name)?;
        next.name = name.trim().to_string();
    }
    if let Some(mode) = update.mode {
        next.mode = mode_of(mode)?;
    }
    if update.replace_mappings {
        next.mappings = update.mappings;
    } else {
        for mapping in update.mappings {
            match next
                .mappings
                .iter_mut()
                .find(|existing| existing.destination_field == mapping.destination_field)
            {
                Some(existing) => *existing = mapping,
                None => next.mappings.push(mapping),
            }
        }
    }
    validate_mappings(&next.mappings)?;
    if let Some(schedule) = update.schedule {
        next.schedule = schedule::validate(schedule).map_err(super::invalid)?;
    }
    let options = clean_options(update.destination_options)?;
    if update.replace_destination_options {
        next.destination_options = options;
    } else {
        for (key, value) in options {
            if value.is_empty() {
                next.destination_options.remove(&key);
            } else {
                next.destination_options.insert(key, value);
            }
        }
    }
    if let Some(guards) = update.guards {
        next.guards = guards;
    }
    if let Some(attempts) = update.max_record_attempts {
        next.max_record_attempts = attempts_of(attempts)?;
    }
    if let Some(only) = update.only_if_model_rebuilt {
        next.only_if_model_rebuilt = only;
    }
    if let Some(strategy) = update.diff_strategy {
        next.diff_strategy = super::diff_strategy_of(strategy)?;
    }
    if next == *current {
        return Ok(None);
    }
    next.version = current.version + 1;
    next.updated_at_ms = now_ms;
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{validate_new, NewSync, NullPolicy};
    use backflow_proto::retl::v1::SyncMode;

    fn current() -> SyncRecord {
        let mut new = NewSync::basic(
            "ws",
            "contacts",
            "m",
            "d",
            SyncMode::Upsert,
            vec![
                Mapping::column("email", "Email"),
                Mapping::column("name", "Name"),
            ],
            Schedule::Manual,
        );
        new.destination_options
            .insert("object".into(), "contact".into());
        new.destination_options.insert("event".into(), "x".into());
        validate_new(new, "s".into(), 1).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn unset_fields_keep_their_value_and_nothing_is_no_change() {
        assert_eq!(
            apply_update(&current(), SyncUpdate::default(), 5).ok(),
            Some(None)
        );
        let next = apply_update(
            &current(),
            SyncUpdate {
                mode: Some(SyncMode::Mirror as i32),
                ..Default::default()
            },
            5,
        )
        .ok()
        .flatten();
        let next = next.unwrap_or_else(|| panic!("changed"));
        assert_eq!(next.mode, SyncMode::Mirror);
        assert_eq!(next.mappings, current().mappings);
        assert_eq!(next.version, 2);
        assert_eq!(next.updated_at_ms, 5);
    }

    #[test]
    fn mappings_merge_by_field_or_replace() {
        let mut omit = Mapping::column("email_address", "Email");
        omit.null_policy = NullPolicy::OmitField;
        let merged = apply_update(
            &current(),
            SyncUpdate {
                mappings: vec![omit.clone(), Mapping::constant("source", "backflow")],
                ..Default::default()
            },
            5,
        )
        .ok()
        .flatten()
        .map(|r| r.mappings);
        assert_eq!(
            merged,
            Some(vec![
                omit.clone(),
                Mapping::column("name", "Name"),
                Mapping::constant("source", "backflow")
            ])
        );
        let replaced = apply_update(
            &current(),
            SyncUpdate {
                mappings: vec![omit.clone()],
                replace_mappings: true,
                ..Default::default()
            },
            5,
        )
        .ok()
        .flatten()
        .map(|r| r.mappings);
        assert_eq!(replaced, Some(vec![omit]));
    }

    #[test]
    fn options_merge_with_empty_values_removing_keys() {
        let next = apply_update(
            &current(),
            SyncUpdate {
                destination_options: [
                    ("event".to_string(), String::new()),
                    ("table".to_string(), "t".to_string()),
                ]
                .into_iter()
                .collect(),
                ..Default::default()
            },
            5,
        )
        .ok()
        .flatten()
        .map(|r| r.destination_options.into_iter().collect::<Vec<_>>());
        assert_eq!(
            next,
            Some(vec![
                ("object".to_string(), "contact".to_string()),
                ("table".to_string(), "t".to_string())
            ])
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for update in [
            SyncUpdate {
                name: Some(" ".into()),
                ..Default::default()
            },
            SyncUpdate {
                mode: Some(0),
                ..Default::default()
            },
            SyncUpdate {
                schedule: Some(Schedule::Interval { seconds: 5 }),
                ..Default::default()
            },
            SyncUpdate {
                max_record_attempts: Some(-2),
                ..Default::default()
            },
            SyncUpdate {
                mappings: vec![Mapping::column("", "Other")],
                ..Default::default()
            },
        ] {
            assert!(
                matches!(
                    apply_update(&current(), update.clone(), 5),
                    Err(RetlError::InvalidArgument(_))
                ),
                "{update:?}"
            );
        }
    }
}
