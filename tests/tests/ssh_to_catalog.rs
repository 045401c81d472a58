//! Issue 4, acceptance 1, through the whole stack: a repository served by a real
//! `sshd` on loopback, the client key held only in the credentials service (git-sync
//! resolves it per sync), models listed in the catalog; a credential pinning the
//! wrong host key is refused and nothing is fetched.

use backflow_proto::catalog::v1 as catalog;
use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_test_git::repo::BareRepo;
use backflow_test_git::ssh::{keygen, Sshd};
use backflow_tests::eventually;
use backflow_tests::stack::{start_stack, Stack};
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

async fn connect(
    stack: &mut Stack,
    name: &str,
    url: &str,
    credential_id: &str,
) -> anyhow::Result<(String, String)> {
    let response = stack
        .git_sync
        .create_connection(gitsync::CreateConnectionRequest {
            workspace_id: WORKSPACE.into(),
            name: name.into(),
            settings: Some(gitsync::ConnectionSettings {
                provider: gitsync::GitProvider::Gitlab as i32,
                protocol: gitsync::GitProtocol::Ssh as i32,
                repository_url: url.into(),
                branch: "main".into(),
                dbt_version: "1.7".into(),
                default_schema: "analytics".into(),
                project_path: String::new(),
                credential_id: credential_id.into(),
                warehouse_source_id: "wh".into(),
                webhook_secret_credential_id: String::new(),
            }),
        })
        .await?
        .into_inner();
    let connection = response
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))?;
    let run = response
        .initial_run
        .ok_or_else(|| anyhow::anyhow!("no run"))?;
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

    let mut stack = start_stack(WORKSPACE).await?;
    let key_id = ssh_secret(
        &mut stack,
        "deploy key",
        &client.private_key,
        &sshd.known_hosts(),
    )
    .await?;
    let (connection_id, run_id) =
        connect(&mut stack, "over-ssh", &sshd.url(&repo.path), &key_id).await?;
    let run = finished_run(&stack, &run_id).await?;
    assert_eq!(
        run.status,
        gitsync::SyncStatus::Succeeded as i32,
        "{}\n{}",
        run.error,
        sshd.log()
    );
    assert_eq!(run.commit_sha, repo.head("main"));
    let models = stack
        .models_at_commit(&connection_id, &run.commit_sha)
        .await?;
    assert_eq!(
        models
            .iter()
            .map(|m| m.unique_id.as_str())
            .collect::<Vec<_>>(),
        vec!["model.shop.a"]
    );

    // same key, wrong pinned host key: refused before authenticating, nothing fetched
    let pinned_wrong = ssh_secret(
        &mut stack,
        "wrong host",
        &client.private_key,
        &wrong_known_hosts,
    )
    .await?;
    let (refused_id, refused_run) = connect(
        &mut stack,
        "wrong-host",
        &sshd.url(&repo.path),
        &pinned_wrong,
    )
    .await?;
    let run = finished_run(&stack, &refused_run).await?;
    assert_eq!(run.status, gitsync::SyncStatus::Failed as i32);
    assert!(run.error.contains("host key mismatch"), "{}", run.error);
    let project = stack
        .catalog
        .get_project(catalog::GetProjectRequest {
            workspace_id: WORKSPACE.into(),
            connection_id: refused_id,
        })
        .await;
    assert!(
        project
            .map(|p| p.into_inner().project.map(|p| p.model_count).unwrap_or(0))
            .unwrap_or(0)
            == 0
    );

    stack.stop().await;
    drop(sshd);
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}
