//! Acceptance 2 of the foundation: a connection created over gRPC in git-sync reaches
//! model-catalog through the outbox exactly once — with NATS up, with NATS stopped
//! while the event is written (and started later), and when the same event is
//! delivered twice.

use backflow_platform::bus::{Bus, EVENT_ID_HEADER};
use backflow_platform::config::NatsConfig;
use backflow_platform::{outbox, testing};
use backflow_proto::catalog::v1 as catalog;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_tests::{eventually, Background, PrivateNats};
use prost::Message;
use std::time::Duration;

const WORKSPACE: &str = "ws-cross";

struct Services {
    git_sync: gitsync::git_sync_service_client::GitSyncServiceClient<testing::AuthedChannel>,
    catalog:
        catalog::model_catalog_service_client::ModelCatalogServiceClient<testing::AuthedChannel>,
    catalog_store: backflow_model_catalog::store::CatalogStore,
    git_sync_db: backflow_platform::db::Database,
    git_sync_store: backflow_git_sync::store::GitSyncStore,
    background: Background,
    _authority: testing::TokenAuthority,
}

async fn start(nats: &NatsConfig) -> anyhow::Result<Services> {
    let authority = testing::TokenAuthority::start().await?;
    let git_sync_app = backflow_git_sync::App::build(
        backflow_git_sync::Config {
            database_url: testing::fresh_postgres_url("gitsync").await?,
            grpc_listen: "127.0.0.1:0".into(),
            http_listen: "127.0.0.1:0".into(),
            credentials_url: authority.url.clone(),
            service_token: authority.service_token.clone().into(),
            work_dir: std::env::temp_dir()
                .join("backflow-unused-work")
                .display()
                .to_string(),
            fetch_timeout_seconds: 5,
            poll_interval_seconds: 0,
            validate_access_on_save: false,
            run_lease_ms: 30_000,
            tls: Default::default(),
        },
        nats,
    )
    .await?;
    let catalog_app = backflow_model_catalog::App::build(
        backflow_model_catalog::Config {
            database_url: testing::fresh_postgres_url("catalog").await?,
            grpc_listen: "127.0.0.1:0".into(),
            git_sync_url: "http://127.0.0.1:1".into(),
            credentials_url: authority.url.clone(),
            service_token: authority.service_token.clone().into(),
            tls: Default::default(),
            preview: Default::default(),
        },
        nats,
    )
    .await?;
    let git_sync_addr = git_sync_app
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no addr"))?;
    let catalog_addr = catalog_app
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no addr"))?;
    let catalog_store = catalog_app.store().clone();
    let git_sync_db = git_sync_app.store().database().clone();
    let git_sync_store = git_sync_app.store().clone();
    let mut background = Background::default();
    background.spawn(|shutdown| git_sync_app.run(shutdown));
    background.spawn(|shutdown| catalog_app.run(shutdown));
    let token = authority.mint(None, backflow_platform::auth::Role::Admin);
    Ok(Services {
        git_sync: gitsync::git_sync_service_client::GitSyncServiceClient::new(
            testing::authed_channel(&format!("http://{git_sync_addr}"), &token).await?,
        ),
        catalog: catalog::model_catalog_service_client::ModelCatalogServiceClient::new(
            testing::authed_channel(&format!("http://{catalog_addr}"), &token).await?,
        ),
        catalog_store,
        git_sync_db,
        git_sync_store,
        background,
        _authority: authority,
    })
}

impl Services {
    async fn stop(self) {
        self.background.stop().await;
    }

    /// A warehouse source (never dialled), once git-sync has heard of it.
    async fn create_source(&mut self, name: &str) -> anyhow::Result<String> {
        let source = self
            .catalog
            .create_warehouse_source(catalog::CreateWarehouseSourceRequest {
                workspace_id: WORKSPACE.into(),
                name: name.into(),
                kind: catalog::WarehouseKind::Postgres as i32,
                settings: [
                    ("host".to_string(), "db.internal".to_string()),
                    ("database".to_string(), "warehouse".to_string()),
                    ("user".to_string(), "dbt".to_string()),
                ]
                .into(),
                credential_id: "cred-wh".into(),
                backflow_schema: String::new(),
                skip_test: true,
                run_ledger: false,
            })
            .await?
            .into_inner()
            .source
            .ok_or_else(|| anyhow::anyhow!("no source"))?;
        let store = self.git_sync_store.clone();
        let id = source.id.clone();
        eventually(
            Duration::from_secs(30),
            "git-sync to know the source",
            || {
                let (store, id) = (store.clone(), id.clone());
                async move { store.known_source(WORKSPACE, &id).await.ok()? }
            },
        )
        .await?;
        Ok(source.id)
    }

    async fn create_connection(&mut self, name: &str, source_id: &str) -> anyhow::Result<String> {
        let response = self
            .git_sync
            .create_connection(gitsync::CreateConnectionRequest {
                workspace_id: WORKSPACE.into(),
                name: name.into(),
                settings: Some(gitsync::ConnectionSettings {
                    provider: gitsync::GitProvider::Github as i32,
                    protocol: gitsync::GitProtocol::Ssh as i32,
                    repository_url: "git@github.com:acme/analytics.git".into(),
                    branch: "main".into(),
                    dbt_version: "1.7".into(),
                    default_schema: "analytics".into(),
                    project_path: String::new(),
                    credential_id: "cred-1".into(),
                    warehouse_source_id: source_id.into(),
                    webhook_secret_credential_id: String::new(),
                }),
            })
            .await?
            .into_inner();
        let connection = response
            .connection
            .ok_or_else(|| anyhow::anyhow!("no connection"))?;
        Ok(connection.id)
    }

    async fn wait_for_project(&mut self, connection_id: &str) -> anyhow::Result<catalog::Project> {
        let client = self.catalog.clone();
        eventually(
            Duration::from_secs(30),
            "the project in the catalog",
            || {
                let mut client = client.clone();
                let request = catalog::GetProjectRequest {
                    workspace_id: WORKSPACE.into(),
                    connection_id: connection_id.into(),
                };
                async move {
                    client
                        .get_project(request)
                        .await
                        .ok()
                        .and_then(|r| r.into_inner().project)
                }
            },
        )
        .await
    }
}

#[tokio::test]
async fn event_reaches_the_catalog_exactly_once() -> anyhow::Result<()> {
    let nats = testing::fresh_nats("cross");
    let mut services = start(&nats).await?;
    let source_id = services.create_source("warehouse").await?;
    let connection_id = services.create_connection("analytics", &source_id).await?;
    let project = services.wait_for_project(&connection_id).await?;
    assert_eq!(project.name, "analytics");
    assert_eq!(project.default_schema, "analytics");

    // The same event delivered twice more (as a republish after the dedup window
    // would): both reach the consumer, neither is applied again.
    let bus = Bus::connect(&nats).await?;
    let event = gitsync::ConnectionChangedEvent {
        workspace_id: WORKSPACE.into(),
        change: gitsync::ConnectionChange::Updated as i32,
        connection: Some(gitsync::Connection {
            id: connection_id.clone(),
            workspace_id: WORKSPACE.into(),
            name: "analytics".into(),
            settings_version: 2,
            ..Default::default()
        }),
    };
    for _ in 0..2 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(EVENT_ID_HEADER, "duplicate-event-1");
        bus.jetstream()
            .publish_with_headers(
                bus.subject(&format!("evt.gitsync.connection.updated.{connection_id}")),
                headers,
                bytes::Bytes::from(event.encode_to_vec()),
            )
            .await?
            .await?;
    }
    let store = services.catalog_store.clone();
    let id = connection_id.clone();
    eventually(
        Duration::from_secs(30),
        "the duplicate to be applied",
        || {
            let store = store.clone();
            let id = id.clone();
            async move { (store.project_change_count(&id).await.ok()? == 2).then_some(()) }
        },
    )
    .await?;
    // give a wrongly applied second copy time to show up
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        services
            .catalog_store
            .project_change_count(&connection_id)
            .await?,
        2
    );
    services.stop().await;
    Ok(())
}

#[tokio::test]
async fn nothing_is_lost_while_nats_is_down() -> anyhow::Result<()> {
    let mut server = PrivateNats::start()?;
    let nats = NatsConfig {
        url: server.url(),
        namespace: String::new(),
        connect_timeout_ms: 5_000,
    };
    let mut services = start(&nats).await?;
    let source_id = services.create_source("warehouse").await?;

    server.stop()?;
    let connection_id = services
        .create_connection("written-while-nats-down", &source_id)
        .await?;
    // the event waits in the outbox
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(outbox::pending_count(&services.git_sync_db).await? >= 2);
    assert!(services
        .catalog_store
        .get_project(WORKSPACE, &connection_id)
        .await
        .is_err());

    server.restart()?;
    let project = services.wait_for_project(&connection_id).await?;
    assert_eq!(project.name, "written-while-nats-down");
    let db = services.git_sync_db.clone();
    eventually(Duration::from_secs(30), "the outbox to drain", || {
        let db = db.clone();
        async move { (outbox::pending_count(&db).await.ok()? == 0).then_some(()) }
    })
    .await?;
    assert_eq!(
        services
            .catalog_store
            .project_change_count(&connection_id)
            .await?,
        1
    );
    services.stop().await;
    Ok(())
}
