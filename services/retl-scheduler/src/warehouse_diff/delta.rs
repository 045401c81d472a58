//! What a warehouse-side run commits: the rows it pulled (additions and updates, with
//! their new hashes) and the state entries missing from the model, settled by the
//! destination's answers, become puts, re-hashes and drops through `diff::rules`, the
//! rules the Backflow-side commit applies to its sorted run.

use super::sql::{Delta, Put};
use crate::diff::rules::{self, Next, Settled};
use crate::diff::{Change, DeliveryMode};
use std::collections::HashSet;

/// A pulled row that is an addition or an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub key_hash: u64,
    pub row_hash: u64,
    pub change: Change,
    /// Key values to keep in the state (mirror, which may delete it later).
    pub key_json: Option<String>,
}

/// A state entry whose key is not in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing {
    pub key_hash: u64,
    pub delivered: bool,
}

/// The delta to commit. `failed` holds records the destination refused (or the mapping
/// rejected), `given_up` those that failed their last allowed attempt.
pub fn build_delta(
    mode: DeliveryMode,
    replace: bool,
    changes: Vec<Changed>,
    missing: &[Missing],
    failed: &[u64],
    given_up: &[u64],
) -> Delta {
    let failed: HashSet<u64> = failed.iter().copied().collect();
    let given_up: HashSet<u64> = given_up.iter().copied().collect();
    let settled = |key: u64| {
        if given_up.contains(&key) {
            Settled::GivenUp
        } else if failed.contains(&key) {
            Settled::Failed
        } else {
            Settled::Delivered
        }
    };
    let mut delta = Delta {
        replace,
        ..Delta::default()
    };
    for changed in changes {
        let next = match changed.change {
            Change::Added => rules::added(mode, settled(changed.key_hash)),
            Change::Updated => rules::updated(mode, settled(changed.key_hash)),
            Change::Deleted => Next::Keep,
        };
        match next {
            Next::Put { delivered } => delta.puts.push(Put {
                key_hash: changed.key_hash,
                row_hash: changed.row_hash,
                delivered,
                key_json: changed.key_json,
            }),
            Next::PutKeepFlag => delta.rehash.push((changed.key_hash, changed.row_hash)),
            // an addition that is dropped was never in the state; a kept entry stays
            Next::Drop | Next::Keep => {}
        }
    }
    for entry in missing {
        if rules::missing(mode, entry.delivered, settled(entry.key_hash)) == Next::Drop {
            delta.drops.push(entry.key_hash);
        }
    }
    delta
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(key: u64, change: Change) -> Changed {
        Changed {
            key_hash: key,
            row_hash: key * 10,
            change,
            key_json: None,
        }
    }

    #[test]
    fn failures_are_kept_out_and_given_up_records_are_recorded() {
        let changes = vec![
            changed(1, Change::Added),
            changed(2, Change::Added),
            changed(3, Change::Added),
            changed(4, Change::Updated),
            changed(5, Change::Updated),
            changed(6, Change::Updated),
        ];
        let missing = [
            Missing {
                key_hash: 7,
                delivered: true,
            },
            Missing {
                key_hash: 8,
                delivered: true,
            },
            Missing {
                key_hash: 9,
                delivered: false,
            },
        ];
        let delta = build_delta(
            DeliveryMode::Mirror,
            false,
            changes,
            &missing,
            &[2, 5, 8],
            &[3, 6],
        );
        let puts: Vec<(u64, bool)> = delta
            .puts
            .iter()
            .map(|p| (p.key_hash, p.delivered))
            .collect();
        assert_eq!(puts, vec![(1, true), (3, false), (4, true)]);
        assert_eq!(delta.rehash, vec![(6, 60)]);
        assert_eq!(delta.drops, vec![7, 9], "the failed delete of 8 is retried");
    }

    #[test]
    fn modes_commit_like_the_backflow_side() {
        let changes = || vec![changed(1, Change::Added), changed(2, Change::Updated)];
        let missing = [Missing {
            key_hash: 3,
            delivered: true,
        }];
        let update = build_delta(DeliveryMode::Update, false, changes(), &missing, &[], &[]);
        assert_eq!(
            update
                .puts
                .iter()
                .map(|p| (p.key_hash, p.delivered))
                .collect::<Vec<_>>(),
            vec![(1, false), (2, true)]
        );
        assert!(update.drops.is_empty(), "update keeps delivered entries");
        let insert = build_delta(DeliveryMode::Insert, false, changes(), &missing, &[], &[]);
        assert_eq!(
            insert.puts.len(),
            1,
            "insert keeps the old version of an update"
        );
    }
}
