//! The guards that stop a run before it delivers and wait for a person: a run that would
//! delete more than the sync's share of the records Backflow delivered (default half),
//! and an empty extract after a non-empty state (a broken model, an emptied table).
//! Approved runs and dry runs pass. Pure: the pipeline passes the diff's counts.

/// Share of delivered records a run may delete without approval when the sync sets none.
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 0.5;

/// A sync's guard settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guards {
    /// 0 → [`DEFAULT_MAX_DELETE_SHARE`]; 1 or more → deletes never stop a run.
    pub max_delete_share: f64,
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
    pub fn from_wire(guards: Option<&backflow_proto::retl::v1::SyncGuards>) -> Self {
        let Some(guards) = guards else {
            return Self::default();
        };
        Self {
            max_delete_share: if guards.max_delete_share > 0.0 {
                guards.max_delete_share
            } else {
                DEFAULT_MAX_DELETE_SHARE
            },
            allow_empty_extract: guards.allow_empty_extract,
        }
    }
}

/// What the diff found, as far as the guards care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardInput {
    /// Entries of the committed state.
    pub previous: u64,
    /// Entries of the committed state Backflow delivered (what deletes are a share of).
    pub previous_delivered: u64,
    pub extracted: u64,
    /// Deletes the run would send.
    pub deletes: u64,
}

/// `Some(reason)` when the run must wait for approval.
pub fn check(guards: &Guards, input: &GuardInput) -> Option<String> {
    if input.extracted == 0 && input.previous > 0 && !guards.allow_empty_extract {
        return Some(format!(
            "the model returned no rows, but the last committed state holds {} records",
            input.previous
        ));
    }
    if input.deletes > 0 && guards.max_delete_share < 1.0 && input.previous_delivered > 0 {
        let share = input.deletes as f64 / input.previous_delivered as f64;
        if share > guards.max_delete_share {
            return Some(format!(
                "would delete {} of {} records ({:.0}%), more than the sync allows ({:.0}%)",
                input.deletes,
                input.previous_delivered,
                share * 100.0,
                guards.max_delete_share * 100.0
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(previous: u64, extracted: u64, deletes: u64) -> GuardInput {
        GuardInput {
            previous,
            previous_delivered: previous,
            extracted,
            deletes,
        }
    }

    #[test]
    fn an_empty_extract_after_a_full_one_stops() {
        let reason = check(&Guards::default(), &input(10, 0, 10)).expect("stops");
        assert!(reason.contains("no rows"), "{reason}");
        assert_eq!(check(&Guards::default(), &input(0, 0, 0)), None);
        let allowed = Guards {
            allow_empty_extract: true,
            max_delete_share: 1.0,
        };
        assert_eq!(check(&allowed, &input(10, 0, 10)), None);
    }

    #[test]
    fn deletes_above_the_share_stop() {
        let reason = check(&Guards::default(), &input(1000, 100, 900)).expect("stops");
        assert_eq!(
            reason,
            "would delete 900 of 1000 records (90%), more than the sync allows (50%)"
        );
        assert_eq!(check(&Guards::default(), &input(1000, 500, 500)), None);
        let never = Guards {
            max_delete_share: 1.0,
            allow_empty_extract: false,
        };
        assert_eq!(check(&never, &input(1000, 100, 900)), None);
    }

    #[test]
    fn unset_wire_guards_take_the_defaults() {
        let wire = backflow_proto::retl::v1::SyncGuards::default();
        assert_eq!(Guards::from_wire(Some(&wire)), Guards::default());
        assert_eq!(Guards::from_wire(None), Guards::default());
    }
}
