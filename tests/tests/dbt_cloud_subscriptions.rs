//! The dbt Cloud side of the listener against the local dbt Cloud API stand-in
//! (issue 11, acceptance 3), with the real credentials service holding the API token
//! and the webhook secrets, PostgreSQL under the listener and real NATS:
//!
//! - connecting checks the token and account and says what is wrong (401, 403, a 404
//!   that means a missing permission, an unreachable host); `TestConnection` stores it;
//! - jobs are listed across pages of at most 100, runs with their status codes;
//! - `SyncChangedEvent`s published to NATS create one webhook subscription per job
//!   (reused by a second sync and under redelivery, adopted after a crash between the
//!   dbt Cloud call and the local write) and delete it when no enabled sync waits on it;
//! - a delivery from the stand-in announces its run once, and reconciliation announces
//!   a run whose webhook never arrived exactly once (a late webhook adds nothing);
//! - without a public URL nothing is created and the subscription says why.

use backflow_dbt_cloud_listener::stand_in::{Endpoint, StandIn};
use backflow_dbt_cloud_listener::store::{SubscriptionRecord, SubscriptionStatus};
use backflow_platform::bus::Bus;
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_proto::credentials::v1 as credentials;
use backflow_proto::dbtcloud::v1 as pb;
use backflow_proto::retl::v1::{DbtCloudJobSchedule, SyncChangedEvent};
use backflow_tests::eventually;
use pb::dbt_cloud_listener_service_client::DbtCloudListenerServiceClient;
use prost::Message;
use secrecy::ExposeSecret;
use std::time::Duration;
use tonic::Code;

const SERVICE_TOKEN: &str = "svc-DbtSubscriptionsServiceToken";
const WS: &str = "ws-dbt-subs";
const ACCOUNT: i64 = 123_456;
const TOKEN: &str = "dbtc_stand_in_token";
const WAIT: Duration = Duration::from_secs(20);

type Grpc = DbtCloudListenerServiceClient<testing::AuthedChannel>;
type Secrets =
    credentials::credentials_service_client::CredentialsServiceClient<testing::AuthedChannel>;

struct Setup {
    cloud: StandIn,
    grpc: Grpc,
    secrets: Secrets,
    bus: Bus,
    db: sqlx::PgPool,
    store: backflow_dbt_cloud_listener::store::ConnectionStore,
    token_secret: String,
    /// `http://127.0.0.1:<http port>`, when the listener has one.
    public_url: String,
    shutdown: Shutdown,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start(with_public_url: bool, reconcile_interval_secs: u64) -> anyhow::Result<Setup> {
    let cloud = StandIn::start(ACCOUNT, TOKEN).await?;
    for id in 1..=250 {
        cloud.add_job(id, &format!("job {id}"), if id % 2 == 0 { 7 } else { 8 });
    }
    let nats = testing::fresh_nats("dbtsubs");
    let dir =
        std::env::temp_dir().join(format!("backflow-dbtsubs-{}", backflow_platform::new_id()));
    std::fs::create_dir_all(&dir)?;
    let credentials_config: backflow_credentials::Config =
        serde_json::from_value(serde_json::json!({
            "database_url": format!("sqlite://{}/credentials.db", dir.display()),
            "grpc_listen": "127.0.0.1:0",
            "master_key_file": dir.join("master.key").display().to_string(),
            "create_master_key_if_missing": true,
            "service_tokens": [SERVICE_TOKEN],
        }))?;
    let credentials_app = backflow_credentials::App::build(credentials_config, &nats).await?;
    let credentials_url = format!(
        "http://{}",
        credentials_app
            .grpc_addr()
            .ok_or_else(|| anyhow::anyhow!("no credentials addr"))?
    );
    let admin_token = credentials_app
        .tokens()
        .create(Some(WS), backflow_platform::auth::Role::Admin, "ci")
        .await?
        .token;
    let shutdown = Shutdown::new();
    tokio::spawn(credentials_app.run(shutdown.clone()));
    let port = free_port()?;
    let database_url = testing::fresh_postgres_url("dbtsubs").await?;
    let mut config =
        backflow_dbt_cloud_listener::Config::new(&database_url, &credentials_url, SERVICE_TOKEN);
    config.http_listen = format!("127.0.0.1:{port}");
    let public_url = format!("http://127.0.0.1:{port}");
    config.public_url = if with_public_url {
        format!("{public_url}/")
    } else {
        String::new()
    };
    config.reconcile_interval_secs = reconcile_interval_secs;
    // The stand-in and a closed port are the only non-dbt hosts allowed.
    config.allowed_access_urls = vec![cloud.base_url.clone(), "http://127.0.0.1:1".into()];
    let listener_app = backflow_dbt_cloud_listener::App::build(config, &nats).await?;
    let grpc_addr = listener_app
        .grpc_addr()
        .ok_or_else(|| anyhow::anyhow!("no grpc addr"))?;
    let store = listener_app.connections().store().clone();
    tokio::spawn(listener_app.run(shutdown.clone()));
    let grpc = DbtCloudListenerServiceClient::new(
        testing::authed_channel(&format!("http://{grpc_addr}"), &admin_token).await?,
    );
    let mut secrets = credentials::credentials_service_client::CredentialsServiceClient::new(
        testing::authed_channel(&credentials_url, &admin_token).await?,
    );
    let token_secret = secrets
        .create_secret(credentials::CreateSecretRequest {
            workspace_id: WS.into(),
            name: "dbt cloud token".into(),
            kind: credentials::SecretKind::DbtCloudToken as i32,
            material: TOKEN.as_bytes().to_vec(),
            attributes: Default::default(),
        })
        .await?
        .into_inner()
        .secret
        .ok_or_else(|| anyhow::anyhow!("no secret"))?
        .id;
    Ok(Setup {
        cloud,
        grpc,
        secrets,
        bus: Bus::connect(&nats).await?,
        db: sqlx::PgPool::connect(&database_url).await?,
        store,
        token_secret,
        public_url,
        shutdown,
    })
}

fn create_request(name: &str, access_url: &str, credential: &str) -> pb::CreateConnectionRequest {
    pb::CreateConnectionRequest {
        workspace_id: WS.into(),
        name: name.into(),
        access_url: access_url.into(),
        account_id: ACCOUNT,
        api_token_credential_id: credential.into(),
    }
}

async fn connect(setup: &mut Setup) -> anyhow::Result<pb::Connection> {
    let request = create_request(
        "prod",
        &setup.cloud.base_url.clone(),
        &setup.token_secret.clone(),
    );
    setup
        .grpc
        .create_connection(request)
        .await?
        .into_inner()
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))
}

async fn publish_sync(
    setup: &Setup,
    message_id: &str,
    sync: &str,
    version: i64,
    enabled: bool,
    job: i64,
) -> anyhow::Result<()> {
    let event = SyncChangedEvent {
        workspace_id: WS.into(),
        sync_id: sync.into(),
        retl_model_id: "model-1".into(),
        enabled,
        deleted: false,
        used_columns: vec!["id".into()],
        version,
        sync_name: format!("sync {sync}"),
        after_dbt_cloud_job: Some(DbtCloudJobSchedule {
            account_id: ACCOUNT,
            job_id: job,
        }),
    };
    setup
        .bus
        .publish(
            &backflow_proto::subjects::SYNC_CHANGED.for_id(sync),
            message_id,
            event.encode_to_vec().into(),
        )
        .await?;
    Ok(())
}

async fn subscriptions(setup: &mut Setup) -> anyhow::Result<Vec<pb::WebhookSubscription>> {
    Ok(setup
        .grpc
        .list_subscriptions(pb::ListSubscriptionsRequest {
            workspace_id: WS.into(),
            connection_id: String::new(),
        })
        .await?
        .into_inner()
        .subscriptions)
}

/// Run-completed events written to the outbox, per run id.
async fn announced_runs(db: &sqlx::PgPool) -> anyhow::Result<Vec<i64>> {
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT payload FROM platform_outbox WHERE subject LIKE 'evt.dbt.run.completed.%' ORDER BY id",
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(payload,)| Ok(pb::RunCompletedEvent::decode(payload.as_slice())?.run_id))
        .collect()
}

async fn secret_names(setup: &mut Setup) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = setup
        .secrets
        .list_secrets(credentials::ListSecretsRequest {
            workspace_id: WS.into(),
        })
        .await?
        .into_inner()
        .secrets
        .into_iter()
        .map(|secret| secret.name)
        .filter(|name| name.starts_with("dbt-cloud-webhook-"))
        .collect();
    names.sort();
    Ok(names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_says_what_is_wrong_and_lists_jobs_and_runs() -> anyhow::Result<()> {
    let mut setup = start(true, 1).await?;
    let base = setup.cloud.base_url.clone();
    let good = setup.token_secret.clone();

    // A wrong token: 401, nothing stored.
    let wrong = setup
        .secrets
        .create_secret(credentials::CreateSecretRequest {
            workspace_id: WS.into(),
            name: "wrong token".into(),
            kind: credentials::SecretKind::DbtCloudToken as i32,
            material: b"dbtc_wrong".to_vec(),
            attributes: Default::default(),
        })
        .await?
        .into_inner()
        .secret
        .ok_or_else(|| anyhow::anyhow!("no secret"))?
        .id;
    let refused = setup
        .grpc
        .create_connection(create_request("prod", &base, &wrong))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a wrong token was accepted"))?;
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused
            .message()
            .contains("refused the api token (401: Invalid token.)"),
        "{}",
        refused.message()
    );

    // A token that may not see the jobs (dbt answers 404), or may not manage webhooks (403).
    setup.cloud.cloud().hidden.insert(Endpoint::Jobs);
    let hidden = setup
        .grpc
        .create_connection(create_request("prod", &base, &good))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a token without job access was accepted"))?;
    assert_eq!(hidden.code(), Code::FailedPrecondition);
    assert!(
        hidden
            .message()
            .contains("answered 404 when asked to list the jobs of account 123456"),
        "{}",
        hidden.message()
    );
    assert!(
        hidden.message().contains("lacks a permission"),
        "{}",
        hidden.message()
    );
    setup.cloud.cloud().hidden.clear();
    setup.cloud.cloud().forbidden.insert(Endpoint::Webhooks);
    let forbidden = setup
        .grpc
        .create_connection(create_request("prod", &base, &good))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a token without webhook access was accepted"))?;
    assert!(
        forbidden
            .message()
            .contains("may not manage the webhook subscriptions"),
        "{}",
        forbidden.message()
    );
    setup.cloud.cloud().forbidden.clear();

    // An account the token does not belong to: 404 on the account.
    let mut other_account = create_request("prod", &base, &good);
    other_account.account_id = 999;
    let missing = setup.grpc.create_connection(other_account).await.err();
    assert!(missing.is_some_and(
        |s| s.message().contains("account 999") && s.code() == Code::FailedPrecondition
    ));

    // A host that cannot be reached.
    let unreachable = setup
        .grpc
        .create_connection(create_request("prod", "http://127.0.0.1:1", &good))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("an unreachable host was accepted"))?;
    assert!(
        unreachable
            .message()
            .starts_with("cannot reach dbt cloud at http://127.0.0.1:1"),
        "{}",
        unreachable.message()
    );
    let listed = setup
        .grpc
        .list_connections(pb::ListConnectionsRequest {
            workspace_id: WS.into(),
        })
        .await?
        .into_inner()
        .connections;
    assert!(
        listed.is_empty(),
        "refused connections were stored: {listed:?}"
    );

    // Rate limited once on the way: the client waits and goes on.
    {
        let mut cloud = setup.cloud.cloud();
        cloud.rate_limit_next = 1;
        cloud.retry_after = Some("1".into());
    }
    let started = std::time::Instant::now();
    let connection = connect(&mut setup).await?;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retry-after was not honoured"
    );
    let test = connection
        .last_test
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no last test"))?;
    assert!(test.ok && test.account_name == "Jaffle Shop", "{test:?}");

    // Every job, in pages of at most 100.
    setup.cloud.cloud().calls.clear();
    let jobs = setup
        .grpc
        .list_jobs(pb::ListJobsRequest {
            workspace_id: WS.into(),
            connection_id: connection.id.clone(),
            project_id: 0,
        })
        .await?
        .into_inner()
        .jobs;
    assert_eq!(jobs.len(), 250);
    assert_eq!(
        (
            jobs[0].id,
            jobs[0].name.as_str(),
            jobs[0].job_type.as_str(),
            jobs[0].state
        ),
        (1, "job 1", "scheduled", 1)
    );
    assert_eq!(
        setup.cloud.calls_like("GET jobs"),
        vec![
            "GET jobs?limit=100&offset=0".to_string(),
            "GET jobs?limit=100&offset=100".to_string(),
            "GET jobs?limit=100&offset=200".to_string(),
        ]
    );
    let project = setup
        .grpc
        .list_jobs(pb::ListJobsRequest {
            workspace_id: WS.into(),
            connection_id: connection.id.clone(),
            project_id: 7,
        })
        .await?
        .into_inner()
        .jobs;
    assert_eq!(project.len(), 125);
    assert!(project.iter().all(|job| job.project_id == 7));

    // Runs, newest first, every status code.
    for status in [1, 2, 3, 10, 20, 30] {
        setup.cloud.add_run(4, status);
    }
    let runs = setup
        .grpc
        .list_job_runs(pb::ListJobRunsRequest {
            workspace_id: WS.into(),
            connection_id: connection.id.clone(),
            job_id: 4,
            limit: 0,
        })
        .await?
        .into_inner()
        .runs;
    let statuses: Vec<(i64, &str)> = runs
        .iter()
        .map(|r| (r.status_code, r.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (30, "Cancelled"),
            (20, "Error"),
            (10, "Success"),
            (3, "Running"),
            (2, "Starting"),
            (1, "Queued")
        ]
    );
    assert!(
        runs[0].href.contains("/runs/")
            && !runs[0].finished_at.is_empty()
            && runs[3].finished_at.is_empty()
    );

    // Testing again after the token was revoked: the outcome is stored as last_test.
    setup.cloud.cloud().token = "dbtc_rotated".into();
    let result = setup
        .grpc
        .test_connection(pb::TestConnectionRequest {
            workspace_id: WS.into(),
            connection_id: connection.id.clone(),
        })
        .await?
        .into_inner()
        .result
        .ok_or_else(|| anyhow::anyhow!("no result"))?;
    assert!(!result.ok);
    assert_eq!(
        result.problem,
        pb::ConnectionProblem::Unauthenticated as i32
    );
    let stored = setup
        .grpc
        .get_connection(pb::GetConnectionRequest {
            workspace_id: WS.into(),
            connection_id: connection.id.clone(),
        })
        .await?
        .into_inner()
        .connection
        .and_then(|c| c.last_test);
    assert_eq!(stored, Some(result));
    let jobs_now = setup
        .grpc
        .list_jobs(pb::ListJobsRequest {
            workspace_id: WS.into(),
            connection_id: connection.id.clone(),
            project_id: 0,
        })
        .await
        .err();
    assert_eq!(jobs_now.map(|s| s.code()), Some(Code::FailedPrecondition));
    setup.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_events_keep_one_subscription_per_job_and_missed_runs_are_reconciled(
) -> anyhow::Result<()> {
    let mut setup = start(true, 1).await?;
    let connection = connect(&mut setup).await?;

    // A sync waits on job 4: one subscription, pointing at Backflow, secret kept.
    publish_sync(&setup, "m1", "s1", 1, true, 4).await?;
    let cloud = setup.cloud.clone();
    let created = eventually(WAIT, "a subscription in dbt cloud", || {
        let cloud = cloud.clone();
        async move { (cloud.subscriptions().len() == 1).then(|| cloud.subscriptions()[0].clone()) }
    })
    .await?;
    assert_eq!(created["job_ids"], serde_json::json!(["4"]));
    assert_eq!(
        created["event_types"],
        serde_json::json!(["job.run.completed"])
    );
    let listed = eventually(WAIT, "the subscription active", || {
        let mut grpc = setup.grpc.clone();
        async move {
            let subs = grpc
                .list_subscriptions(pb::ListSubscriptionsRequest {
                    workspace_id: WS.into(),
                    connection_id: String::new(),
                })
                .await
                .ok()?
                .into_inner()
                .subscriptions;
            subs.into_iter().find(|s| s.state == "active")
        }
    })
    .await?;
    assert_eq!(
        listed.dbt_webhook_id,
        created["id"].as_str().unwrap_or_default()
    );
    assert_eq!(
        listed.url,
        created["client_url"].as_str().unwrap_or_default()
    );
    assert!(listed
        .url
        .ends_with(&format!("/webhooks/dbt-cloud/{}", listed.id)));
    assert_eq!(
        (
            listed.sync_ids.clone(),
            listed.job_id,
            listed.connection_id.clone()
        ),
        (vec!["s1".to_string()], 4, connection.id.clone())
    );
    assert_eq!(listed.problem, "");
    assert_eq!(
        secret_names(&mut setup).await?,
        vec![format!("dbt-cloud-webhook-{}", listed.dbt_webhook_id)]
    );

    // The same event again, and a second sync on the same job: still one subscription.
    publish_sync(&setup, "m1-again", "s1", 1, true, 4).await?;
    publish_sync(&setup, "m2", "s2", 1, true, 4).await?;
    eventually(WAIT, "both syncs listed on the subscription", || {
        let mut setup_grpc = setup.grpc.clone();
        async move {
            let subs = setup_grpc
                .list_subscriptions(pb::ListSubscriptionsRequest {
                    workspace_id: WS.into(),
                    connection_id: String::new(),
                })
                .await
                .ok()?
                .into_inner()
                .subscriptions;
            (subs.len() == 1 && subs[0].sync_ids.len() == 2).then_some(())
        }
    })
    .await?;
    assert_eq!(setup.cloud.subscriptions().len(), 1);
    assert_eq!(setup.cloud.calls_like("POST subscription").len(), 1);

    // dbt Cloud delivers a successful run: announced once.
    let delivered = setup.cloud.add_run(4, 10);
    let answers = setup.cloud.deliver(delivered).await;
    assert_eq!(
        answers
            .iter()
            .map(|(_, status)| *status)
            .collect::<Vec<_>>(),
        vec![200]
    );
    // A run whose webhook never arrives: reconciliation announces it, once.
    let missed = setup.cloud.add_run(4, 10);
    let failed = setup.cloud.add_run(4, 20);
    let db = setup.db.clone();
    eventually(WAIT, "the missed run announced", || {
        let db = db.clone();
        async move {
            announced_runs(&db)
                .await
                .ok()
                .filter(|runs| runs.contains(&missed))
        }
    })
    .await?;
    // Two more passes: nothing new.
    let calls_before = setup.cloud.calls_like("GET runs").len();
    let cloud = setup.cloud.clone();
    eventually(WAIT, "two more reconciliation passes", || {
        let cloud = cloud.clone();
        async move { (cloud.calls_like("GET runs").len() >= calls_before + 2).then_some(()) }
    })
    .await?;
    assert_eq!(announced_runs(&setup.db).await?, vec![delivered, missed]);
    assert!(!announced_runs(&setup.db).await?.contains(&failed));
    // The missed run's webhook arrives late after all: recorded, not announced again.
    assert_eq!(
        setup
            .cloud
            .deliver(missed)
            .await
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>(),
        vec![200]
    );
    assert_eq!(announced_runs(&setup.db).await?, vec![delivered, missed]);
    let (vias,): (String,) =
        sqlx::query_as("SELECT string_agg(via, ',' ORDER BY run_id) FROM dbt_announced_runs")
            .fetch_one(&setup.db)
            .await?;
    assert_eq!(vias, "webhook,poll");

    // One sync paused: the subscription stays for the other; both gone: deleted.
    publish_sync(&setup, "m3", "s1", 2, false, 4).await?;
    let grpc = setup.grpc.clone();
    eventually(WAIT, "one sync left on the subscription", || {
        let mut grpc = grpc.clone();
        async move {
            let subs = grpc
                .list_subscriptions(pb::ListSubscriptionsRequest {
                    workspace_id: WS.into(),
                    connection_id: String::new(),
                })
                .await
                .ok()?
                .into_inner()
                .subscriptions;
            (subs.len() == 1 && subs[0].sync_ids == ["s2"]).then_some(())
        }
    })
    .await?;
    assert_eq!(setup.cloud.subscriptions().len(), 1);
    publish_sync(&setup, "m4", "s2", 2, false, 4).await?;
    let cloud = setup.cloud.clone();
    eventually(WAIT, "the subscription deleted in dbt cloud", || {
        let cloud = cloud.clone();
        async move { cloud.subscriptions().is_empty().then_some(()) }
    })
    .await?;
    eventually(WAIT, "the subscription deleted locally", || {
        let mut grpc = grpc.clone();
        async move {
            grpc.list_subscriptions(pb::ListSubscriptionsRequest {
                workspace_id: WS.into(),
                connection_id: String::new(),
            })
            .await
            .ok()?
            .into_inner()
            .subscriptions
            .is_empty()
            .then_some(())
        }
    })
    .await?;
    assert!(secret_names(&mut setup).await?.is_empty());
    setup.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_made_just_before_a_crash_is_found_by_its_url() -> anyhow::Result<()> {
    // No periodic sweep: the crash state below is written by hand before any event.
    let mut setup = start(true, 0).await?;
    let connection = backflow_dbt_cloud_listener::store::ConnectionRecord {
        id: "conn-crash".into(),
        workspace_id: WS.into(),
        name: "prod".into(),
        access_url: setup.cloud.base_url.clone(),
        account_id: ACCOUNT,
        api_token_credential_id: setup.token_secret.clone(),
        created_at_ms: 1,
        last_test: None,
    };
    setup.store.create(&connection).await?;
    assert!(subscriptions(&mut setup).await?.is_empty());
    let api = backflow_dbt_cloud_listener::api::DbtCloudClient::new(
        &setup.cloud.base_url,
        ACCOUNT,
        TOKEN.to_string().into(),
    );
    let mut made = Vec::new();
    for (row_id, job) in [("crash-kept", 11_i64), ("crash-lost", 12_i64)] {
        let url = format!("{}/webhooks/dbt-cloud/{row_id}", setup.public_url);
        setup
            .store
            .create_subscription(&SubscriptionRecord {
                id: row_id.into(),
                workspace_id: WS.into(),
                connection_id: connection.id.clone(),
                job_id: job,
                dbt_webhook_id: String::new(),
                hmac_secret_credential_id: String::new(),
                created_at_ms: 1,
                status: SubscriptionStatus::Pending,
                client_url: url.clone(),
            })
            .await?;
        let sub = api
            .create_subscription(&backflow_dbt_cloud_listener::api::SubscriptionRequest {
                event_types: vec!["job.run.completed".into()],
                name: format!("Backflow: job {job}"),
                client_url: url,
                active: true,
                description: String::new(),
                job_ids: vec![job],
            })
            .await?;
        made.push(sub.id.clone());
        if row_id == "crash-kept" {
            setup
                .secrets
                .create_secret(credentials::CreateSecretRequest {
                    workspace_id: WS.into(),
                    name: format!("dbt-cloud-webhook-{}", sub.id),
                    kind: credentials::SecretKind::WebhookSecret as i32,
                    material: sub
                        .hmac_secret
                        .as_ref()
                        .map(|secret| secret.expose_secret().as_bytes().to_vec())
                        .unwrap_or_default(),
                    attributes: Default::default(),
                })
                .await?;
        }
    }
    setup.cloud.cloud().calls.clear();
    publish_sync(&setup, "c1", "s11", 1, true, 11).await?;
    publish_sync(&setup, "c2", "s12", 1, true, 12).await?;
    let grpc = setup.grpc.clone();
    let active = eventually(WAIT, "both rows active", || {
        let mut grpc = grpc.clone();
        async move {
            let subs = grpc
                .list_subscriptions(pb::ListSubscriptionsRequest {
                    workspace_id: WS.into(),
                    connection_id: String::new(),
                })
                .await
                .ok()?
                .into_inner()
                .subscriptions;
            (subs.len() == 2 && subs.iter().all(|s| s.state == "active")).then_some(subs)
        }
    })
    .await?;
    // Kept secret: adopted, nothing created. Lost secret: deleted and made again.
    assert_eq!(active[0].id, "crash-kept");
    assert_eq!(active[0].dbt_webhook_id, made[0]);
    assert_eq!(active[1].id, "crash-lost");
    assert_ne!(active[1].dbt_webhook_id, made[1]);
    assert_eq!(setup.cloud.calls_like("POST subscription").len(), 1);
    assert_eq!(
        setup.cloud.calls_like("DELETE subscription"),
        vec![format!("DELETE subscription {}", made[1])]
    );
    assert_eq!(setup.cloud.subscriptions().len(), 2);
    // Both deliver.
    let run = setup.cloud.add_run(11, 10);
    assert_eq!(
        setup
            .cloud
            .deliver(run)
            .await
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>(),
        vec![200]
    );
    let run = setup.cloud.add_run(12, 10);
    assert_eq!(
        setup
            .cloud
            .deliver(run)
            .await
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>(),
        vec![200]
    );
    setup.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_public_url_nothing_is_created_and_the_subscription_says_why(
) -> anyhow::Result<()> {
    let mut setup = start(false, 1).await?;
    connect(&mut setup).await?;
    publish_sync(&setup, "p1", "s1", 1, true, 4).await?;
    let grpc = setup.grpc.clone();
    let pending = eventually(WAIT, "the job listed with its problem", || {
        let mut grpc = grpc.clone();
        async move {
            let subs = grpc
                .list_subscriptions(pb::ListSubscriptionsRequest {
                    workspace_id: WS.into(),
                    connection_id: String::new(),
                })
                .await
                .ok()?
                .into_inner()
                .subscriptions;
            subs.into_iter()
                .find(|s| s.problem.contains("public_url is not set"))
        }
    })
    .await?;
    assert_eq!(
        (pending.state.as_str(), pending.job_id, pending.id.as_str()),
        ("pending", 4, "")
    );
    assert!(setup.cloud.subscriptions().is_empty());
    // Reconciliation still finds successful runs by polling.
    let run = setup.cloud.add_run(4, 10);
    let db = setup.db.clone();
    eventually(WAIT, "the run announced by polling", || {
        let db = db.clone();
        async move { announced_runs(&db).await.ok().filter(|runs| runs == &[run]) }
    })
    .await?;
    setup.shutdown.cancel();
    Ok(())
}
