//! Issue 7, acceptance 4 (and build point 5): on ONE connection, across runs, the
//! run's error list follows each change — a file that becomes too big, a new symlink
//! out of the checkout, a fixed file, a removed symlink — with repository-relative
//! paths (the project lives under `dbt/`) and no message naming the server's work dir.
//! A broken project fails the run with the commit it tried, and the catalog's project
//! shows status, last run, last error and last attempted commit throughout. Deleting
//! the connection removes its work dir (issue 7.7).

use backflow_proto::catalog::v1 as catalog;
use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use backflow_tests::eventually;
use backflow_tests::stack::{start_stack, Stack};
use std::time::Duration;

const WORKSPACE: &str = "ws-errors";
const GIT_TOKEN: &str = "ghp_ErrorsStayTrueToken0123456789";

const PROJECT: &[(&str, &str)] = &[
    (
        "dbt/dbt_project.yml",
        "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n",
    ),
    ("dbt/models/customers.sql", "select 1 as id"),
    ("dbt/models/big.sql", "select 2 as id"),
    ("README.md", "not part of the dbt project\n"),
];

/// Triggers a sync and waits for that run to finish.
async fn sync(stack: &mut Stack, connection_id: &str) -> anyhow::Result<gitsync::SyncRun> {
    let run = stack
        .git_sync
        .trigger_sync(gitsync::TriggerSyncRequest {
            workspace_id: WORKSPACE.into(),
            connection_id: connection_id.into(),
        })
        .await?
        .into_inner()
        .run
        .ok_or_else(|| anyhow::anyhow!("no run"))?;
    finished(stack, &run.id).await
}

async fn finished(stack: &Stack, run_id: &str) -> anyhow::Result<gitsync::SyncRun> {
    let client = stack.git_sync.clone();
    eventually(Duration::from_secs(120), "the run to finish", || {
        let mut client = client.clone();
        let request = gitsync::GetRunRequest {
            workspace_id: WORKSPACE.into(),
            run_id: run_id.into(),
        };
        async move {
            let run = client.get_run(request).await.ok()?.into_inner().run?;
            (run.status == gitsync::SyncStatus::Succeeded as i32
                || run.status == gitsync::SyncStatus::Failed as i32)
                .then_some(run)
        }
    })
    .await
}

/// Waits until the catalog's project reflects `run_id`.
async fn project_after(
    stack: &Stack,
    connection_id: &str,
    run_id: &str,
) -> anyhow::Result<catalog::Project> {
    let client = stack.catalog.clone();
    eventually(Duration::from_secs(120), "the project status", || {
        let mut client = client.clone();
        let request = catalog::GetProjectRequest {
            workspace_id: WORKSPACE.into(),
            connection_id: connection_id.into(),
        };
        let run_id = run_id.to_string();
        async move {
            let project = client
                .get_project(request)
                .await
                .ok()?
                .into_inner()
                .project?;
            (project.last_run_id == run_id).then_some(project)
        }
    })
    .await
}

/// The run's errors, sorted, each checked for server paths.
fn errors_of(run: &gitsync::SyncRun, forbidden: &[String]) -> Vec<String> {
    let mut errors = run.node_errors.clone();
    errors.push(run.error.clone());
    for message in &errors {
        for path in forbidden {
            assert!(!message.contains(path.as_str()), "{message:?} names {path}");
        }
    }
    let mut errors = run.node_errors.clone();
    errors.sort();
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_list_follows_every_change_on_one_connection() -> anyhow::Result<()> {
    let root =
        std::env::temp_dir().join(format!("backflow-errors-{}", backflow_platform::new_id()));
    let repo = BareRepo::create_with(&root, "shop", PROJECT);
    let server = GitHttpServer::start(&root, GIT_TOKEN);
    let mut stack = start_stack(WORKSPACE).await?;
    let forbidden = vec![
        stack.credentials_db_dir.display().to_string(),
        std::env::temp_dir().display().to_string(),
        "/work".to_string(),
    ];
    let token_id = stack
        .create_secret("git token", credentials::SecretKind::GitToken, GIT_TOKEN)
        .await?;
    let source_id = stack.create_source("warehouse").await?;
    let created = stack
        .git_sync
        .create_connection(gitsync::CreateConnectionRequest {
            workspace_id: WORKSPACE.into(),
            name: "shop".into(),
            settings: Some(gitsync::ConnectionSettings {
                provider: gitsync::GitProvider::Github as i32,
                protocol: gitsync::GitProtocol::Https as i32,
                repository_url: server.url("shop"),
                branch: "main".into(),
                dbt_version: "1.7".into(),
                default_schema: "analytics".into(),
                project_path: "dbt".into(),
                credential_id: token_id,
                warehouse_source_id: source_id,
                webhook_secret_credential_id: String::new(),
            }),
        })
        .await?
        .into_inner();
    let connection_id = created
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))?
        .id;
    let initial = created
        .initial_run
        .ok_or_else(|| anyhow::anyhow!("no initial run"))?;

    // 0. clean project: no errors, status ok
    let run = finished(&stack, &initial.id).await?;
    assert_eq!(run.status, gitsync::SyncStatus::Succeeded as i32, "{run:?}");
    assert!(errors_of(&run, &forbidden).is_empty(), "{run:?}");
    let project = project_after(&stack, &connection_id, &run.id).await?;
    assert_eq!(project.status, catalog::ProjectStatus::Ok as i32);
    assert_eq!(project.last_attempted_commit, repo.head("main"));
    assert_eq!((project.error_count, project.last_error.as_str()), (0, ""));

    // 1. a model file becomes too big (over the parser's 10 MiB limit)
    let big = format!("select 1 as id -- {}\n", "x".repeat(10 * 1024 * 1024 + 16));
    repo.commit(&[("dbt/models/big.sql", &big)], "big file");
    let run = sync(&mut stack, &connection_id).await?;
    assert_eq!(run.status, gitsync::SyncStatus::Succeeded as i32, "{run:?}");
    let errors = errors_of(&run, &forbidden);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("dbt/models/big.sql"), "{errors:?}");
    assert_eq!(run.model_count, 1, "customers still loads");
    let project = project_after(&stack, &connection_id, &run.id).await?;
    assert_eq!(project.status, catalog::ProjectStatus::Ok as i32);
    assert_eq!(project.error_count, 1);
    assert!(
        project.last_error.starts_with("dbt/models/big.sql"),
        "{project:?}"
    );

    // 2. a new symlink out of the checkout: both errors
    std::os::unix::fs::symlink(
        "/etc/hostname",
        repo.scratch().join("dbt/models/escape.sql"),
    )?;
    repo.commit(&[], "symlink out");
    let run = sync(&mut stack, &connection_id).await?;
    let errors = errors_of(&run, &forbidden);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("dbt/models/big.sql"), "{errors:?}");
    assert!(errors[1].starts_with("dbt/models/escape.sql"), "{errors:?}");

    // 3. the big file is fixed: only the symlink is left
    repo.commit(&[("dbt/models/big.sql", "select 2 as id")], "fix big");
    let run = sync(&mut stack, &connection_id).await?;
    let errors = errors_of(&run, &forbidden);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("dbt/models/escape.sql"), "{errors:?}");
    assert_eq!(run.model_count, 2);

    // 4. the symlink goes: clean again
    std::fs::remove_file(repo.scratch().join("dbt/models/escape.sql"))?;
    repo.commit(&[], "drop symlink");
    let run = sync(&mut stack, &connection_id).await?;
    assert!(errors_of(&run, &forbidden).is_empty(), "{run:?}");
    let project = project_after(&stack, &connection_id, &run.id).await?;
    assert_eq!((project.error_count, project.last_error.as_str()), (0, ""));

    // 5. a broken project fails the run, which records the commit it tried
    let broken = repo.commit(&[("dbt/dbt_project.yml", "name: [unclosed\n")], "break it");
    let run = sync(&mut stack, &connection_id).await?;
    assert_eq!(run.status, gitsync::SyncStatus::Failed as i32, "{run:?}");
    assert_eq!(run.commit_sha, broken);
    errors_of(&run, &forbidden);
    assert!(!run.error.is_empty());
    let project = project_after(&stack, &connection_id, &run.id).await?;
    assert_eq!(project.status, catalog::ProjectStatus::Failing as i32);
    assert_eq!(project.last_attempted_commit, broken);
    assert_eq!(project.last_error, run.error);
    assert_ne!(
        project.latest_commit_sha, broken,
        "the last good models stay"
    );

    // 6. fixed: ok again
    let fixed = repo.commit(&[("dbt/dbt_project.yml", PROJECT[0].1)], "fix project");
    let run = sync(&mut stack, &connection_id).await?;
    assert_eq!(run.status, gitsync::SyncStatus::Succeeded as i32, "{run:?}");
    let project = project_after(&stack, &connection_id, &run.id).await?;
    assert_eq!(project.status, catalog::ProjectStatus::Ok as i32);
    assert_eq!(project.last_attempted_commit, fixed);

    // deleting the connection removes its clone from the server's disk
    let work_dir = stack.credentials_db_dir.join("work").join(&connection_id);
    assert!(work_dir.join(".git").is_dir(), "{}", work_dir.display());
    stack
        .git_sync
        .delete_connection(gitsync::DeleteConnectionRequest {
            workspace_id: WORKSPACE.into(),
            connection_id: connection_id.clone(),
        })
        .await?;
    assert!(!work_dir.exists(), "{} is left behind", work_dir.display());

    stack.stop().await;
    drop(server);
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}
