//! The git-sync store behaves the same on SQLite and PostgreSQL: connections are
//! workspace-scoped, every change queues a sync and writes its events atomically, and
//! concurrent sync requests coalesce.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

use backflow_git_sync::app::MIGRATIONS;
use backflow_git_sync::retry;
use backflow_git_sync::settings::Settings;
use backflow_git_sync::store::{GitSyncStore, RunFailure};
use backflow_git_sync::GitSyncError;
use backflow_platform::db::Database;
use backflow_platform::lease::LeasePolicy;
use backflow_platform::outbox::{pending_count, Outbox};
use backflow_platform::testing;
use backflow_proto::gitsync::v1 as pb;
use std::time::Duration;

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
    let rerun = rerun.ok_or_else(|| anyhow::anyhow!("a branch change re-syncs"))?;
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
    // no connection named: the workspace's runs, and only its own
    assert_eq!(store.list_runs("ws-a", "", 10).await?, runs);
    assert!(store.list_runs("ws-b", "", 10).await?.is_empty());
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

/// Issue 7.4: a run whose lease lapsed is failed as interrupted and queued again, by
/// exactly one reaper; its late result is dropped. Issue 7.6: failures are remembered
/// for the poller, a success forgets them, a webhook-secret change queues nothing.
async fn leases_and_failures(url: &str) -> anyhow::Result<()> {
    let db = Database::connect(url, &MIGRATIONS).await?;
    let policy = LeasePolicy::from_ttl(Duration::from_millis(300))?;
    let store = GitSyncStore::new(db.clone(), Outbox::new()).with_run_lease(policy);
    let other_replica = GitSyncStore::new(db.clone(), Outbox::new()).with_run_lease(policy);
    let (connection, initial) = store
        .create_connection("ws-a", "analytics", &settings("main"))
        .await?;
    let (run, _) = store
        .claim_run("ws-a", &initial.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("claimed"))?;
    assert!(other_replica
        .claim_run("ws-a", &initial.id)
        .await?
        .is_none());
    // the lease is live: nobody reaps it
    assert!(!other_replica.reap_run(&run.id).await?);

    // the worker dies (no renewals): one replica reaps it
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while other_replica.run_leases().lapsed(10).await?.is_empty() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "lease never lapsed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(other_replica.reap_run(&run.id).await?);
    assert!(!store.reap_run(&run.id).await?, "reaped once");
    let reaped = store.get_run("ws-a", &run.id).await?;
    assert_eq!(reaped.status, pb::SyncStatus::Failed as i32);
    assert_eq!(reaped.error, backflow_platform::lease::INTERRUPTED);
    let runs = store.list_runs("ws-a", &connection.id, 10).await?;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].trigger, pb::SyncTrigger::Retry as i32);
    assert_eq!(runs[0].status, pb::SyncStatus::Queued as i32);
    // the dead worker's late outcome changes nothing
    let failure = RunFailure {
        message: "late".into(),
        commit_sha: "c0".into(),
        transient: false,
        credential_version: "v1".into(),
    };
    assert!(!store.fail_run(&run, &failure, 1).await?);
    assert_eq!(store.get_run("ws-a", &run.id).await?.error, reaped.error);

    // the retry fails for good at c1: remembered with the commit tried
    let (retry, _) = store
        .claim_run("ws-a", &runs[0].id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("claimed retry"))?;
    let failure = RunFailure {
        message: "models/a.sql: boom".into(),
        commit_sha: "c1".into(),
        transient: false,
        credential_version: "v1".into(),
    };
    assert!(store.fail_run(&retry, &failure, 5).await?);
    let failed = store.get_run("ws-a", &retry.id).await?;
    assert_eq!(
        (failed.commit_sha.as_str(), failed.error.as_str()),
        ("c1", "models/a.sql: boom")
    );
    let target = &store.poll_targets().await?[0];
    assert_eq!(target.state.failed_commit, "c1");
    assert!(!target.state.failure_transient);
    assert_eq!(
        retry::decide(
            &target.state,
            &target.last_synced_commit,
            "c1",
            "v1",
            backflow_platform::now_unix_ms()
        ),
        retry::PollAction::Quiet
    );

    // only the webhook secret changes: no run, failure memory kept
    let mut with_secret = settings("main");
    with_secret.webhook_secret_credential_id = "whsec-1".into();
    let (_, none) = store
        .update_settings("ws-a", &connection.id, &with_secret, 0)
        .await?;
    assert!(none.is_none(), "a webhook secret alone does not re-sync");
    assert_eq!(store.list_runs("ws-a", &connection.id, 10).await?.len(), 2);
    assert_eq!(store.poll_targets().await?[0].state.failed_commit, "c1");
    // a real change forgets it
    let (_, rerun) = store
        .update_settings("ws-a", &connection.id, &settings("develop"), 0)
        .await?;
    assert!(rerun.is_some());
    assert_eq!(
        store.poll_targets().await?[0].state,
        retry::PollState::default()
    );
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

#[tokio::test]
async fn leases_and_failures_on_postgres() -> anyhow::Result<()> {
    leases_and_failures(&testing::fresh_postgres_url("gitsync_lease").await?).await
}

#[tokio::test]
async fn leases_and_failures_on_sqlite() -> anyhow::Result<()> {
    leases_and_failures(&testing::fresh_sqlite_url("gitsync_lease")).await
}
