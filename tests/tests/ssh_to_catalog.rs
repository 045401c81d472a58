//! Issue 4, acceptance 1, through the whole stack: a repository served by a real
//! `sshd` on loopback, the client key held only in the credentials service (git-sync
//! resolves it per sync), models listed in the catalog, a new commit found by the
//! remote-head poll. Saving settings checks access: a wrong pinned host key or a
//! missing branch is refused with a clear error; a project path without
//! dbt_project.yml fails the sync with a clear error.

use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_test_git::repo::BareRepo;
use backflow_test_git::ssh::{keygen, Sshd};
use backflow_tests::eventually;
use backflow_tests::stack::{start_stack_polling, Stack};
use std::time::Duration;

const WORKSPACE: &str = "ws-ssh";

async fn ssh_secret(
    stack: &mut Stack,
    name: &str,
    key: &str,
    known_hosts: &str,
) -> anyhow::Result<String> {
    let secret = stack
        .credentials
        .create_secret(credentials::CreateSecretRequest {
            workspace_id: WORKSPACE.into(),
            name: name.into(),
            kind: credentials::SecretKind::SshPrivateKey as i32,
            material: key.as_bytes().to_vec(),
            attributes: [("known_hosts".to_string(), known_hosts.to_string())].into(),
        })
        .await?
        .into_inner()
        .secret
        .ok_or_else(|| anyhow::anyhow!("no secret"))?;
    Ok(secret.id)
}

fn settings(
    url: &str,
    branch: &str,
    project_path: &str,
    credential_id: &str,
) -> gitsync::ConnectionSettings {
    gitsync::ConnectionSettings {
        provider: gitsync::GitProvider::Gitlab as i32,
        protocol: gitsync::GitProtocol::Ssh as i32,
        repository_url: url.into(),
        branch: branch.into(),
        dbt_version: "1.7".into(),
        default_schema: "analytics".into(),
        project_path: project_path.into(),
        credential_id: credential_id.into(),
        warehouse_source_id: String::new(),
        webhook_secret_credential_id: String::new(),
    }
}

/// Creates a connection naming a new warehouse source; returns (connection id, initial
/// run id).
async fn connect(
    stack: &mut Stack,
    name: &str,
    mut settings: gitsync::ConnectionSettings,
) -> Result<(String, String), tonic::Status> {
    settings.warehouse_source_id = stack
        .create_source(&format!("{name} warehouse"))
        .await
        .map_err(|err| tonic::Status::internal(err.to_string()))?;
    let response = stack
        .git_sync
        .create_connection(gitsync::CreateConnectionRequest {
            workspace_id: WORKSPACE.into(),
            name: name.into(),
            settings: Some(settings),
        })
        .await?
        .into_inner();
    let connection = response.connection.unwrap_or_default();
    let run = response.initial_run.unwrap_or_default();
    Ok((connection.id, run.id))
}

async fn finished_run(stack: &Stack, run_id: &str) -> anyhow::Result<gitsync::SyncRun> {
    let client = stack.git_sync.clone();
    eventually(Duration::from_secs(60), "the sync run to finish", || {
        let mut client = client.clone();
        let request = gitsync::GetRunRequest {
            workspace_id: WORKSPACE.into(),
            run_id: run_id.into(),
        };
        async move {
            let run = client.get_run(request).await.ok()?.into_inner().run?;
            let done = [
                gitsync::SyncStatus::Succeeded as i32,
                gitsync::SyncStatus::Failed as i32,
            ];
            done.contains(&run.status).then_some(run)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_key_held_by_credentials_and_host_key_pinned() -> anyhow::Result<()> {
    let root =
        std::env::temp_dir().join(format!("backflow-ssh-e2e-{}", backflow_platform::new_id()));
    std::fs::create_dir_all(&root)?;
    let repo = BareRepo::create(&root, "shop");
    let client = keygen(&root, "client", "ed25519", "", false);
    let sshd = Sshd::start(&root, &[client.public_line.as_str()]);
    let other_host = keygen(&root, "other-host", "ed25519", "", false);
    let wrong_known_hosts = format!("[127.0.0.1]:{} {}\n", sshd.port, other_host.public_line);
    let url = sshd.url(&repo.path);

    let mut stack = start_stack_polling(WORKSPACE, 1).await?;
    let key_id = ssh_secret(
        &mut stack,
        "deploy key",
        &client.private_key,
        &sshd.known_hosts(),
    )
    .await?;
    let (connection_id, run_id) =
        connect(&mut stack, "over-ssh", settings(&url, "main", "", &key_id)).await?;
    let run = finished_run(&stack, &run_id).await?;
    assert_eq!(
        run.status,
        gitsync::SyncStatus::Succeeded as i32,
        "{}\n{}",
        run.error,
        sshd.log()
    );
    assert_eq!(run.commit_sha, repo.head("main"));
    assert!(run.node_errors.is_empty(), "{:?}", run.node_errors);
    let models = stack
        .models_at_commit(&connection_id, &run.commit_sha)
        .await?;
    let ids: Vec<&str> = models.iter().map(|m| m.unique_id.as_str()).collect();
    assert_eq!(ids, vec!["model.shop.a"]);

    // no webhook: the remote-head poll finds the new commit
    let second = repo.commit(&[("models/b.sql", "select * from {{ ref('a') }}")], "add b");
    let models = stack.models_at_commit(&connection_id, &second).await?;
    assert_eq!(models.len(), 2);

    // same key, wrong pinned host key: refused when saving, nothing stored
    let pinned_wrong = ssh_secret(
        &mut stack,
        "wrong host",
        &client.private_key,
        &wrong_known_hosts,
    )
    .await?;
    let refused = connect(
        &mut stack,
        "wrong-host",
        settings(&url, "main", "", &pinned_wrong),
    )
    .await
    .err()
    .ok_or_else(|| anyhow::anyhow!("a wrong host key must be refused"))?;
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("host key mismatch"),
        "{}",
        refused.message()
    );
    let missing_branch = connect(&mut stack, "no-branch", settings(&url, "nope", "", &key_id))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a missing branch must be refused"))?;
    assert!(
        missing_branch.message().contains("branch nope not found"),
        "{}",
        missing_branch.message()
    );
    let listed = stack
        .git_sync
        .list_connections(gitsync::ListConnectionsRequest {
            workspace_id: WORKSPACE.into(),
        })
        .await?
        .into_inner()
        .connections;
    assert_eq!(listed.len(), 1, "refused connections are not stored");

    // a project path without dbt_project.yml fails the sync and says why
    let (_, run_id) = connect(
        &mut stack,
        "wrong-path",
        settings(&url, "main", "models", &key_id),
    )
    .await?;
    let run = finished_run(&stack, &run_id).await?;
    assert_eq!(run.status, gitsync::SyncStatus::Failed as i32);
    assert!(run.error.contains("dbt_project.yml"), "{}", run.error);

    stack.stop().await;
    drop(sshd);
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}
