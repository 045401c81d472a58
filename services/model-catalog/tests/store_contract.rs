//! The catalog store behaves the same on SQLite and PostgreSQL: the project projection
//! applies each event once and never goes backwards, models are versioned by commit,
//! and everything is workspace-scoped.

use backflow_model_catalog::app::MIGRATIONS;
use backflow_model_catalog::store::{CatalogStore, RetlModelRecord, SourceRecord};
use backflow_model_catalog::CatalogError;
use backflow_platform::db::Database;
use backflow_platform::outbox::{pending_count, Outbox};
use backflow_platform::testing;
use backflow_proto::catalog::v1 as pb;
use backflow_proto::gitsync::v1 as gitsync;

const CONSUMER: &str = "test";

fn event(
    change: gitsync::ConnectionChange,
    version: i64,
    branch: &str,
) -> gitsync::ConnectionChangedEvent {
    gitsync::ConnectionChangedEvent {
        workspace_id: "ws-a".into(),
        change: change as i32,
        connection: Some(gitsync::Connection {
            id: "conn-1".into(),
            workspace_id: "ws-a".into(),
            name: "analytics".into(),
            settings: Some(gitsync::ConnectionSettings {
                repository_url: "git@github.com:acme/dbt.git".into(),
                branch: branch.into(),
                default_schema: "analytics".into(),
                ..Default::default()
            }),
            settings_version: version,
            created_at_unix_ms: 1,
            updated_at_unix_ms: 1,
        }),
    }
}

fn model(unique_id: &str, sql: &str) -> pb::Model {
    pb::Model {
        unique_id: unique_id.into(),
        name: unique_id.rsplit('.').next().unwrap_or(unique_id).into(),
        compiled_sql: sql.into(),
        checksum: format!("sum-{sql}"),
        ..Default::default()
    }
}

async fn projection(store: &CatalogStore) -> anyhow::Result<()> {
    use backflow_model_catalog::store::Applied;
    let created = event(gitsync::ConnectionChange::Created, 1, "main");
    assert_eq!(
        store
            .apply_connection_event(CONSUMER, "e1", &created)
            .await?,
        Applied::Applied
    );
    assert_eq!(
        store
            .apply_connection_event(CONSUMER, "e1", &created)
            .await?,
        Applied::Duplicate
    );
    let updated = event(gitsync::ConnectionChange::Updated, 3, "develop");
    assert_eq!(
        store
            .apply_connection_event(CONSUMER, "e3", &updated)
            .await?,
        Applied::Applied
    );
    let stale = event(gitsync::ConnectionChange::Updated, 2, "stale");
    assert_eq!(
        store.apply_connection_event(CONSUMER, "e2", &stale).await?,
        Applied::Stale
    );
    let project = store.get_project("ws-a", "conn-1").await?;
    assert_eq!(project.branch, "develop");
    assert_eq!(project.settings_version, 3);
    assert_eq!(store.project_change_count("conn-1").await?, 3);
    assert!(store.get_project("ws-b", "conn-1").await.is_err());
    assert_eq!(store.list_projects("ws-a").await?.len(), 1);
    Ok(())
}

async fn models(store: &CatalogStore) -> anyhow::Result<()> {
    store
        .record_snapshot(
            "ws-a",
            "conn-1",
            "c1",
            &[
                model("model.p.a", "select 1"),
                model("model.p.b", "select 2"),
            ],
        )
        .await?;
    store
        .record_snapshot("ws-a", "conn-1", "c2", &[model("model.p.a", "select 10")])
        .await?;
    let (commit, latest) = store.list_models("ws-a", "conn-1", "", "", 100).await?;
    assert_eq!(commit, "c2");
    assert_eq!(latest.len(), 1);
    let (_, first_page) = store.list_models("ws-a", "conn-1", "c1", "", 1).await?;
    assert_eq!(first_page[0].unique_id, "model.p.a");
    let (_, second_page) = store
        .list_models("ws-a", "conn-1", "c1", "model.p.a", 1)
        .await?;
    assert_eq!(second_page[0].unique_id, "model.p.b");
    let (_, done) = store
        .list_models("ws-a", "conn-1", "c1", "model.p.b", 1)
        .await?;
    assert!(done.is_empty());
    assert_eq!(
        store
            .get_model("ws-a", "conn-1", "model.p.a", "")
            .await?
            .compiled_sql,
        "select 10"
    );
    assert_eq!(
        store
            .get_model("ws-a", "conn-1", "model.p.a", "c1")
            .await?
            .compiled_sql,
        "select 1"
    );
    assert!(matches!(
        store.get_model("ws-a", "conn-1", "model.p.b", "").await,
        Err(CatalogError::NotFound { .. })
    ));
    assert!(store
        .record_snapshot("ws-b", "conn-1", "c3", &[])
        .await
        .is_err());
    assert_eq!(store.get_project("ws-a", "conn-1").await?.model_count, 1);
    Ok(())
}

async fn retl_and_sources(store: &CatalogStore) -> anyhow::Result<()> {
    let record = RetlModelRecord {
        id: "r1".into(),
        workspace_id: "ws-a".into(),
        name: "customers".into(),
        connection_id: "conn-1".into(),
        model_unique_id: "model.p.a".into(),
        primary_key: vec!["id".into()],
        created_at_ms: 1,
        source_id: "s1".into(),
        query_mode: Default::default(),
        health: Default::default(),
        commit_sha: "c2".into(),
        relation_name: String::new(),
        updated_at_ms: 1,
    };
    store.create_retl_model(&record).await?;
    assert!(matches!(
        store
            .create_retl_model(&RetlModelRecord {
                id: "r2".into(),
                ..record.clone()
            })
            .await,
        Err(CatalogError::AlreadyExists { .. })
    ));
    assert_eq!(store.get_retl_model("ws-a", "r1").await?, record);
    assert!(store.get_retl_model("ws-b", "r1").await.is_err());
    store.delete_retl_model("ws-a", "r1").await?;
    assert!(store.list_retl_models("ws-a").await?.is_empty());
    assert_eq!(pending_count(store.database()).await?, 2);

    let source = SourceRecord {
        id: "s1".into(),
        workspace_id: "ws-a".into(),
        name: "warehouse".into(),
        kind: pb::WarehouseKind::Postgres as i32,
        settings: [("host".to_string(), "db".to_string())].into(),
        credential_id: "cred".into(),
        created_at_ms: 1,
        backflow_schema: String::new(),
        version: 1,
        updated_at_ms: 1,
        last_test: None,
        run_ledger: false,
    };
    store.create_source(&source).await?;
    // a password in the settings is refused, and nothing is stored
    let with_password = SourceRecord {
        id: "s2".into(),
        name: "leaky".into(),
        settings: [
            ("host".to_string(), "db".to_string()),
            ("Password".to_string(), "hunter2".to_string()),
        ]
        .into(),
        ..source.clone()
    };
    let refused = store.create_source(&with_password).await;
    assert!(
        matches!(&refused, Err(CatalogError::InvalidArgument(message))
            if message.contains("settings.Password") && message.contains("store it in the credentials service")),
        "{refused:?}"
    );
    assert_eq!(store.list_sources("ws-a").await?, vec![source.clone()]);
    assert!(store.list_sources("ws-b").await?.is_empty());
    assert!(matches!(
        store.get_source("ws-b", "s1").await,
        Err(CatalogError::NotFound { .. })
    ));
    sources_change(store, source).await
}

/// Updates are versioned, test results stored, and every change announced; a source
/// a live connection names cannot be deleted.
async fn sources_change(store: &CatalogStore, source: SourceRecord) -> anyhow::Result<()> {
    let before = pending_count(store.database()).await?;
    let updated = SourceRecord {
        name: "primary".into(),
        version: 2,
        updated_at_ms: 2,
        backflow_schema: "backflow".into(),
        ..source.clone()
    };
    store.update_source(&updated).await?;
    assert_eq!(store.get_source("ws-a", "s1").await?, updated);
    // a writer that read version 1 loses
    let late = SourceRecord {
        name: "late".into(),
        version: 2,
        ..source.clone()
    };
    let conflict = store.update_source(&late).await;
    assert!(
        matches!(
            &conflict,
            Err(CatalogError::Conflict {
                expected: 1,
                found: 2,
                ..
            })
        ),
        "{conflict:?}"
    );
    let result = pb::SourceTestResult {
        ok: false,
        problem: pb::SourceProblem::Unreachable as i32,
        message: "cannot reach db:5432: connection refused".into(),
        tested_at_unix_ms: 3,
        server_version: String::new(),
    };
    let tested = store.record_source_test("ws-a", "s1", &result).await?;
    assert_eq!(tested.version, 2);
    assert_eq!(tested.last_test.as_ref(), Some(&result));
    assert_eq!(
        store.get_source("ws-a", "s1").await?.last_test,
        Some(result)
    );
    // the update and the test each wrote one event
    assert_eq!(pending_count(store.database()).await? - before, 2);

    // conn-1 (settings version 3) now names s1
    let mut uses = event(gitsync::ConnectionChange::Updated, 3, "develop");
    if let Some(settings) = uses
        .connection
        .as_mut()
        .and_then(|connection| connection.settings.as_mut())
    {
        settings.warehouse_source_id = "s1".into();
    }
    store
        .apply_connection_event(CONSUMER, "e-source", &uses)
        .await?;
    assert_eq!(store.project_source_id("ws-a", "conn-1").await?, "s1");
    let refused = store.delete_source("ws-a", "s1").await;
    assert!(
        matches!(&refused, Err(CatalogError::FailedPrecondition(message))
            if message == "warehouse source \"primary\" is in use by git connections analytics (conn-1); point them at another source or delete them first"),
        "{refused:?}"
    );
    assert!(store.get_source("ws-a", "s1").await.is_ok());
    Ok(())
}

async fn contract(url: &str) -> anyhow::Result<()> {
    let db = Database::connect(url, &MIGRATIONS).await?;
    let store = CatalogStore::new(db.clone(), Outbox::new());
    projection(&store).await?;
    models(&store).await?;
    retl_and_sources(&store).await?;
    let deleted = event(gitsync::ConnectionChange::Deleted, 3, "develop");
    store
        .apply_connection_event(CONSUMER, "e4", &deleted)
        .await?;
    assert!(store.list_projects("ws-a").await?.is_empty());
    // the connection is gone: the source may go, announced once more
    let before = pending_count(&db).await?;
    store.delete_source("ws-a", "s1").await?;
    assert!(matches!(
        store.get_source("ws-a", "s1").await,
        Err(CatalogError::NotFound { .. })
    ));
    assert_eq!(pending_count(&db).await? - before, 1);
    db.close().await;
    Ok(())
}

#[tokio::test]
async fn store_contract_on_sqlite_and_postgres() -> anyhow::Result<()> {
    for url in testing::both_backends("catalog").await? {
        contract(&url)
            .await
            .map_err(|err| anyhow::anyhow!("{url}: {err:#}"))?;
    }
    Ok(())
}
