//! The dbt Cloud API client against a local stand-in that speaks the documented
//! envelope (`status`/`data`/`extra.pagination`), pages with limit/offset, answers
//! 429 with Retry-After, and checks `Authorization: Token …` on every call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use backflow_dbt_cloud_listener::api::{ApiError, DbtCloudClient, RunStatus, SubscriptionRequest};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

const TOKEN: &str = "dbtc_test_token";
const ACCOUNT: i64 = 123456;

#[derive(Default)]
struct Cloud {
    rate_limit_next: usize,
    subscriptions: BTreeMap<String, Value>,
    calls: Vec<String>,
}

type Shared = Arc<Mutex<Cloud>>;

fn envelope(data: Value, total: Option<usize>) -> Response {
    let mut body = json!({
        "status": {"code": 200, "is_success": true, "user_message": "Success!", "developer_message": ""},
        "data": data,
    });
    if let Some(total) = total {
        body["extra"] = json!({"pagination": {"count": 0, "total_count": total}});
    }
    Json(body).into_response()
}

fn guard(state: &Shared, headers: &HeaderMap, call: &str) -> Option<Response> {
    let mut cloud = state.lock().unwrap();
    cloud.calls.push(call.to_string());
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Token {TOKEN}"));
    if !authorized {
        let body = include_str!("../../../fixtures/payloads/dbt-cloud-error-401.json");
        return Some((StatusCode::UNAUTHORIZED, body.to_string()).into_response());
    }
    if cloud.rate_limit_next > 0 {
        cloud.rate_limit_next -= 1;
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "0")],
                "slow down",
            )
                .into_response(),
        );
    }
    None
}

async fn account(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(account): Path<i64>,
) -> Response {
    if let Some(r) = guard(&s, &headers, "account") {
        return r;
    }
    if account != ACCOUNT {
        return (StatusCode::NOT_FOUND, r#"{"status":{"code":404,"is_success":false,"user_message":"Not found.","developer_message":null},"data":null}"#).into_response();
    }
    envelope(json!({"id": ACCOUNT, "name": "acme"}), None)
}

async fn jobs(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(r) = guard(&s, &headers, "jobs") {
        return r;
    }
    let limit: usize = q["limit"].parse().unwrap();
    let offset: usize = q["offset"].parse().unwrap();
    assert!(limit <= 100, "dbt caps limit at 100");
    let total = 250;
    let page: Vec<Value> = (offset..(offset + limit).min(total))
        .map(|i| json!({"id": i as i64 + 1, "account_id": ACCOUNT, "project_id": 7, "environment_id": 8, "name": format!("job {i}"), "state": 1}))
        .collect();
    envelope(Value::Array(page), Some(total))
}

async fn runs(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(r) = guard(&s, &headers, "runs") {
        return r;
    }
    assert_eq!(q["order_by"], "-id");
    let job: i64 = q["job_definition_id"].parse().unwrap();
    envelope(
        json!([
            {"id": 902, "job_definition_id": job, "status": 10, "finished_at": "2026-12-01 10:00:00+00:00"},
            {"id": 901, "job_definition_id": job, "status": 20, "finished_at": "2026-12-01 09:00:00+00:00"}
        ]),
        Some(2),
    )
}

async fn artifact(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((_a, run)): Path<(i64, i64)>,
) -> Response {
    if let Some(r) = guard(&s, &headers, "artifact") {
        return r;
    }
    // Artifacts are the file itself, not enveloped.
    Json(json!({"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v5.json"}, "results": [{"unique_id": "model.p.users", "status": "success"}], "args": {"run": run}})).into_response()
}

async fn create_subscription(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = guard(&s, &headers, "create_subscription") {
        return r;
    }
    let id = format!("wsu_{}", s.lock().unwrap().subscriptions.len() + 1);
    let mut created = json!({
        "id": id, "account_identifier": "act_1", "name": body["name"], "description": body["description"],
        "job_ids": body["job_ids"].as_array().unwrap().iter().map(|j| j.to_string()).collect::<Vec<_>>(),
        "event_types": body["event_types"], "client_url": body["client_url"], "active": body["active"],
        "created_at": "1675795644808877", "updated_at": "1675795644808877", "account_id": ACCOUNT.to_string(), "http_status_code": "0"
    });
    s.lock().unwrap().subscriptions.insert(id, created.clone());
    created["hmac_secret"] = json!("s3cr3t");
    (
        StatusCode::CREATED,
        Json(json!({"data": created, "status": {"code": 201}})),
    )
        .into_response()
}

async fn list_subscriptions(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = guard(&s, &headers, "list_subscriptions") {
        return r;
    }
    let all: Vec<Value> = s.lock().unwrap().subscriptions.values().cloned().collect();
    let total = all.len();
    envelope(Value::Array(all), Some(total))
}

async fn delete_subscription(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((_a, id)): Path<(i64, String)>,
) -> Response {
    if let Some(r) = guard(&s, &headers, "delete_subscription") {
        return r;
    }
    match s.lock().unwrap().subscriptions.remove(&id) {
        Some(_) => envelope(json!({"id": id}), None),
        None => (StatusCode::NOT_FOUND, "{}").into_response(),
    }
}

async fn stand_in() -> (String, Shared) {
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/api/v2/accounts/{account}/", get(account))
        .route("/api/v2/accounts/{account}/jobs/", get(jobs))
        .route("/api/v2/accounts/{account}/runs/", get(runs))
        .route(
            "/api/v2/accounts/{account}/runs/{run}/artifacts/run_results.json",
            get(artifact),
        )
        .route(
            "/api/v3/accounts/{account}/webhooks/subscriptions",
            post(create_subscription).get(list_subscriptions),
        )
        .route(
            "/api/v3/accounts/{account}/webhooks/subscription/{id}",
            delete(delete_subscription),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

fn client(base: &str, account: i64, token: &str) -> DbtCloudClient {
    DbtCloudClient::new(base, account, SecretString::from(token.to_string()))
}

#[tokio::test]
async fn checks_the_token_and_the_account() {
    let (base, _) = stand_in().await;
    client(&base, ACCOUNT, TOKEN).check_account().await.unwrap();
    assert_eq!(
        client(&base, ACCOUNT, "wrong").check_account().await,
        Err(ApiError::Unauthorized {
            message: "Invalid token.".into()
        })
    );
    assert!(matches!(
        client(&base, 999, TOKEN).check_account().await,
        Err(ApiError::NotFound { message, .. }) if message == "Not found."
    ));
    assert!(matches!(
        client("http://127.0.0.1:1", ACCOUNT, TOKEN)
            .check_account()
            .await,
        Err(ApiError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn lists_every_job_across_pages_and_rides_out_a_rate_limit() {
    let (base, state) = stand_in().await;
    state.lock().unwrap().rate_limit_next = 1;
    let jobs = client(&base, ACCOUNT, TOKEN).jobs(Some(7)).await.unwrap();
    assert_eq!(jobs.len(), 250);
    assert_eq!(jobs.last().map(|j| j.id), Some(250));
    // one 429, then three pages of at most 100
    assert_eq!(
        state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| *c == "jobs")
            .count(),
        4
    );
    state.lock().unwrap().rate_limit_next = 10;
    assert_eq!(
        client(&base, ACCOUNT, TOKEN)
            .jobs(None)
            .await
            .map(|j| j.len()),
        Err(ApiError::RateLimited { attempts: 4 })
    );
}

#[tokio::test]
async fn reads_runs_and_their_run_results() {
    let (base, _) = stand_in().await;
    let api = client(&base, ACCOUNT, TOKEN);
    let runs = api.recent_runs(43167, 10).await.unwrap();
    let statuses: Vec<RunStatus> = runs.iter().map(|r| r.run_status()).collect();
    assert_eq!(statuses, vec![RunStatus::Success, RunStatus::Error]);
    let results = api.run_results(902).await.unwrap();
    assert_eq!(results["results"][0]["unique_id"], "model.p.users");
}

#[tokio::test]
async fn creates_lists_and_deletes_subscriptions() {
    let (base, _) = stand_in().await;
    let api = client(&base, ACCOUNT, TOKEN);
    let created = api
        .create_subscription(&SubscriptionRequest {
            event_types: vec!["job.run.completed".into()],
            name: "backflow job 123".into(),
            client_url: "https://backflow.example.com/webhooks/dbt-cloud/sub1".into(),
            active: true,
            description: "reverse etl trigger".into(),
            job_ids: vec![123],
        })
        .await
        .unwrap();
    assert_eq!(created.job_ids, vec![123]);
    assert_eq!(
        created
            .hmac_secret
            .as_ref()
            .map(|s| s.expose_secret().to_string()),
        Some("s3cr3t".into())
    );
    let listed = api.subscriptions().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].hmac_secret.is_none());
    api.delete_subscription(&created.id).await.unwrap();
    // already gone counts as deleted
    api.delete_subscription(&created.id).await.unwrap();
    assert!(api.subscriptions().await.unwrap().is_empty());
}

/// Without `Retry-After` the client backs off (0.5 s, then 2 s) and goes on; with an HTTP
/// date it waits until then; through the shared stand-in, which pages jobs like dbt.
#[tokio::test]
async fn backs_off_on_429_without_retry_after_and_honours_a_date() {
    use backflow_dbt_cloud_listener::stand_in::StandIn;
    let cloud = StandIn::start(ACCOUNT, TOKEN).await.unwrap();
    for id in 1..=120 {
        cloud.add_job(id, &format!("job {id}"), 7);
    }
    let api = client(&cloud.base_url, ACCOUNT, TOKEN);
    cloud.cloud().rate_limit_next = 1;
    let started = std::time::Instant::now();
    assert_eq!(api.jobs(None).await.map(|jobs| jobs.len()), Ok(120));
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(500)
            && waited < std::time::Duration::from_secs(2),
        "{waited:?}"
    );
    {
        let mut state = cloud.cloud();
        state.rate_limit_next = 1;
        let at = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
        state.retry_after = Some(httpdate::fmt_http_date(at));
    }
    let started = std::time::Instant::now();
    api.check_account().await.unwrap();
    // HTTP dates have whole seconds: at least one of the two is waited.
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let pages: Vec<String> = cloud.calls_like("GET jobs");
    assert_eq!(
        pages,
        vec![
            "GET jobs?limit=100&offset=0",
            "GET jobs?limit=100&offset=0",
            "GET jobs?limit=100&offset=100",
        ]
    );
}
