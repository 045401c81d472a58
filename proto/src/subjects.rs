//! NATS subjects, each declared once beside the payload it carries.
//!
//! A [`Subject`] is a family `<prefix>.<id>` typed by its protobuf payload, so a producer
//! cannot put the wrong message on a subject and a consumer's filter (`<prefix>.>`) comes
//! from the same declaration as the producer's subject. Streams (one per producer, see
//! `backflow_platform::bus::streams`) cover `evt.<service>.>` and `cmd.<service>.>`.

use std::marker::PhantomData;

/// A subject family `<prefix>.<id>` whose messages are `M`.
pub struct Subject<M> {
    prefix: &'static str,
    filter: &'static str,
    _payload: PhantomData<fn() -> M>,
}

impl<M> Subject<M> {
    /// `filter` must be `prefix` followed by `.>`; checked in this module's tests.
    const fn new(prefix: &'static str, filter: &'static str) -> Self {
        Self {
            prefix,
            filter,
            _payload: PhantomData,
        }
    }

    /// The subject for one entity, e.g. `evt.gitsync.snapshot.ready.<connection>`.
    pub fn for_id(&self, id: impl std::fmt::Display) -> String {
        format!("{}.{id}", self.prefix)
    }

    /// The consumer filter matching every entity, e.g. `evt.gitsync.snapshot.ready.>`.
    pub const fn all(&self) -> &'static str {
        self.filter
    }

    pub const fn prefix(&self) -> &'static str {
        self.prefix
    }
}

macro_rules! subjects {
    ($($(#[$doc:meta])* $name:ident: $payload:ty = $prefix:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $name: Subject<$payload> = Subject::new($prefix, concat!($prefix, ".>"));
        )*

        #[cfg(test)]
        const ALL_PREFIXES: &[&str] = &[$($prefix),*];
    };
}

use crate::{credentials, dbtcloud, gitsync, retl};

subjects! {
    /// A secret got a new version (`evt.credentials.secret.rotated.<secret>`).
    SECRET_ROTATED: credentials::v1::SecretRotatedEvent = "evt.credentials.secret.rotated";
    /// A Git connection was created, updated or deleted
    /// (`evt.gitsync.connection.<created|updated|deleted>.<connection>`): use
    /// [`connection_changed`] for the subject.
    CONNECTION_CHANGED: gitsync::v1::ConnectionChangedEvent = "evt.gitsync.connection";
    /// A model sync produced a snapshot (`evt.gitsync.snapshot.ready.<connection>`).
    SNAPSHOT_READY: gitsync::v1::SnapshotReadyEvent = "evt.gitsync.snapshot.ready";
    /// A model sync failed (`evt.gitsync.sync.failed.<connection>`).
    SYNC_FAILED: gitsync::v1::SyncFailedEvent = "evt.gitsync.sync.failed";
    /// Work: sync a connection (`cmd.gitsync.sync.<connection>`).
    SYNC_CONNECTION: gitsync::v1::SyncCommand = "cmd.gitsync.sync";
    /// A Reverse ETL model changed (`evt.catalog.model.changed.<retl model>`).
    RETL_MODEL_CHANGED: crate::catalog::v1::RetlModelChangedEvent = "evt.catalog.model.changed";
    /// A warehouse source was created, updated or deleted (`evt.catalog.source.changed.<source>`).
    SOURCE_CHANGED: crate::catalog::v1::WarehouseSourceChangedEvent = "evt.catalog.source.changed";
    /// A sync was created, changed or deleted: the model and columns it uses
    /// (`evt.retl.sync.changed.<sync>`).
    SYNC_CHANGED: retl::v1::SyncChangedEvent = "evt.retl.sync.changed";
    /// A dbt Cloud run completed successfully (`evt.dbt.run.completed.<account>`).
    DBT_RUN_COMPLETED: dbtcloud::v1::RunCompletedEvent = "evt.dbt.run.completed";
    /// Work: run one Reverse ETL sync (`cmd.retl.run_sync.<sync>`).
    RUN_SYNC: retl::v1::RunSyncCommand = "cmd.retl.run_sync";
    /// A Reverse ETL run ended, any terminal status (`evt.retl.run.finished.<sync>`).
    RUN_FINISHED: retl::v1::RunFinishedEvent = "evt.retl.run.finished";
}

/// `evt.gitsync.connection.<verb>.<connection>`: the verb is part of the subject so a
/// consumer could filter on it; every verb shares [`CONNECTION_CHANGED`]'s payload.
pub fn connection_changed(verb: &str, connection_id: &str) -> String {
    CONNECTION_CHANGED.for_id(format!("{verb}.{connection_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_naming_rule_and_filters_match_prefixes() {
        for prefix in ALL_PREFIXES {
            let parts: Vec<&str> = prefix.split('.').collect();
            assert!(matches!(parts[0], "evt" | "cmd"), "{prefix}");
            assert!(parts.len() >= 3, "{prefix}");
        }
        assert_eq!(SNAPSHOT_READY.for_id("c1"), "evt.gitsync.snapshot.ready.c1");
        assert_eq!(SNAPSHOT_READY.all(), "evt.gitsync.snapshot.ready.>");
        assert_eq!(
            connection_changed("created", "c1"),
            "evt.gitsync.connection.created.c1"
        );
        assert_eq!(CONNECTION_CHANGED.all(), "evt.gitsync.connection.>");
    }
}
