//! Issue 7, acceptance 3: `kill -9` of a `backflow serve git-sync` process while its
//! sync is stuck in a fetch (the git server stalls pack downloads), then a restart:
//! the run is marked failed "interrupted" and a new run, queued by the restarted
//! process's lease reaper, completes, with no manual step.
//!
//! Real parts: the built `backflow` binary as the child, credentials in this process,
//! PostgreSQL, NATS JetStream and a smart-HTTP git server from `crates/test-git`.

use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use backflow_test_git::ssh::free_port;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

const GIT_TOKEN: &str = "ghp_CrashSafeRunsToken0123456789";
const SERVICE_TOKEN: &str = "svc-CrashSafeRunsServiceToken";
const WORKSPACE: &str = "ws-crash";

type GitSyncClient = gitsync::git_sync_service_client::GitSyncServiceClient<
    backflow_platform::testing::AuthedChannel,
>;

/// Everything a `backflow serve git-sync` child needs, kept for the restart.
struct GitSyncProcess {
    env: Vec<(String, String)>,
    grpc: String,
    child: Option<Child>,
}

impl GitSyncProcess {
    fn new(work: &Path, database_url: &str, credentials_url: &str, namespace: &str) -> Self {
        let grpc = format!("127.0.0.1:{}", free_port());
        let env = [
            ("BACKFLOW_NATS__URL", backflow_platform::testing::nats_url()),
            ("BACKFLOW_NATS__NAMESPACE", namespace.to_string()),
            ("BACKFLOW_TELEMETRY__FORMAT", "json".into()),
            ("BACKFLOW_TELEMETRY__METRICS_LISTEN", "127.0.0.1:0".into()),
            ("BACKFLOW_GIT_SYNC__DATABASE_URL", database_url.to_string()),
            ("BACKFLOW_GIT_SYNC__GRPC_LISTEN", grpc.clone()),
            ("BACKFLOW_GIT_SYNC__HTTP_LISTEN", "127.0.0.1:0".into()),
            (
                "BACKFLOW_DBT_CLOUD_LISTENER__HTTP_LISTEN",
                "127.0.0.1:0".into(),
            ),
            (
                "BACKFLOW_GIT_SYNC__CREDENTIALS_URL",
                credentials_url.to_string(),
            ),
            ("BACKFLOW_GIT_SYNC__SERVICE_TOKEN", SERVICE_TOKEN.into()),
            ("BACKFLOW_GIT_SYNC__WORK_DIR", work.display().to_string()),
            // The stall must outlast the kill: no fetch timeout in the way.
            ("BACKFLOW_GIT_SYNC__FETCH_TIMEOUT_SECONDS", "300".into()),
            ("BACKFLOW_GIT_SYNC__POLL_INTERVAL_SECONDS", "0".into()),
            // Short leases so the test needn't wait 30 s for the reaper.
            ("BACKFLOW_GIT_SYNC__RUN_LEASE_MS", "1500".into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        Self {
            env,
            grpc,
            child: None,
        }
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_backflow"));
        command
            .args(["serve", "git-sync"])
            .env_remove("BACKFLOW_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(command.spawn()?);
        Ok(())
    }

    /// SIGKILL: no shutdown code runs, nothing is released.
    fn kill_9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    async fn client(&self, token: &str) -> anyhow::Result<GitSyncClient> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let url = format!("http://{}", self.grpc);
            match backflow_platform::testing::authed_channel(&url, token).await {
                Ok(channel) => return Ok(GitSyncClient::new(channel)),
                Err(error) if Instant::now() > deadline => {
                    anyhow::bail!("git-sync never listened on {}: {error}", self.grpc)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

impl Drop for GitSyncProcess {
    fn drop(&mut self) {
        let _ = self.kill_9();
    }
}

async fn runs(client: &mut GitSyncClient, connection_id: &str) -> Vec<gitsync::SyncRun> {
    client
        .list_runs(gitsync::ListRunsRequest {
            workspace_id: WORKSPACE.into(),
            connection_id: connection_id.into(),
            limit: 50,
        })
        .await
        .map(|response| response.into_inner().runs)
        .unwrap_or_default()
}

/// Polls until `check` holds for the runs of the connection.
async fn wait_for_runs(
    client: &mut GitSyncClient,
    connection_id: &str,
    what: &str,
    check: impl Fn(&[gitsync::SyncRun]) -> bool,
) -> anyhow::Result<Vec<gitsync::SyncRun>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let runs = runs(client, connection_id).await;
        if check(&runs) {
            return Ok(runs);
        }
        if Instant::now() > deadline {
            anyhow::bail!("timed out waiting for {what}; runs: {runs:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes the catalog's `WarehouseSourceChangedEvent` for a postgres source (no
/// catalog runs here); git-sync's consumer records it.
async fn announce_source(
    nats: &backflow_platform::config::NatsConfig,
    source_id: &str,
) -> anyhow::Result<()> {
    use backflow_proto::catalog::v1 as catalog;
    use prost::Message;
    let bus = backflow_platform::bus::Bus::connect(nats).await?;
    bus.ensure_stream(&backflow_platform::bus::streams::EVT_CATALOG)
        .await?;
    let event = catalog::WarehouseSourceChangedEvent {
        workspace_id: WORKSPACE.into(),
        source: Some(catalog::WarehouseSource {
            id: source_id.into(),
            workspace_id: WORKSPACE.into(),
            name: "warehouse".into(),
            kind: catalog::WarehouseKind::Postgres as i32,
            settings: [("database".to_string(), "warehouse".to_string())].into(),
            version: 1,
            ..Default::default()
        }),
        deleted: false,
    };
    bus.publish(
        &backflow_proto::subjects::SOURCE_CHANGED.for_id(source_id),
        &format!("source-{source_id}-v1"),
        event.encode_to_vec().into(),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_sync_then_restart_finishes_the_work() -> anyhow::Result<()> {
    let root = std::env::temp_dir().join(format!("backflow-crash-{}", backflow_platform::new_id()));
    std::fs::create_dir_all(&root)?;
    let repo = BareRepo::create(&root.join("repos"), "shop");
    let server = GitHttpServer::start(&root.join("repos"), GIT_TOKEN);

    let nats = backflow_platform::testing::fresh_nats("crash");
    let credentials_config: backflow_credentials::Config =
        serde_json::from_value(serde_json::json!({
            "database_url": format!("sqlite://{}/credentials.db", root.display()),
            "grpc_listen": "127.0.0.1:0",
            "master_key_file": root.join("master.key").display().to_string(),
            "create_master_key_if_missing": true,
            "service_tokens": [SERVICE_TOKEN],
        }))?;
    let credentials_app = backflow_credentials::App::build(credentials_config, &nats).await?;
    let credentials_addr = credentials_app
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no credentials address"))?;
    let token = credentials_app
        .tokens()
        .create(
            Some(WORKSPACE),
            backflow_platform::auth::Role::Admin,
            "crash test",
        )
        .await?
        .token;
    let shutdown = backflow_platform::shutdown::Shutdown::new();
    let credentials_task = tokio::spawn(credentials_app.run(shutdown.clone()));
    let mut secrets = credentials::credentials_service_client::CredentialsServiceClient::new(
        backflow_platform::testing::authed_channel(&format!("http://{credentials_addr}"), &token)
            .await?,
    );
    let secret_id = secrets
        .create_secret(credentials::CreateSecretRequest {
            workspace_id: WORKSPACE.into(),
            name: "git token".into(),
            kind: credentials::SecretKind::GitToken as i32,
            material: GIT_TOKEN.as_bytes().to_vec(),
            attributes: [("username".to_string(), "x-access-token".to_string())].into(),
        })
        .await?
        .into_inner()
        .secret
        .ok_or_else(|| anyhow::anyhow!("no secret"))?
        .id;

    let database_url = backflow_platform::testing::fresh_postgres_url("crash_gitsync").await?;
    let mut process = GitSyncProcess::new(
        &root.join("work"),
        &database_url,
        &format!("http://{credentials_addr}"),
        &nats.namespace,
    );
    process.start()?;
    let mut client = process.client(&token).await?;

    // the warehouse source the connection names, announced as the catalog would
    announce_source(&nats, "wh-1").await?;

    // the initial sync gets stuck downloading the pack
    server.stall_fetches();
    let created = client
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
                project_path: String::new(),
                credential_id: secret_id,
                warehouse_source_id: "wh-1".into(),
                webhook_secret_credential_id: String::new(),
            }),
        })
        .await?
        .into_inner();
    let connection_id = created
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))?
        .id;
    let stuck = created
        .initial_run
        .ok_or_else(|| anyhow::anyhow!("no initial run"))?;
    wait_for_runs(
        &mut client,
        &connection_id,
        "the run to be running",
        |runs| {
            runs.iter()
                .any(|r| r.id == stuck.id && r.status == gitsync::SyncStatus::Running as i32)
        },
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.held_fetches() == 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the fetch never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // kill -9 mid-fetch; the server stops stalling; the process comes back
    process.kill_9()?;
    server.release_fetches();
    process.start()?;
    let mut client = process.client(&token).await?;

    let runs = wait_for_runs(
        &mut client,
        &connection_id,
        "the interrupted run and a successful retry",
        |runs| {
            let interrupted = runs.iter().any(|r| {
                r.id == stuck.id
                    && r.status == gitsync::SyncStatus::Failed as i32
                    && r.error.contains("interrupted")
            });
            let retried = runs.iter().any(|r| {
                r.trigger == gitsync::SyncTrigger::Retry as i32
                    && r.status == gitsync::SyncStatus::Succeeded as i32
            });
            interrupted && retried
        },
    )
    .await?;
    let retry = runs
        .iter()
        .find(|r| r.trigger == gitsync::SyncTrigger::Retry as i32)
        .ok_or_else(|| anyhow::anyhow!("no retry"))?;
    assert_eq!(retry.commit_sha, repo.head("main"));
    assert_eq!(retry.model_count, 1);
    // exactly the two runs: no manual trigger, no duplicate retry
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let failed = runs
        .iter()
        .find(|r| r.id == stuck.id)
        .ok_or_else(|| anyhow::anyhow!("stuck run"))?;
    assert!(failed.finished_at_unix_ms > 0);

    process.kill_9()?;
    shutdown.cancel();
    let _ = credentials_task.await;
    drop(server);
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}
