//! Which classes of change a sync mode delivers (DESIGN §5, issue 10): upsert sends
//! added and updated rows, insert only added, update only updated, mirror added, updated
//! and deleted. Kept apart so the diff, the selection and the commit agree on it.

use backflow_proto::retl::v1::SyncMode;

/// How a row differs from the committed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    Added,
    Updated,
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryMode {
    Upsert,
    Insert,
    Update,
    Mirror,
}

impl DeliveryMode {
    pub const ALL: [DeliveryMode; 4] = [
        DeliveryMode::Upsert,
        DeliveryMode::Insert,
        DeliveryMode::Update,
        DeliveryMode::Mirror,
    ];

    /// `None` for `SYNC_MODE_UNSPECIFIED`.
    pub fn from_sync_mode(mode: SyncMode) -> Option<Self> {
        match mode {
            SyncMode::Unspecified => None,
            SyncMode::Upsert => Some(Self::Upsert),
            SyncMode::Insert => Some(Self::Insert),
            SyncMode::Update => Some(Self::Update),
            SyncMode::Mirror => Some(Self::Mirror),
        }
    }

    pub fn delivers(self, change: Change) -> bool {
        matches!(
            (self, change),
            (Self::Upsert | Self::Insert | Self::Mirror, Change::Added)
                | (Self::Upsert | Self::Update | Self::Mirror, Change::Updated)
                | (Self::Mirror, Change::Deleted)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_deliver_what_the_issue_says() {
        let table = [
            (DeliveryMode::Upsert, [true, true, false]),
            (DeliveryMode::Insert, [true, false, false]),
            (DeliveryMode::Update, [false, true, false]),
            (DeliveryMode::Mirror, [true, true, true]),
        ];
        for (mode, expected) in table {
            let got = [Change::Added, Change::Updated, Change::Deleted].map(|c| mode.delivers(c));
            assert_eq!(got, expected, "{mode:?}");
        }
        assert_eq!(DeliveryMode::from_sync_mode(SyncMode::Unspecified), None);
        assert_eq!(
            DeliveryMode::from_sync_mode(SyncMode::Mirror),
            Some(DeliveryMode::Mirror)
        );
    }
}
