//! The git-sync store behaves the same on SQLite and PostgreSQL: connections are
//! workspace-scoped, every change queues a sync and writes its events atomically, and
//! concurrent sync requests coalesce.

use backflow_git_sync::app::MIGRATIONS;
use backflow_git_sync::settings::Settings;
use backflow_git_sync::store::GitSyncStore;
use backflow_git_sync::GitSyncError;
use backflow_platform::db::Database;
use backflow_platform::outbox::{pending_count, Outbox};
use backflow_platform::testing;
use backflow_proto::gitsync::v1 as pb;

fn settings(branch: &str) -> Settings {
    Settings::from_proto(Some(pb::ConnectionSettings {
        provider: pb::GitProvider::Gitlab as i32,
        protocol: pb::GitProtocol::Https as i32,
        repository_url: "https://gitlab.example.com/acme/dbt.git".into(),
        branch: branch.into(),
        dbt_version: "1.7".into(),
        default_schema: "analytics".into(),
        project_path: String::new(),
        credential_id: "cred-1".into(),
        warehouse_source_id: "wh-1".into(),
        webhook_secret_credential_id: String::new(),
    }))
    .expect("valid settings")
}

async fn contract(url: &str) -> anyhow::Result<()> {
    let db = Database::connect(url, &MIGRATIONS).await?;
    let store = GitSyncStore::new(db.clone(), Outbox::new());

    let (connection, initial) = store
        .create_connection("ws-a", "analytics", &settings("main"))
        .await?;
    assert_eq!(initial.trigger, pb::SyncTrigger::Initial as i32);
    assert_eq!(initial.status, pb::SyncStatus::Queued as i32);
    // created event + sync command
    assert_eq!(pending_count(&db).await?, 2);

    assert!(matches!(
        store
            .create_connection("ws-a", "analytics", &settings("main"))
            .await,
        Err(GitSyncError::AlreadyExists(_))
    ));
    assert!(matches!(
        store.get_connection("ws-b", &connection.id).await,
        Err(GitSyncError::NotFound { .. })
    ));
    assert_eq!(store.list_connections("ws-a").await?.len(), 1);
    assert!(store.list_connections("ws-b").await?.is_empty());

    // a queued run absorbs further requests
    let manual = store
        .trigger_sync("ws-a", &connection.id, pb::SyncTrigger::Manual)
        .await?;
    assert_eq!(manual.id, initial.id);

    let (updated, rerun) = store
        .update_settings("ws-a", &connection.id, &settings("develop"), 1)
        .await?;
    assert_eq!(updated.settings_version, 2);
    assert_eq!(updated.settings.branch, "develop");
    assert_eq!(rerun.trigger, pb::SyncTrigger::SettingsChanged as i32);
    assert!(matches!(
        store
            .update_settings("ws-a", &connection.id, &settings("x"), 1)
            .await,
        Err(GitSyncError::Conflict {
            expected: 1,
            found: 2
        })
    ));

    let runs = store.list_runs("ws-a", &connection.id, 10).await?;
    assert_eq!(runs.len(), 2);
    assert_eq!(store.get_run("ws-a", &initial.id).await?.id, initial.id);
    assert!(store.get_run("ws-b", &initial.id).await.is_err());

    store.delete_connection("ws-a", &connection.id).await?;
    assert!(store.list_connections("ws-a").await?.is_empty());
    assert!(store
        .list_runs("ws-a", &connection.id, 10)
        .await?
        .is_empty());
    // created(2) + updated(2) + deleted(1)
    assert_eq!(pending_count(&db).await?, 5);
    db.close().await;
    Ok(())
}

#[tokio::test]
async fn store_contract_on_sqlite_and_postgres() -> anyhow::Result<()> {
    for url in testing::both_backends("gitsync").await? {
        contract(&url)
            .await
            .map_err(|err| anyhow::anyhow!("{url}: {err:#}"))?;
    }
    Ok(())
}
