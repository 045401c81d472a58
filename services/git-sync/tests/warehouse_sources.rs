//! git-sync learns warehouse sources from the catalog's events, never its database:
//! the projection keeps the newest version (older events are dropped, a redelivery is
//! skipped, a delete sticks), a change of kind or database re-syncs the connections
//! naming the source, and Connect / UpdateSettings refuse a source that is empty, unknown,
//! deleted or another workspace's, after waiting briefly for a just-created one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use backflow_git_sync::app::MIGRATIONS;
use backflow_git_sync::consumers::{handle_source_event, SOURCE_EVENTS};
use backflow_git_sync::grpc::GitSyncGrpc;
use backflow_git_sync::settings::Settings;
use backflow_git_sync::sources::KnownSource;
use backflow_git_sync::store::{GitSyncStore, SourceApplied};
use backflow_git_sync::sync::SyncRunner;
use backflow_platform::bus::{Delivery, Outcome};
use backflow_platform::credentials_client::CredentialsClient;
use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;
use backflow_platform::testing;
use backflow_proto::catalog::v1 as catalog;
use backflow_proto::gitsync::v1 as pb;
use pb::git_sync_service_server::GitSyncService;
use prost::Message;
use std::time::Duration;
use tonic::{Code, Request};

fn settings_proto(source: &str) -> pb::ConnectionSettings {
    pb::ConnectionSettings {
        provider: pb::GitProvider::Github as i32,
        protocol: pb::GitProtocol::Https as i32,
        repository_url: "https://github.com/acme/dbt.git".into(),
        branch: "main".into(),
        dbt_version: "1.7".into(),
        default_schema: "analytics".into(),
        project_path: String::new(),
        credential_id: "cred-1".into(),
        warehouse_source_id: source.into(),
        webhook_secret_credential_id: String::new(),
    }
}

fn source_event(
    workspace: &str,
    id: &str,
    kind: catalog::WarehouseKind,
    database: &str,
    version: i64,
    deleted: bool,
) -> catalog::WarehouseSourceChangedEvent {
    catalog::WarehouseSourceChangedEvent {
        workspace_id: workspace.into(),
        source: Some(catalog::WarehouseSource {
            id: id.into(),
            workspace_id: workspace.into(),
            name: "shop-db".into(),
            kind: kind as i32,
            settings: [("database".to_string(), database.to_string())].into(),
            version,
            ..Default::default()
        }),
        deleted,
    }
}

fn delivery(message_id: &str, payload: Vec<u8>) -> Delivery {
    Delivery {
        message_id: message_id.into(),
        subject: "evt.catalog.source.changed.src-1".into(),
        payload: payload.into(),
        delivered: 1,
        headers: Default::default(),
    }
}

async fn apply(
    store: &GitSyncStore,
    message_id: &str,
    event: &catalog::WarehouseSourceChangedEvent,
) -> anyhow::Result<SourceApplied> {
    let source = KnownSource::from_event(event)?;
    Ok(store
        .apply_source_event(SOURCE_EVENTS, message_id, &source)
        .await?)
}

async fn projection(url: &str) -> anyhow::Result<()> {
    use catalog::WarehouseKind::{Postgres, Snowflake};
    let db = Database::connect(url, &MIGRATIONS).await?;
    let store = GitSyncStore::new(db.clone(), Outbox::new());

    // through the consumer's handler: decoded, recorded, known
    let created = source_event("ws", "src-1", Postgres, "shop", 1, false);
    let outcome = handle_source_event(&store, delivery("e1", created.encode_to_vec())).await;
    assert!(matches!(outcome, Outcome::Done), "{outcome:?}");
    let known = store.known_source("ws", "src-1").await?.expect("known");
    assert_eq!(
        (known.kind, known.database.as_str(), known.version),
        (Postgres as i32, "shop", 1)
    );
    assert_eq!(store.known_source("other-ws", "src-1").await?, None);
    let garbage = handle_source_event(&store, delivery("e-bad", vec![0xff, 0xff])).await;
    assert!(matches!(garbage, Outcome::Reject(_)), "{garbage:?}");
    let mut kindless = created.clone();
    kindless.source.as_mut().unwrap().kind = 0;
    let refused = handle_source_event(&store, delivery("e-kind", kindless.encode_to_vec())).await;
    assert!(matches!(refused, Outcome::Reject(ref m) if m.contains("not a warehouse kind")));

    // a redelivery is skipped
    assert_eq!(
        apply(&store, "e1", &created).await?,
        SourceApplied::AlreadyHandled
    );

    let (connection, initial) = store
        .create_connection(
            "ws",
            "shop",
            &Settings::from_proto(Some(settings_proto("src-1")))?,
        )
        .await?;
    // the initial run is taken, so a re-sync must queue a new one
    store.claim_run("ws", &initial.id).await?.expect("claimed");

    // same kind and database at a new version: nothing to re-sync
    assert_eq!(
        apply(
            &store,
            "e2",
            &source_event("ws", "src-1", Postgres, "shop", 2, false)
        )
        .await?,
        SourceApplied::Recorded { resynced: vec![] }
    );
    assert_eq!(store.list_runs("ws", &connection.id, 10).await?.len(), 1);

    // another adapter: the connection re-syncs (once, however many events say so)
    assert_eq!(
        apply(
            &store,
            "e3",
            &source_event("ws", "src-1", Snowflake, "SHOP", 3, false)
        )
        .await?,
        SourceApplied::Recorded {
            resynced: vec![connection.id.clone()]
        }
    );
    let runs = store.list_runs("ws", &connection.id, 10).await?;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].trigger, pb::SyncTrigger::SettingsChanged as i32);
    assert_eq!(runs[0].status, pb::SyncStatus::Queued as i32);
    assert_eq!(
        apply(
            &store,
            "e4",
            &source_event("ws", "src-1", Snowflake, "SHOP2", 4, false)
        )
        .await?,
        SourceApplied::Recorded {
            resynced: vec![connection.id.clone()]
        }
    );
    assert_eq!(store.list_runs("ws", &connection.id, 10).await?.len(), 2);

    // an older event arriving late is dropped
    assert_eq!(
        apply(
            &store,
            "e-late",
            &source_event("ws", "src-1", Postgres, "shop", 2, false)
        )
        .await?,
        SourceApplied::Stale
    );
    let known = store.known_source("ws", "src-1").await?.expect("known");
    assert_eq!(
        (known.kind, known.database.as_str(), known.version),
        (Snowflake as i32, "SHOP2", 4)
    );

    // a delete sticks, even against an update of the same version
    assert_eq!(
        apply(
            &store,
            "e5",
            &source_event("ws", "src-1", Snowflake, "SHOP2", 4, true)
        )
        .await?,
        SourceApplied::Recorded { resynced: vec![] }
    );
    assert_eq!(store.known_source("ws", "src-1").await?, None);
    assert_eq!(
        apply(
            &store,
            "e6",
            &source_event("ws", "src-1", Snowflake, "SHOP2", 4, false)
        )
        .await?,
        SourceApplied::Stale
    );
    assert_eq!(store.known_source("ws", "src-1").await?, None);
    db.close().await;
    Ok(())
}

#[tokio::test]
async fn the_projection_on_sqlite_and_postgres() -> anyhow::Result<()> {
    for url in testing::both_backends("gitsync_src").await? {
        projection(&url)
            .await
            .map_err(|err| anyhow::anyhow!("{url}: {err:#}"))?;
    }
    Ok(())
}

fn create(name: &str, source: &str) -> Request<pb::CreateConnectionRequest> {
    Request::new(pb::CreateConnectionRequest {
        workspace_id: "ws".into(),
        name: name.into(),
        settings: Some(settings_proto(source)),
    })
}

#[tokio::test]
async fn connect_and_update_refuse_sources_the_catalog_did_not_announce() -> anyhow::Result<()> {
    let db = Database::connect(&testing::fresh_sqlite_url("gitsync_refuse"), &MIGRATIONS).await?;
    let store = GitSyncStore::new(db.clone(), Outbox::new());
    // Nothing listens there: access checks are off, so nothing calls it.
    let credentials = CredentialsClient::new("git_sync", "http://127.0.0.1:9", "svc", None)?;
    let work = std::env::temp_dir().join(format!("backflow-src-{}", backflow_platform::new_id()));
    let runner = SyncRunner::new(store.clone(), credentials, work, Duration::from_secs(2));
    let grpc = GitSyncGrpc::new(store.clone(), runner.clone(), false)
        .with_source_wait(Duration::from_millis(300));

    let empty = grpc.create_connection(create("a", " ")).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(
        empty.message().contains("warehouse_source_id is required"),
        "{}",
        empty.message()
    );

    let unknown = grpc
        .create_connection(create("a", "src-x"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    assert_eq!(
        unknown.message(),
        "warehouse source src-x does not exist in workspace ws: create it first (backflow sources create) and name its id"
    );

    // another workspace's source is no source here
    apply(
        &store,
        "o1",
        &source_event(
            "other",
            "src-o",
            catalog::WarehouseKind::Postgres,
            "db",
            1,
            false,
        ),
    )
    .await?;
    let foreign = grpc
        .create_connection(create("a", "src-o"))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::FailedPrecondition);
    assert!(foreign.message().contains("src-o"), "{}", foreign.message());
    assert!(store.list_connections("ws").await?.is_empty());

    // a source announced while the connect waits is accepted
    let grpc = grpc.with_source_wait(Duration::from_secs(10));
    let announcer = {
        let store = store.clone();
        tokio::spawn(async move {
            // lag the event behind the request, as the catalog's outbox may
            tokio::time::sleep(Duration::from_millis(300)).await;
            apply(
                &store,
                "s1",
                &source_event(
                    "ws",
                    "src-1",
                    catalog::WarehouseKind::Postgres,
                    "shop",
                    1,
                    false,
                ),
            )
            .await
        })
    };
    let created = grpc
        .create_connection(create("shop", "src-1"))
        .await?
        .into_inner()
        .connection
        .expect("connection");
    announcer.await??;

    // updating to an unknown or deleted source is refused; the settings stay
    let grpc = grpc.with_source_wait(Duration::ZERO);
    let update = |source: &str| {
        Request::new(pb::UpdateSettingsRequest {
            workspace_id: "ws".into(),
            connection_id: created.id.clone(),
            settings: Some(settings_proto(source)),
            expected_settings_version: 0,
        })
    };
    let refused = grpc.update_settings(update("src-x")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("src-x"), "{}", refused.message());
    apply(
        &store,
        "s2",
        &source_event(
            "ws",
            "src-1",
            catalog::WarehouseKind::Postgres,
            "shop",
            1,
            true,
        ),
    )
    .await?;
    let deleted = grpc.update_settings(update("src-1")).await.unwrap_err();
    assert_eq!(deleted.code(), Code::FailedPrecondition);
    let stored = store.get_connection("ws", &created.id).await?;
    assert_eq!(stored.settings.warehouse_source_id, "src-1");
    assert_eq!(stored.settings_version, 1);
    db.close().await;
    Ok(())
}
