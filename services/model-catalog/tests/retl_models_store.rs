//! Reverse ETL models in the store, on SQLite and PostgreSQL: they follow their dbt
//! model across snapshots (broken when it is removed, repaired by a later commit, each
//! change announced through the outbox), and the in-use guard refuses updates and
//! deletes while an enabled sync uses them — also under concurrent deletes racing
//! enabling events (issue 9, acceptance 4 and 5).

use backflow_model_catalog::app::MIGRATIONS;
use backflow_model_catalog::retl::query::QueryMode;
use backflow_model_catalog::store::{
    CatalogStore, RetlHealth, RetlModelChange, RetlModelRecord, UsageApplied,
};
use backflow_model_catalog::CatalogError;
use backflow_platform::db::Database;
use backflow_platform::outbox::{pending_count, Outbox};
use backflow_platform::testing;
use backflow_proto::catalog::v1 as pb;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_proto::retl::v1 as retl;
use prost::Message;

const WS: &str = "ws-retl";
const CONN: &str = "conn-retl";

async fn project(store: &CatalogStore) -> anyhow::Result<()> {
    let event = gitsync::ConnectionChangedEvent {
        workspace_id: WS.into(),
        change: gitsync::ConnectionChange::Created as i32,
        connection: Some(gitsync::Connection {
            id: CONN.into(),
            workspace_id: WS.into(),
            name: "shop".into(),
            settings: Some(gitsync::ConnectionSettings {
                repository_url: "https://git.example/shop.git".into(),
                branch: "main".into(),
                default_schema: "analytics".into(),
                ..Default::default()
            }),
            settings_version: 1,
            created_at_unix_ms: 1,
            updated_at_unix_ms: 1,
        }),
    };
    store
        .apply_connection_event("test", "conn-created", &event)
        .await?;
    Ok(())
}

fn customers(commit: &str, sql: &str) -> pb::Model {
    pb::Model {
        unique_id: "model.shop.customers".into(),
        connection_id: CONN.into(),
        commit_sha: commit.into(),
        name: "customers".into(),
        database: "warehouse".into(),
        schema: "analytics".into(),
        alias: "customers".into(),
        relation_name: "\"warehouse\".\"analytics\".\"customers\"".into(),
        materialized: "table".into(),
        compiled_sql: sql.into(),
        checksum: format!("sum-{sql}"),
        columns: vec![pb::Column {
            name: "id".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn retl_model(id: &str, name: &str) -> RetlModelRecord {
    RetlModelRecord {
        id: id.into(),
        workspace_id: WS.into(),
        name: name.into(),
        connection_id: CONN.into(),
        model_unique_id: "model.shop.customers".into(),
        primary_key: vec!["id".into()],
        created_at_ms: 1,
        source_id: "src-1".into(),
        query_mode: QueryMode::Relation,
        health: RetlHealth::Ok,
        commit_sha: "c1".into(),
        relation_name: "\"warehouse\".\"analytics\".\"customers\"".into(),
        updated_at_ms: 1,
    }
}

fn sync_event(
    sync_id: &str,
    model_id: &str,
    enabled: bool,
    version: i64,
) -> retl::SyncChangedEvent {
    retl::SyncChangedEvent {
        workspace_id: WS.into(),
        sync_id: sync_id.into(),
        retl_model_id: model_id.into(),
        enabled,
        deleted: false,
        used_columns: vec!["email".into(), "id".into()],
        version,
        sync_name: format!("sync {sync_id}"),
        ..Default::default()
    }
}

/// The newest RetlModelChanged event in the outbox for `id`.
async fn last_announcement(db: &Database, id: &str) -> anyhow::Result<pb::RetlModelChangedEvent> {
    let (payload,): (Vec<u8>,) = sqlx::query_as(
        "SELECT payload FROM platform_outbox WHERE subject = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(backflow_proto::subjects::RETL_MODEL_CHANGED.for_id(id))
    .fetch_one(db.pool())
    .await?;
    Ok(pb::RetlModelChangedEvent::decode(payload.as_slice())?)
}

async fn following(store: &CatalogStore, db: &Database) -> anyhow::Result<()> {
    store
        .record_snapshot(WS, CONN, "c1", &[customers("c1", "select 1 as id")])
        .await?;
    store
        .create_retl_model(&retl_model("r-follow", "follow"))
        .await?;
    let before = pending_count(db).await?;

    // a commit that keeps the model moves it along, quietly
    store
        .record_snapshot(WS, CONN, "c2", &[customers("c2", "select 1 as id")])
        .await?;
    let record = store.get_retl_model(WS, "r-follow").await?;
    assert_eq!(record.commit_sha, "c2");
    assert_eq!(record.health, RetlHealth::Ok);
    assert_eq!(pending_count(db).await?, before);

    // a commit that removes it breaks it, with the reason and the commit, announced
    store.record_snapshot(WS, CONN, "c3", &[]).await?;
    let record = store.get_retl_model(WS, "r-follow").await?;
    assert_eq!(
        record.health,
        RetlHealth::Broken {
            reason: "dbt model model.shop.customers was removed or disabled".into(),
            at_commit: "c3".into()
        }
    );
    assert_eq!(
        record.commit_sha, "c2",
        "it still follows the last good commit"
    );
    let event = last_announcement(db, "r-follow").await?;
    let model = event.model.unwrap_or_default();
    assert_eq!(model.status, pb::RetlModelStatus::Broken as i32);
    assert_eq!(model.broken_at_commit, "c3");
    assert_eq!(pending_count(db).await?, before + 1);

    // still broken the same way at the next commit: nothing new to say
    store.record_snapshot(WS, CONN, "c4", &[]).await?;
    let record = store.get_retl_model(WS, "r-follow").await?;
    assert!(matches!(&record.health, RetlHealth::Broken { at_commit, .. } if at_commit == "c3"));
    assert_eq!(pending_count(db).await?, before + 1);

    // a key column dropped from the YAML breaks it for another reason
    let mut keyless = customers("c5", "select 1 as id");
    keyless.columns[0].name = "customer_id".into();
    store.record_snapshot(WS, CONN, "c5", &[keyless]).await?;
    let record = store.get_retl_model(WS, "r-follow").await?;
    assert!(
        matches!(&record.health, RetlHealth::Broken { reason, at_commit } if at_commit == "c5" && reason.starts_with("primary key column \"id\"")),
        "{record:?}"
    );

    // a repairing commit clears it, announced
    store
        .record_snapshot(WS, CONN, "c6", &[customers("c6", "select 2 as id")])
        .await?;
    let record = store.get_retl_model(WS, "r-follow").await?;
    assert_eq!(record.health, RetlHealth::Ok);
    assert_eq!(record.commit_sha, "c6");
    let event = last_announcement(db, "r-follow").await?;
    assert_eq!(
        event.model.unwrap_or_default().status,
        pb::RetlModelStatus::Ok as i32
    );
    assert_eq!(pending_count(db).await?, before + 3);
    Ok(())
}

async fn guard(store: &CatalogStore) -> anyhow::Result<()> {
    store
        .create_retl_model(&retl_model("r-guard", "guarded"))
        .await?;
    let enabled = sync_event("sync-1", "r-guard", true, 2);
    assert_eq!(
        store.apply_sync_changed("test", "m1", &enabled).await?,
        UsageApplied::Applied
    );
    assert_eq!(
        store.apply_sync_changed("test", "m1", &enabled).await?,
        UsageApplied::Duplicate
    );
    // an older event arriving late is dropped
    assert_eq!(
        store
            .apply_sync_changed("test", "m0", &sync_event("sync-1", "r-guard", false, 1))
            .await?,
        UsageApplied::Stale
    );
    assert_eq!(
        store.syncs_using(WS, "r-guard").await?,
        vec![("sync-1".to_string(), "sync sync-1".to_string())]
    );
    let refused = store.delete_retl_model(WS, "r-guard").await;
    assert!(
        matches!(&refused, Err(CatalogError::FailedPrecondition(m)) if m.contains("sync sync-1 (sync-1)") && m.contains("deleted")),
        "{refused:?}"
    );
    let change = RetlModelChange {
        name: Some("renamed".into()),
        ..Default::default()
    };
    let refused = store.update_retl_model(WS, "r-guard", &change).await;
    assert!(
        matches!(&refused, Err(CatalogError::FailedPrecondition(m)) if m.contains("sync-1") && m.contains("changed")),
        "{refused:?}"
    );
    assert_eq!(store.get_retl_model(WS, "r-guard").await?.name, "guarded");

    // paused: the model may change and go
    store
        .apply_sync_changed("test", "m2", &sync_event("sync-1", "r-guard", false, 3))
        .await?;
    assert!(store.syncs_using(WS, "r-guard").await?.is_empty());
    let updated = store.update_retl_model(WS, "r-guard", &change).await?;
    assert_eq!(updated.name, "renamed");
    store.delete_retl_model(WS, "r-guard").await?;
    // an enabling event for a model that is gone records no use
    assert_eq!(
        store
            .apply_sync_changed("test", "m3", &sync_event("sync-1", "r-guard", true, 4))
            .await?,
        UsageApplied::ModelMissing
    );
    assert_eq!(store.orphaned_enabled_usages().await?, 0);
    Ok(())
}

/// Many deletes racing enabling events for the same models: each pair ends either
/// with the delete refused (the event came first) or the event finding the model gone
/// — never a deleted model with an enabled sync. Without the guard's row lock in both
/// transactions, the delete's check and the event's insert interleave and this fails.
async fn concurrent_guard(store: &CatalogStore) -> anyhow::Result<()> {
    const PAIRS: usize = 40;
    for i in 0..PAIRS {
        store
            .create_retl_model(&retl_model(&format!("race-{i}"), &format!("race {i}")))
            .await?;
    }
    let mut tasks = Vec::new();
    for i in 0..PAIRS {
        let (deleting, enabling) = (store.clone(), store.clone());
        let id = format!("race-{i}");
        let event = sync_event(&format!("race-sync-{i}"), &id, true, 1);
        let delete = tokio::spawn(async move { deleting.delete_retl_model(WS, &id).await });
        let enable = tokio::spawn(async move {
            enabling
                .apply_sync_changed("test", &format!("race-msg-{i}"), &event)
                .await
        });
        tasks.push((delete, enable));
    }
    let (mut deleted, mut refused) = (0, 0);
    for (delete, enable) in tasks {
        match (delete.await?, enable.await??) {
            (Ok(()), UsageApplied::ModelMissing) => deleted += 1,
            (Err(CatalogError::FailedPrecondition(_)), UsageApplied::Applied) => refused += 1,
            (delete, enable) => {
                anyhow::bail!("raced past the guard: delete {delete:?}, event {enable:?}")
            }
        }
    }
    assert_eq!(deleted + refused, PAIRS);
    assert_eq!(store.orphaned_enabled_usages().await?, 0);
    Ok(())
}

async fn contract(url: &str) -> anyhow::Result<()> {
    let db = Database::connect(url, &MIGRATIONS).await?;
    let store = CatalogStore::new(db.clone(), Outbox::new());
    project(&store).await?;
    following(&store, &db).await?;
    guard(&store).await?;
    concurrent_guard(&store).await?;
    db.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retl_models_follow_and_guard_on_sqlite_and_postgres() -> anyhow::Result<()> {
    for url in testing::both_backends("catalog-retl").await? {
        contract(&url)
            .await
            .map_err(|err| anyhow::anyhow!("{url}: {err:#}"))?;
    }
    Ok(())
}
