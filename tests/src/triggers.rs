//! The dbt trigger stack on real parts, shared by the end-to-end test
//! (`tests/dbt_triggers.rs`) and the trigger benchmark (`benches/dbt_triggers.rs`): a
//! dbt project in a Git repository parsed by git-sync into the catalog, its `customers`
//! model built as a table in a fresh database of the local PostgreSQL (the warehouse
//! source, optionally reached through a proxy port), a Reverse ETL model on it, the dbt
//! Cloud listener (connections `conn-1`/`conn-2` of account 1, subscriptions `sub-a` and
//! `sub-b` on job 123, `sub-idle` on job 999; run artifacts read from the dbt Cloud API
//! stand-in, with a short retry schedule) and the Reverse ETL scheduler with its
//! executor on the same NATS namespace, and a webhook destination delivering to a local
//! Standard Webhooks receiver. The listener runs on its own shutdown so a test can stop
//! it and start it again on the same database.

use crate::eventually;
use crate::stack::{start_stack, Stack, SERVICE_TOKEN};
use backflow_dbt_cloud_listener::stand_in::StandIn;
use backflow_dbt_cloud_listener::store::subscriptions::{SubscriptionRecord, SubscriptionStatus};
use backflow_dbt_cloud_listener::store::{ConnectionRecord, ConnectionStore};
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_proto::catalog::v1 as catalog;
use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_proto::retl::v1 as retl;
use backflow_retl_scheduler::destinations::test_support::webhook::WebhookReceiver;
use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use hmac::Mac;
use sqlx::Connection;
use std::time::Duration;

pub const GIT_TOKEN: &str = "ghp_DbtTriggersToken0123456789abcd";
pub const HMAC: &str = "It's a Secret to Everybody";
pub const CUSTOMERS: &str = "model.shop.customers";
/// The dbt Cloud API token the stand-in accepts (kept in credentials).
pub const DBT_TOKEN: &str = "dbtc_TriggersToken0123456789";

pub type Retl =
    retl::retl_scheduler_service_client::RetlSchedulerServiceClient<testing::AuthedChannel>;

const PROJECT: &[(&str, &str)] = &[
    (
        "dbt_project.yml",
        "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n",
    ),
    (
        "models/customers.sql",
        "select id, email from (values (1::bigint, 'a@example.com'::text), (2, 'b@example.com'), (3, 'c@example.com')) as t (id, email)",
    ),
    (
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: customers\n    columns:\n      - name: id\n        tests: [unique, not_null]\n      - name: email\n",
    ),
];

pub fn sign(body: &[u8]) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(HMAC.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

pub fn fixture(name: &str) -> anyhow::Result<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/payloads")
        .join(name);
    std::fs::read(&path).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

/// A signed-to-be `job.run.completed` for `run_id` of `job_id`, made from `template`
/// (the fixture's delivery) with its own event id.
pub fn delivery(template: &serde_json::Value, job_id: i64, run_id: i64) -> anyhow::Result<Vec<u8>> {
    let mut body = template.clone();
    body["eventId"] = format!("wev_{job_id}_{run_id}").into();
    body["data"]["jobId"] = job_id.to_string().into();
    body["data"]["runId"] = run_id.to_string().into();
    Ok(serde_json::to_vec(&body)?)
}

/// A dbt `run_results.json` (schema v5, `dbt build`) with these (unique id, status) nodes.
pub fn run_results(invocation_id: &str, nodes: &[(&str, &str)]) -> serde_json::Value {
    serde_json::json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v5.json",
            "dbt_version": "1.7.20",
            "generated_at": "2026-12-01T10:00:00.000000Z",
            "invocation_id": invocation_id,
            "env": {}
        },
        "results": nodes
            .iter()
            .map(|(id, status)| serde_json::json!({"unique_id": id, "status": status}))
            .collect::<Vec<_>>(),
        "elapsed_time": 1.5,
        "args": {"which": "build"}
    })
}

pub async fn post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> anyhow::Result<u16> {
    let mut request = reqwest::Client::new().post(url).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Ok(request.send().await?.status().as_u16())
}

/// The dbt Cloud listener, on its own shutdown.
pub struct RunningListener {
    pub http: String,
    pub store: ConnectionStore,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

impl RunningListener {
    async fn start(
        config: &serde_json::Value,
        nats: &backflow_platform::config::NatsConfig,
    ) -> anyhow::Result<Self> {
        let app =
            backflow_dbt_cloud_listener::App::build(serde_json::from_value(config.clone())?, nats)
                .await?;
        let http = format!(
            "http://{}",
            app.http_addr()
                .ok_or_else(|| anyhow::anyhow!("no listener http"))?
        );
        let store = app.connections().store().clone();
        let shutdown = Shutdown::new();
        let running = app.run(shutdown.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = running.await {
                eprintln!("dbt cloud listener failed: {error}");
            }
        });
        Ok(Self {
            http,
            store,
            shutdown,
            task,
        })
    }

    /// Stops it, abandoning whatever it was doing (a fetch in flight stays pending).
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Everything the scenario runs on.
pub struct World {
    pub stack: Stack,
    pub retl: Retl,
    pub listener_http: String,
    pub listener: Option<RunningListener>,
    listener_config: serde_json::Value,
    /// The dbt Cloud API stand-in the connections point at (account 1, job 123).
    pub cloud: StandIn,
    /// The unique ids of the `customers` model's tests, as the catalog has them.
    pub customers_tests: Vec<String>,
    pub receiver: WebhookReceiver,
    pub destination_id: String,
    pub retl_model_id: String,
}

/// The Git → catalog stack, the warehouse table, the Reverse ETL model, the listener
/// (one connection, subscriptions `sub-a` and `sub-b` on job 123 of account 1), the
/// scheduler with its executor, and a webhook destination.
pub async fn world(warehouse_port: u16) -> anyhow::Result<World> {
    let warehouse_url = testing::fresh_postgres_url("dbt_triggers_wh").await?;
    let database = warehouse_url
        .rsplit_once('/')
        .map(|(_, name)| name.to_string())
        .unwrap_or_default();
    let mut warehouse = sqlx::PgConnection::connect(&warehouse_url).await?;
    sqlx::raw_sql("CREATE SCHEMA analytics")
        .execute(&mut warehouse)
        .await?;
    let root = std::env::temp_dir().join(format!(
        "backflow-trig-repo-{}",
        backflow_platform::new_id()
    ));
    let repo = BareRepo::create_with(&root, "shop", PROJECT);
    let server = GitHttpServer::start(&root, GIT_TOKEN);
    // the server lives as long as the test process
    let url = server.url("shop");
    std::mem::forget(server);
    let mut stack = start_stack("ws-dbt-triggers").await?;
    let token_id = stack
        .create_secret("git token", credentials::SecretKind::GitToken, GIT_TOKEN)
        .await?;
    let source = stack
        .create_source_with(
            "shop-pg",
            catalog::WarehouseKind::Postgres,
            &[
                ("host", "127.0.0.1"),
                ("port", &warehouse_port.to_string()),
                ("database", &database),
                ("user", "postgres"),
                ("sslmode", "disable"),
            ],
            (
                credentials::SecretKind::WarehousePassword,
                "unused-with-trust",
            ),
            "",
            false,
        )
        .await?;
    let connection_id = stack
        .git_sync
        .create_connection(gitsync::CreateConnectionRequest {
            workspace_id: stack.workspace.clone(),
            name: "shop".into(),
            settings: Some(gitsync::ConnectionSettings {
                provider: gitsync::GitProvider::Github as i32,
                protocol: gitsync::GitProtocol::Https as i32,
                repository_url: url,
                branch: "main".into(),
                dbt_version: "1.7".into(),
                default_schema: "analytics".into(),
                project_path: String::new(),
                credential_id: token_id,
                warehouse_source_id: source.id.clone(),
                webhook_secret_credential_id: String::new(),
            }),
        })
        .await?
        .into_inner()
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))?
        .id;
    let models = stack
        .models_at_commit(&connection_id, &repo.head("main"))
        .await?;
    let customers = models
        .iter()
        .find(|m| m.unique_id == CUSTOMERS)
        .ok_or_else(|| anyhow::anyhow!("no customers model"))?;
    // the catalog knows the model's tests by id
    anyhow::ensure!(
        customers.test_unique_ids.len() == 2,
        "the catalog should list the two tests of customers: {customers:?}"
    );
    let customers_tests = customers.test_unique_ids.clone();
    sqlx::raw_sql(&format!(
        "CREATE TABLE {} AS {}",
        customers.relation_name, customers.compiled_sql
    ))
    .execute(&mut warehouse)
    .await?;
    let retl_model_id = stack
        .catalog
        .create_retl_model(catalog::CreateRetlModelRequest {
            workspace_id: stack.workspace.clone(),
            name: "customers".into(),
            connection_id: connection_id.clone(),
            model_unique_id: CUSTOMERS.into(),
            primary_key: vec!["id".into()],
            source_id: source.id.clone(),
            query_mode: catalog::QueryMode::Relation as i32,
        })
        .await?
        .into_inner()
        .model
        .ok_or_else(|| anyhow::anyhow!("no retl model"))?
        .id;

    // the listener, with its connection and two subscriptions on job 123
    let hmac_id = stack
        .create_secret("dbt webhook", credentials::SecretKind::WebhookSecret, HMAC)
        .await?;
    let cloud = StandIn::start(1, DBT_TOKEN).await?;
    // The subscriptions below are made by hand (one of them a second subscription on the
    // same job, which the listener would tidy away): dbt Cloud refusing webhook
    // management keeps the listener from touching them. Artifacts are served.
    cloud
        .cloud()
        .broken
        .insert(backflow_dbt_cloud_listener::stand_in::Endpoint::Webhooks);
    let dbt_token_id = stack
        .create_secret(
            "dbt cloud token",
            credentials::SecretKind::DbtCloudToken,
            DBT_TOKEN,
        )
        .await?;
    let listener_config = serde_json::json!({
        "database_url": testing::fresh_postgres_url("dbt_triggers_listener").await?,
        "grpc_listen": "127.0.0.1:0",
        "http_listen": "127.0.0.1:0",
        "credentials_url": stack.credentials_url,
        "service_token": SERVICE_TOKEN,
        "reconcile_interval_secs": 0,
        "artifact_fetch_retry_ms": [200, 400],
        "artifact_fetch_not_found_attempts": 2,
    });
    let listener = RunningListener::start(&listener_config, &stack.nats).await?;
    let listener_http = listener.http.clone();
    let store = listener.store.clone();
    for (connection, sub, webhook, job_id) in [
        ("conn-1", "sub-a", "wsu_12345abcde", 123),
        ("conn-2", "sub-b", "", 123),
        ("conn-3", "sub-idle", "", 999),
    ] {
        store
            .create(&ConnectionRecord {
                id: connection.into(),
                workspace_id: stack.workspace.clone(),
                name: connection.into(),
                access_url: cloud.base_url.clone(),
                account_id: 1,
                api_token_credential_id: dbt_token_id.clone(),
                created_at_ms: 0,
                last_test: None,
            })
            .await?;
        store
            .create_subscription(&SubscriptionRecord {
                id: sub.into(),
                workspace_id: stack.workspace.clone(),
                connection_id: connection.into(),
                job_id,
                dbt_webhook_id: webhook.into(),
                hmac_secret_credential_id: hmac_id.clone(),
                created_at_ms: 0,
                status: SubscriptionStatus::Active,
                client_url: String::new(),
            })
            .await?;
    }

    // the scheduler with its executor
    let scheduler = backflow_retl_scheduler::App::build(
        serde_json::from_value(serde_json::json!({
            "database_url": testing::fresh_postgres_url("dbt_triggers_retl").await?,
            "grpc_listen": "127.0.0.1:0",
            "credentials_url": stack.credentials_url,
            "catalog_url": stack.catalog_url,
            "service_token": SERVICE_TOKEN,
            "tick_poll_ms": 200,
        }))?,
        &stack.nats,
    )
    .await?;
    let retl_addr = scheduler
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no scheduler addr"))?;
    stack.spawn(|shutdown| scheduler.run(shutdown));
    let mut retl =
        Retl::new(testing::authed_channel(&format!("http://{retl_addr}"), &stack.token).await?);
    let receiver = WebhookReceiver::start(None).await;
    let destination_id = retl
        .create_destination(retl::CreateDestinationRequest {
            workspace_id: stack.workspace.clone(),
            name: "hook".into(),
            kind: retl::DestinationKind::Webhook as i32,
            settings: [("url".to_string(), receiver.url())].into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .destination
        .ok_or_else(|| anyhow::anyhow!("no destination"))?
        .id;
    Ok(World {
        stack,
        retl,
        listener_http,
        listener: Some(listener),
        listener_config,
        cloud,
        customers_tests,
        receiver,
        destination_id,
        retl_model_id,
    })
}

impl World {
    /// Stops the listener and starts it again on the same database (a new http port).
    pub async fn restart_listener(&mut self) -> anyhow::Result<()> {
        if let Some(listener) = self.listener.take() {
            listener.stop().await;
        }
        let listener = RunningListener::start(&self.listener_config, &self.stack.nats).await?;
        self.listener_http = listener.http.clone();
        self.listener = Some(listener);
        Ok(())
    }

    /// The listener's database (it outlives a stopped listener).
    pub fn listener_database_url(&self) -> String {
        self.listener_config["database_url"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn listener_store(&self) -> anyhow::Result<&ConnectionStore> {
        self.listener
            .as_ref()
            .map(|listener| &listener.store)
            .ok_or_else(|| anyhow::anyhow!("the listener is stopped"))
    }

    /// Waits until the listener knows that `syncs` enabled syncs wait on `job_id` (it
    /// learns it from the scheduler's sync events).
    pub async fn listener_knows(&self, job_id: i64, syncs: usize) -> anyhow::Result<()> {
        let store = self.listener_store()?.clone();
        eventually(
            Duration::from_secs(60),
            &format!("the listener to know {syncs} syncs on job {job_id}"),
            || {
                let store = store.clone();
                async move {
                    let jobs = store.watched_jobs().await.ok()?;
                    jobs.iter()
                        .any(|job| job.key.job_id == job_id && job.sync_ids.len() == syncs)
                        .then_some(())
                }
            },
        )
        .await
    }

    /// Stops the listener and the stack.
    pub async fn stop(mut self) {
        if let Some(listener) = self.listener.take() {
            listener.stop().await;
        }
        self.stack.stop().await;
    }

    pub async fn sync(
        &mut self,
        name: &str,
        kind: retl::schedule::Kind,
        only_if_model_rebuilt: bool,
    ) -> anyhow::Result<String> {
        Ok(self
            .retl
            .create_sync(retl::CreateSyncRequest {
                workspace_id: self.stack.workspace.clone(),
                name: name.into(),
                retl_model_id: self.retl_model_id.clone(),
                destination_id: self.destination_id.clone(),
                mode: retl::SyncMode::Upsert as i32,
                mappings: vec![retl::FieldMapping {
                    source_column: "email".into(),
                    destination_field: "email".into(),
                    ..Default::default()
                }],
                schedule: Some(retl::Schedule { kind: Some(kind) }),
                only_if_model_rebuilt,
                ..Default::default()
            })
            .await?
            .into_inner()
            .sync
            .ok_or_else(|| anyhow::anyhow!("no sync"))?
            .id)
    }

    pub async fn runs(&mut self, sync_id: &str) -> anyhow::Result<Vec<retl::Run>> {
        Ok(self
            .retl
            .list_runs(retl::ListRunsRequest {
                workspace_id: self.stack.workspace.clone(),
                sync_id: sync_id.into(),
                limit: 50,
            })
            .await?
            .into_inner()
            .runs)
    }

    /// Waits until `sync_id` has a run of `cause` in a finished state; returns it.
    pub async fn finished_run(&self, sync_id: &str, cause: &str) -> anyhow::Result<retl::Run> {
        let retl = self.retl.clone();
        let workspace = self.stack.workspace.clone();
        eventually(
            Duration::from_secs(120),
            &format!("a finished run of {cause}"),
            || {
                let (mut retl, workspace) = (retl.clone(), workspace.clone());
                async move {
                    let runs = retl
                        .list_runs(retl::ListRunsRequest {
                            workspace_id: workspace,
                            sync_id: sync_id.into(),
                            limit: 50,
                        })
                        .await
                        .ok()?
                        .into_inner()
                        .runs;
                    runs.into_iter().find(|run| {
                        run.cause_id == cause
                            && [
                                retl::RunStatus::Succeeded as i32,
                                retl::RunStatus::Failed as i32,
                                retl::RunStatus::Skipped as i32,
                            ]
                            .contains(&run.status)
                    })
                }
            },
        )
        .await
    }

    pub async fn get_run(&mut self, run_id: &str) -> anyhow::Result<retl::Run> {
        self.retl
            .get_run(retl::GetRunRequest {
                workspace_id: self.stack.workspace.clone(),
                run_id: run_id.into(),
            })
            .await?
            .into_inner()
            .run
            .ok_or_else(|| anyhow::anyhow!("no run"))
    }
}
