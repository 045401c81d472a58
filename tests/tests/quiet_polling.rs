//! Issue 7, acceptance 5 (first half) end to end, with git-sync polling every second:
//! a project that fails at head H gets no new run however often the poll looks at H;
//! a new head is tried once; a fixed head syncs. Changing only the webhook secret
//! queues no sync.

use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use backflow_tests::stack::{start_stack_polling, Stack};
use std::time::Duration;

const WORKSPACE: &str = "ws-quiet";
const GIT_TOKEN: &str = "ghp_QuietPollingToken0123456789";
const GOOD_PROJECT: &str = "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n";

async fn runs(stack: &mut Stack, connection_id: &str) -> anyhow::Result<Vec<gitsync::SyncRun>> {
    Ok(stack
        .git_sync
        .list_runs(gitsync::ListRunsRequest {
            workspace_id: WORKSPACE.into(),
            connection_id: connection_id.into(),
            limit: 100,
        })
        .await?
        .into_inner()
        .runs)
}

/// Waits until every run is finished and there are `count` of them; on timeout the
/// error lists the runs last seen (a wrong count and a stuck run look alike otherwise).
async fn settled(
    stack: &Stack,
    connection_id: &str,
    count: usize,
) -> anyhow::Result<Vec<gitsync::SyncRun>> {
    let mut client = stack.git_sync.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let request = gitsync::ListRunsRequest {
            workspace_id: WORKSPACE.into(),
            connection_id: connection_id.into(),
            limit: 100,
        };
        let runs = match client.list_runs(request).await {
            Ok(response) => response.into_inner().runs,
            Err(status) => {
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "timed out waiting for {count} finished runs; last listing failed: {status}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let done = runs.iter().all(|r| {
            r.status == gitsync::SyncStatus::Succeeded as i32
                || r.status == gitsync::SyncStatus::Failed as i32
        });
        if done && runs.len() == count {
            return Ok(runs);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {count} finished runs; runs: {runs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the server has answered `n` more ref listings (poll head checks).
async fn head_checks(server: &GitHttpServer, n: usize) -> anyhow::Result<()> {
    let count = || {
        server
            .requests()
            .iter()
            .filter(|r| r.starts_with("GET ") && r.contains("/info/refs"))
            .count()
    };
    let target = count() + n;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count() < target {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the poller stopped checking"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_head_is_not_polled_again_and_a_webhook_secret_does_not_resync(
) -> anyhow::Result<()> {
    let root = std::env::temp_dir().join(format!("backflow-quiet-{}", backflow_platform::new_id()));
    let repo = BareRepo::create_with(
        &root,
        "shop",
        &[
            ("dbt_project.yml", "name: [unclosed\n"),
            ("models/a.sql", "select 1 as id"),
        ],
    );
    let server = GitHttpServer::start(&root, GIT_TOKEN);
    let mut stack = start_stack_polling(WORKSPACE, 1).await?;
    let token_id = stack
        .create_secret("git token", credentials::SecretKind::GitToken, GIT_TOKEN)
        .await?;
    let webhook_id = stack
        .create_secret(
            "webhook",
            credentials::SecretKind::WebhookSecret,
            "whsec-QuietPolling0123",
        )
        .await?;
    let source_id = stack.create_source("warehouse").await?;
    let settings = gitsync::ConnectionSettings {
        provider: gitsync::GitProvider::Github as i32,
        protocol: gitsync::GitProtocol::Https as i32,
        repository_url: server.url("shop"),
        branch: "main".into(),
        dbt_version: "1.7".into(),
        default_schema: "analytics".into(),
        project_path: String::new(),
        credential_id: token_id,
        warehouse_source_id: source_id,
        webhook_secret_credential_id: String::new(),
    };
    let connection = stack
        .git_sync
        .create_connection(gitsync::CreateConnectionRequest {
            workspace_id: WORKSPACE.into(),
            name: "shop".into(),
            settings: Some(settings.clone()),
        })
        .await?
        .into_inner()
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))?;
    let id = connection.id.clone();

    // the initial run fails at H; polls look at H again and again: no new run
    let first = settled(&stack, &id, 1).await?;
    assert_eq!(first[0].status, gitsync::SyncStatus::Failed as i32);
    assert_eq!(first[0].commit_sha, repo.head("main"));
    head_checks(&server, 3).await?;
    assert_eq!(
        runs(&mut stack, &id).await?.len(),
        1,
        "no FAILED run per poll"
    );

    // a new (still broken) head is tried once, then quiet again
    let second = repo.commit(&[("models/b.sql", "select 2 as id")], "still broken");
    let after = settled(&stack, &id, 2).await?;
    assert_eq!(after[0].trigger, gitsync::SyncTrigger::Poll as i32);
    assert_eq!(
        (after[0].status, after[0].commit_sha.as_str()),
        (gitsync::SyncStatus::Failed as i32, second.as_str())
    );
    head_checks(&server, 3).await?;
    assert_eq!(runs(&mut stack, &id).await?.len(), 2);

    // only the webhook secret changes: saved, no sync queued
    let mut with_secret = settings.clone();
    with_secret.webhook_secret_credential_id = webhook_id;
    let updated = stack
        .git_sync
        .update_settings(gitsync::UpdateSettingsRequest {
            workspace_id: WORKSPACE.into(),
            connection_id: id.clone(),
            settings: Some(with_secret),
            expected_settings_version: 1,
        })
        .await?
        .into_inner();
    assert!(updated.run.is_none(), "{updated:?}");
    assert_eq!(updated.connection.map(|c| c.settings_version), Some(2));
    head_checks(&server, 2).await?;
    assert_eq!(runs(&mut stack, &id).await?.len(), 2);

    // fixed: the poll finds the new head and it syncs
    let fixed = repo.commit(&[("dbt_project.yml", GOOD_PROJECT)], "fix");
    let after = settled(&stack, &id, 3).await?;
    assert_eq!(
        (after[0].status, after[0].commit_sha.as_str()),
        (gitsync::SyncStatus::Succeeded as i32, fixed.as_str())
    );
    head_checks(&server, 3).await?;
    assert_eq!(
        runs(&mut stack, &id).await?.len(),
        3,
        "synced heads are not re-run"
    );

    stack.stop().await;
    drop(server);
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}
