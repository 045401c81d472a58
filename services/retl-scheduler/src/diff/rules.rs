//! What the committed state holds for one record after a run, by its class, the mode and
//! how its delivery ended. Both diff strategies commit through these rules (the
//! Backflow-side [`super::commit`] over its sorted run, the warehouse-side
//! `warehouse_diff::delta` as statements), so they cannot drift apart.
//!
//! - added: delivered → put with DELIVERED; failed → absent (added again next run); given up
//!   → put observed (a mirror never deletes it); a mode that does not deliver additions
//!   (update) → put observed, so its later changes are updates;
//! - updated: delivered → new row hash, DELIVERED; given up → new row hash, flag kept;
//!   failed, or a mode that does not deliver updates (insert) → the old entry is kept;
//! - missing from the extract: mirror drops delivered entries it deleted (a failed delete
//!   keeps the entry, so it is retried; a given-up one is dropped); other modes keep
//!   delivered entries; entries only observed are dropped;
//! - unchanged and rejected (NULL or duplicate key): the previous entry, if any, is kept.

use super::mode::{Change, DeliveryMode};

/// How the delivery of one record the mode sent ended. Records refused by the mapping
/// count as [`Settled::Failed`] (kept out of the state, retried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Delivered,
    Failed,
    GivenUp,
}

/// What becomes of a record's state entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The previous entry (or none) stays as it is.
    Keep,
    /// The entry is removed.
    Drop,
    /// The entry becomes the new row hash with this DELIVERED flag.
    Put { delivered: bool },
    /// The entry takes the new row hash and keeps its DELIVERED flag.
    PutKeepFlag,
}

/// An addition (key not in the previous state, not rejected).
pub fn added(mode: DeliveryMode, settled: Settled) -> Next {
    if !mode.delivers(Change::Added) {
        return Next::Put { delivered: false };
    }
    match settled {
        Settled::Delivered => Next::Put { delivered: true },
        Settled::Failed => Next::Drop,
        Settled::GivenUp => Next::Put { delivered: false },
    }
}

/// An update (key in the previous state with another row hash, not rejected).
pub fn updated(mode: DeliveryMode, settled: Settled) -> Next {
    if !mode.delivers(Change::Updated) {
        return Next::Keep;
    }
    match settled {
        Settled::Delivered => Next::Put { delivered: true },
        Settled::Failed => Next::Keep,
        Settled::GivenUp => Next::PutKeepFlag,
    }
}

/// A previous entry whose key is not in the extract. `settled` is the delete's outcome
/// (mirror only; ignored otherwise).
pub fn missing(mode: DeliveryMode, delivered: bool, settled: Settled) -> Next {
    if !delivered {
        return Next::Drop;
    }
    if mode != DeliveryMode::Mirror {
        return Next::Keep;
    }
    match settled {
        Settled::Failed => Next::Keep,
        Settled::Delivered | Settled::GivenUp => Next::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_mode_observes_additions_and_insert_mode_keeps_old_versions() {
        assert_eq!(
            added(DeliveryMode::Update, Settled::Delivered),
            Next::Put { delivered: false }
        );
        assert_eq!(
            updated(DeliveryMode::Insert, Settled::Delivered),
            Next::Keep
        );
        assert_eq!(added(DeliveryMode::Upsert, Settled::Failed), Next::Drop);
        assert_eq!(
            updated(DeliveryMode::Mirror, Settled::GivenUp),
            Next::PutKeepFlag
        );
        assert_eq!(
            missing(DeliveryMode::Upsert, true, Settled::Delivered),
            Next::Keep
        );
        assert_eq!(
            missing(DeliveryMode::Mirror, true, Settled::Failed),
            Next::Keep
        );
        assert_eq!(
            missing(DeliveryMode::Mirror, true, Settled::GivenUp),
            Next::Drop
        );
        assert_eq!(
            missing(DeliveryMode::Mirror, false, Settled::Failed),
            Next::Drop
        );
    }
}
