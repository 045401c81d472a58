//! dbt Cloud webhooks and dbt Core notifications through the real listener: the
//! credentials service holds the subscription's HMAC secret and verifies API tokens,
//! the listener stores on PostgreSQL and publishes through its outbox to NATS.
//! Signatures (issue 11, acceptance 1), de-duplication of the same delivery and of two
//! subscriptions delivering one run (acceptance 2), errored runs recorded but not
//! announced, and the dbt Core endpoint's token rules.

use backflow_dbt_cloud_listener::store::subscriptions::{SubscriptionRecord, SubscriptionStatus};
use backflow_dbt_cloud_listener::store::ConnectionRecord;
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_proto::credentials::v1 as credentials;
use backflow_tests::eventually;
use hmac::Mac;
use std::time::Duration;

const SERVICE_TOKEN: &str = "svc-DbtWebhookServiceToken";
const SECRET: &str = "It's a Secret to Everybody";
const WS: &str = "ws-dbt";

struct Listener {
    base: String,
    db: sqlx::PgPool,
    shutdown: Shutdown,
    admin_token: String,
    viewer_token: String,
}

fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn start() -> anyhow::Result<Listener> {
    let nats = testing::fresh_nats("dbtwh");
    let dir = std::env::temp_dir().join(format!("backflow-dbtwh-{}", backflow_platform::new_id()));
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
    let viewer_token = credentials_app
        .tokens()
        .create(Some(WS), backflow_platform::auth::Role::Viewer, "ro")
        .await?
        .token;
    let shutdown = Shutdown::new();
    tokio::spawn(credentials_app.run(shutdown.clone()));
    let database_url = testing::fresh_postgres_url("dbtwh").await?;
    let listener_app = backflow_dbt_cloud_listener::App::build(
        backflow_dbt_cloud_listener::Config {
            // Rows made by hand below: no sweep may tidy them away.
            reconcile_interval_secs: 0,
            ..backflow_dbt_cloud_listener::Config::new(
                &database_url,
                &credentials_url,
                SERVICE_TOKEN,
            )
        },
        &nats,
    )
    .await?;
    let base = format!(
        "http://{}",
        listener_app
            .http_addr()
            .ok_or_else(|| anyhow::anyhow!("no http addr"))?
    );
    let mut secrets = credentials::credentials_service_client::CredentialsServiceClient::new(
        testing::authed_channel(&credentials_url, SERVICE_TOKEN).await?,
    );
    let hmac_secret = secrets
        .create_secret(credentials::CreateSecretRequest {
            workspace_id: WS.into(),
            name: "dbt webhook".into(),
            kind: credentials::SecretKind::WebhookSecret as i32,
            material: SECRET.as_bytes().to_vec(),
            attributes: Default::default(),
        })
        .await?
        .into_inner()
        .secret
        .ok_or_else(|| anyhow::anyhow!("no secret"))?
        .id;
    let store = listener_app.connections().store().clone();
    store
        .create(&ConnectionRecord {
            id: "conn-1".into(),
            workspace_id: WS.into(),
            name: "prod".into(),
            access_url: "https://cloud.getdbt.com".into(),
            account_id: 1,
            api_token_credential_id: "unused".into(),
            created_at_ms: 0,
            last_test: None,
        })
        .await?;
    for (id, webhook) in [("sub-a", "wsu_12345abcde"), ("sub-b", "")] {
        let connection_id = if id == "sub-a" { "conn-1" } else { "conn-2" };
        if connection_id == "conn-2" {
            store
                .create(&ConnectionRecord {
                    id: "conn-2".into(),
                    workspace_id: WS.into(),
                    name: "second".into(),
                    access_url: "https://cloud.getdbt.com".into(),
                    account_id: 1,
                    api_token_credential_id: "unused".into(),
                    created_at_ms: 0,
                    last_test: None,
                })
                .await?;
        }
        store
            .create_subscription(&SubscriptionRecord {
                id: id.into(),
                workspace_id: WS.into(),
                connection_id: connection_id.into(),
                job_id: 123,
                dbt_webhook_id: webhook.into(),
                hmac_secret_credential_id: hmac_secret.clone(),
                created_at_ms: 0,
                status: SubscriptionStatus::Active,
                client_url: String::new(),
            })
            .await?;
    }
    tokio::spawn(listener_app.run(shutdown.clone()));
    Ok(Listener {
        base,
        db: sqlx::PgPool::connect(&database_url).await?,
        shutdown,
        admin_token,
        viewer_token,
    })
}

async fn post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> anyhow::Result<u16> {
    let client = reqwest::Client::new();
    let mut request = client.post(url).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Ok(request.send().await?.status().as_u16())
}

fn fixture(name: &str) -> anyhow::Result<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/payloads")
        .join(name);
    std::fs::read(&path).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

async fn announced(db: &sqlx::PgPool) -> anyhow::Result<(i64, i64)> {
    let (all, published): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(published_at_ms) FROM platform_outbox WHERE subject LIKE 'evt.dbt.run.completed.%'",
    )
    .fetch_one(db)
    .await?;
    Ok((all, published))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_announce_a_successful_run_once() -> anyhow::Result<()> {
    let listener = start().await?;
    let url = format!("{}/webhooks/dbt-cloud/sub-a", listener.base);
    let body = fixture("dbt-cloud-job-run-completed.json")?;
    let good = sign(SECRET, &body);

    // Acceptance 1: every bad signature is 401 and stores nothing.
    let mut modified = body.clone();
    modified.push(b' ');
    let upper = good.to_uppercase();
    let truncated = &good[..good.len() - 2];
    for (header, payload) in [
        (Some("0".repeat(64)), &body),
        (None, &body),
        (Some(truncated.to_string()), &body),
        (Some("not-hex-at-all".to_string()), &body),
        (Some(format!("sha256={good}")), &body),
        (Some(good.clone()), &modified),
    ] {
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|value| vec![("authorization", value)])
            .unwrap_or_default();
        assert_eq!(post(&url, payload, &headers).await?, 401, "{header:?}");
    }
    assert_eq!(announced(&listener.db).await?, (0, 0));

    // The valid signature, upper-case hex too (hex is case-insensitive): 200.
    assert_eq!(post(&url, &body, &[("authorization", &upper)]).await?, 200);
    // Acceptance 2: the same delivery four more times: still one announcement.
    for _ in 0..4 {
        assert_eq!(post(&url, &body, &[("authorization", &good)]).await?, 200);
    }
    // A second subscription delivering the same run (another event id): still one.
    let mut second: serde_json::Value = serde_json::from_slice(&body)?;
    second["eventId"] = "wev_other_subscription".into();
    second["webhooksID"] = "wsu_second".into();
    let second = serde_json::to_vec(&second)?;
    let url_b = format!("{}/webhooks/dbt-cloud/sub-b", listener.base);
    let signature_b = sign(SECRET, &second);
    assert_eq!(
        post(&url_b, &second, &[("authorization", &signature_b)]).await?,
        200
    );
    eventually(
        Duration::from_secs(10),
        "one announcement published",
        || async { (announced(&listener.db).await.ok()? == (1, 1)).then_some(()) },
    )
    .await?;

    // Errored and cancelled runs are recorded, not announced.
    for name in [
        "dbt-cloud-job-run-errored.json",
        "dbt-cloud-job-run-completed-cancelled.json",
    ] {
        let body = fixture(name)?;
        let signature = sign(SECRET, &body);
        assert_eq!(
            post(&url, &body, &[("authorization", &signature)]).await?,
            200,
            "{name}"
        );
    }
    let (received,): (i64,) = sqlx::query_as("SELECT count(*) FROM dbt_received_events")
        .fetch_one(&listener.db)
        .await?;
    assert_eq!(
        received, 4,
        "the completed, the second subscription's, errored, cancelled"
    );
    assert_eq!(announced(&listener.db).await?, (1, 1));

    // Unknown subscription: 404. Oversized body: 413.
    assert_eq!(
        post(
            &format!("{}/webhooks/dbt-cloud/nope", listener.base),
            &body,
            &[("authorization", &good)]
        )
        .await?,
        404
    );
    let huge = vec![b'x'; 300 * 1024];
    assert_eq!(post(&url, &huge, &[("authorization", &good)]).await?, 413);
    listener.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbt_core_run_results_need_an_admin_token_and_announce_once() -> anyhow::Result<()> {
    let listener = start().await?;
    let url = format!("{}/dbt-core/run-results", listener.base);
    let body = serde_json::json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v5.json",
            "dbt_version": "1.7.20",
            "invocation_id": "0d9f3b1e-1111-4222-8333-444455556666"
        },
        "results": [
            {"unique_id": "model.shop.customers", "status": "success"},
            {"unique_id": "test.shop.unique_customers_id.a1", "status": "pass"}
        ],
        "args": {"which": "build"}
    })
    .to_string()
    .into_bytes();
    let bearer = |token: &str| format!("Bearer {token}");
    assert_eq!(post(&url, &body, &[]).await?, 401);
    assert_eq!(
        post(&url, &body, &[("authorization", "Bearer bf_unknown")]).await?,
        401
    );
    assert_eq!(
        post(
            &url,
            &body,
            &[("authorization", &bearer(&listener.viewer_token))]
        )
        .await?,
        403
    );
    assert_eq!(
        post(
            &format!("{url}?workspace=other"),
            &body,
            &[("authorization", &bearer(&listener.admin_token))]
        )
        .await?,
        403
    );
    assert_eq!(
        post(
            &url,
            b"{}",
            &[("authorization", &bearer(&listener.admin_token))]
        )
        .await?,
        400
    );
    for _ in 0..3 {
        assert_eq!(
            post(
                &url,
                &body,
                &[("authorization", &bearer(&listener.admin_token))]
            )
            .await?,
            200
        );
    }
    eventually(
        Duration::from_secs(10),
        "one dbt core announcement",
        || async { (announced(&listener.db).await.ok()? == (1, 1)).then_some(()) },
    )
    .await?;
    listener.shutdown.cancel();
    Ok(())
}
