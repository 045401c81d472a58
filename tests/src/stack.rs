//! The Git → catalog stack on real parts, shared by the end-to-end test and the
//! push-to-catalog benchmark: credentials, git-sync and model-catalog on fresh
//! databases and a fresh NATS namespace, plus signed push webhooks.

use crate::{eventually, Background};
use backflow_platform::testing;
use backflow_proto::catalog::v1 as catalog;
use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use hmac::Mac;
use std::time::Duration;

pub const SERVICE_TOKEN: &str = "svc-E2eServiceToken";

pub struct Stack {
    pub workspace: String,
    pub git_sync: gitsync::git_sync_service_client::GitSyncServiceClient<testing::AuthedChannel>,
    pub catalog:
        catalog::model_catalog_service_client::ModelCatalogServiceClient<testing::AuthedChannel>,
    pub credentials:
        credentials::credentials_service_client::CredentialsServiceClient<testing::AuthedChannel>,
    pub webhook_base: String,
    pub credentials_db_dir: std::path::PathBuf,
    /// The NATS namespace the services share (more services may join it).
    pub nats: backflow_platform::config::NatsConfig,
    pub credentials_url: String,
    pub catalog_url: String,
    /// The workspace admin token the clients use.
    pub token: String,
    background: Background,
}

/// Starts the three services; `label` names their databases.
pub async fn start_stack(workspace: &str) -> anyhow::Result<Stack> {
    start_stack_polling(workspace, 0).await
}

/// Same, with git-sync polling remote heads every `poll_interval_seconds` (0 = never).
pub async fn start_stack_polling(
    workspace: &str,
    poll_interval_seconds: u64,
) -> anyhow::Result<Stack> {
    start_stack_with(workspace, poll_interval_seconds, Default::default()).await
}

/// Same, with the catalog's warehouse reads configured (`[model_catalog.preview]`).
pub async fn start_stack_with(
    workspace: &str,
    poll_interval_seconds: u64,
    preview: backflow_model_catalog::config::PreviewConfig,
) -> anyhow::Result<Stack> {
    let nats = testing::fresh_nats("e2e");
    let credentials_db_dir =
        std::env::temp_dir().join(format!("backflow-e2e-{}", backflow_platform::new_id()));
    std::fs::create_dir_all(&credentials_db_dir)?;
    // Built from JSON so settings with defaults keep their defaults.
    let credentials_config: backflow_credentials::Config =
        serde_json::from_value(serde_json::json!({
            "database_url": format!("sqlite://{}/credentials.db", credentials_db_dir.display()),
            "grpc_listen": "127.0.0.1:0",
            "master_key_file": credentials_db_dir.join("master.key").display().to_string(),
            "create_master_key_if_missing": true,
            "service_tokens": [SERVICE_TOKEN],
        }))?;
    let credentials_app = backflow_credentials::App::build(credentials_config, &nats).await?;
    let credentials_addr = credentials_app
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no addr"))?;
    let git_sync_app = backflow_git_sync::App::build(
        backflow_git_sync::Config {
            database_url: testing::fresh_postgres_url("e2e_gitsync").await?,
            grpc_listen: "127.0.0.1:0".into(),
            http_listen: "127.0.0.1:0".into(),
            credentials_url: format!("http://{credentials_addr}"),
            service_token: SERVICE_TOKEN.into(),
            work_dir: credentials_db_dir.join("work").display().to_string(),
            fetch_timeout_seconds: 30,
            poll_interval_seconds,
            validate_access_on_save: true,
            run_lease_ms: 30_000,
            tls: Default::default(),
        },
        &nats,
    )
    .await?;
    let git_sync_addr = git_sync_app
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no addr"))?;
    let webhook_addr = git_sync_app
        .http_addr()
        .ok_or_else(|| anyhow::anyhow!("no addr"))?;
    let catalog_app = backflow_model_catalog::App::build(
        backflow_model_catalog::Config {
            database_url: testing::fresh_postgres_url("e2e_catalog").await?,
            grpc_listen: "127.0.0.1:0".into(),
            git_sync_url: format!("http://{git_sync_addr}"),
            credentials_url: format!("http://{credentials_addr}"),
            service_token: SERVICE_TOKEN.into(),
            tls: Default::default(),
            preview,
        },
        &nats,
    )
    .await?;
    let catalog_addr = catalog_app
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no addr"))?;
    let token = credentials_app
        .tokens()
        .create(Some(workspace), backflow_platform::auth::Role::Admin, "e2e")
        .await?
        .token;
    let mut background = Background::default();
    background.spawn(|shutdown| credentials_app.run(shutdown));
    background.spawn(|shutdown| git_sync_app.run(shutdown));
    background.spawn(|shutdown| catalog_app.run(shutdown));
    Ok(Stack {
        workspace: workspace.to_string(),
        git_sync: gitsync::git_sync_service_client::GitSyncServiceClient::new(
            testing::authed_channel(&format!("http://{git_sync_addr}"), &token).await?,
        ),
        catalog: catalog::model_catalog_service_client::ModelCatalogServiceClient::new(
            testing::authed_channel(&format!("http://{catalog_addr}"), &token).await?,
        ),
        credentials: credentials::credentials_service_client::CredentialsServiceClient::new(
            testing::authed_channel(&format!("http://{credentials_addr}"), &token).await?,
        ),
        webhook_base: format!("http://{webhook_addr}"),
        credentials_db_dir,
        nats,
        credentials_url: format!("http://{credentials_addr}"),
        catalog_url: format!("http://{catalog_addr}"),
        token,
        background,
    })
}

impl Stack {
    pub async fn create_secret(
        &mut self,
        name: &str,
        kind: credentials::SecretKind,
        material: &str,
    ) -> anyhow::Result<String> {
        let secret = self
            .credentials
            .create_secret(credentials::CreateSecretRequest {
                workspace_id: self.workspace.clone(),
                name: name.into(),
                kind: kind as i32,
                material: material.as_bytes().to_vec(),
                attributes: [("username".to_string(), "x-access-token".to_string())].into(),
            })
            .await?
            .into_inner()
            .secret
            .ok_or_else(|| anyhow::anyhow!("no secret"))?;
        Ok(secret.id)
    }

    /// A warehouse source in the catalog, which a Git connection must name: `kind` with
    /// `settings` and a fresh secret `(kind, material)`; the connection test checks
    /// usage on `backflow_schema` when given. `skip_test` stores it without connecting
    /// (for sources that exist only as names).
    pub async fn create_source_with(
        &mut self,
        name: &str,
        kind: catalog::WarehouseKind,
        settings: &[(&str, &str)],
        secret: (credentials::SecretKind, &str),
        backflow_schema: &str,
        skip_test: bool,
    ) -> Result<catalog::WarehouseSource, tonic::Status> {
        let credential_id = self
            .create_secret(&format!("{name} secret"), secret.0, secret.1)
            .await
            .map_err(|err| tonic::Status::internal(err.to_string()))?;
        let source = self
            .catalog
            .create_warehouse_source(catalog::CreateWarehouseSourceRequest {
                workspace_id: self.workspace.clone(),
                name: name.into(),
                kind: kind as i32,
                settings: settings
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                credential_id,
                backflow_schema: backflow_schema.into(),
                skip_test,
                run_ledger: false,
            })
            .await?
            .into_inner()
            .source
            .ok_or_else(|| tonic::Status::internal("no source"))?;
        Ok(source)
    }

    /// A postgres source named `name` whose database is `warehouse` (the relations of
    /// the fixtures' models are `"warehouse"."<schema>"."<model>"`), never dialled.
    pub async fn create_source(&mut self, name: &str) -> anyhow::Result<String> {
        let source = self
            .create_source_with(
                name,
                catalog::WarehouseKind::Postgres,
                &[
                    ("host", "db.internal"),
                    ("database", "warehouse"),
                    ("user", "dbt"),
                ],
                (credentials::SecretKind::WarehousePassword, "unused-s3cret"),
                "",
                true,
            )
            .await?;
        Ok(source.id)
    }

    /// Waits until the catalog's latest commit for the connection is `commit`, then
    /// returns all its models (every page, with compiled SQL).
    pub async fn models_at_commit(
        &self,
        connection_id: &str,
        commit: &str,
    ) -> anyhow::Result<Vec<catalog::Model>> {
        let client = self.catalog.clone();
        let workspace = self.workspace.clone();
        eventually(
            Duration::from_secs(120),
            &format!("models at {commit}"),
            || {
                let (client, workspace) = (client.clone(), workspace.clone());
                let (connection_id, commit) = (connection_id.to_string(), commit.to_string());
                async move {
                    let models = all_models(client, &workspace, &connection_id).await.ok()?;
                    (models.0 == commit && !models.1.is_empty()).then_some(models.1)
                }
            },
        )
        .await
    }

    /// Waits until the catalog records `commit` as the connection's latest (cheap:
    /// reads the project, not its models).
    pub async fn wait_for_catalog_commit(
        &self,
        connection_id: &str,
        commit: &str,
    ) -> anyhow::Result<()> {
        let client = self.catalog.clone();
        let request = catalog::GetProjectRequest {
            workspace_id: self.workspace.clone(),
            connection_id: connection_id.to_string(),
        };
        eventually(
            Duration::from_secs(120),
            &format!("the catalog at {commit}"),
            || {
                let (mut client, request) = (client.clone(), request.clone());
                async move {
                    let project = client
                        .get_project(request)
                        .await
                        .ok()?
                        .into_inner()
                        .project?;
                    (project.latest_commit_sha == commit).then_some(())
                }
            },
        )
        .await
    }

    pub async fn run_count(&mut self, connection_id: &str) -> anyhow::Result<usize> {
        Ok(self
            .git_sync
            .list_runs(gitsync::ListRunsRequest {
                workspace_id: self.workspace.clone(),
                connection_id: connection_id.into(),
                limit: 100,
            })
            .await?
            .into_inner()
            .runs
            .len())
    }

    /// Runs `task` until the stack stops.
    pub fn spawn<F, Fut, E>(&mut self, run: F)
    where
        F: FnOnce(backflow_platform::shutdown::Shutdown) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.background.spawn(run);
    }

    pub async fn stop(self) {
        self.background.stop().await;
    }
}

/// `X-Hub-Signature-256` of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Posts a GitHub push delivery; returns the HTTP status.
pub async fn post_webhook(url: &str, body: &[u8], signature: &str) -> anyhow::Result<u16> {
    let response = hyper_post(
        url,
        body,
        &[
            ("x-github-event", "push"),
            ("x-hub-signature-256", signature),
        ],
    )
    .await?;
    Ok(response)
}

/// A plain HTTP/1.1 POST over a TCP socket (no client library needed for one call).
async fn hyper_post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> anyhow::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("http only"))?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("no status line"))?
        .parse()?;
    Ok(status)
}

type CatalogClient =
    catalog::model_catalog_service_client::ModelCatalogServiceClient<testing::AuthedChannel>;

/// Every model at the latest commit, page by page: (commit, models).
async fn all_models(
    mut client: CatalogClient,
    workspace: &str,
    connection_id: &str,
) -> Result<(String, Vec<catalog::Model>), tonic::Status> {
    let (mut models, mut page_token, mut commit) = (Vec::new(), String::new(), String::new());
    loop {
        let page = client
            .list_models(catalog::ListModelsRequest {
                workspace_id: workspace.to_string(),
                connection_id: connection_id.to_string(),
                commit_sha: commit.clone(),
                page_size: 500,
                page_token,
                include_compiled_sql: true,
            })
            .await?
            .into_inner();
        commit = page.commit_sha;
        models.extend(page.models);
        if page.next_page_token.is_empty() {
            return Ok((commit, models));
        }
        page_token = page.next_page_token;
    }
}
