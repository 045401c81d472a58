//! A local stand-in of the dbt Cloud Administrative API, for tests here and in `tests/`
//! (feature `test-support`). It answers the endpoints Backflow calls, shaped like the
//! captured and documented payloads in `fixtures/payloads/dbt-cloud-*.json`:
//!
//! - v2 (`/api/v2/accounts/{a}/…`): the account, jobs (paged with `limit` ≤ 100 and
//!   `offset`, `project_id` filter), one job, triggering a run, runs (`job_definition_id`,
//!   `order_by=-id`, paged), one run, a run's `run_results.json` artifact (the file itself,
//!   not enveloped). Envelope: `{"status": {code, is_success, user_message,
//!   developer_message}, "data": …, "extra": {"filters", "order_by", "pagination":
//!   {"count", "total_count"}}}`.
//! - v3: projects, environments and webhook subscriptions: list (paged), create (201,
//!   `{"data": …, "status": {"code": 201}}`, the only answer with `hmac_secret`), get,
//!   delete. Ids are strings (`wsu_…`, `job_ids: ["123"]`).
//! - Every call checks `Authorization: Token <token>` (401 with the fixture's error
//!   envelope) and the account id (404); a test can make an endpoint answer 403 or 404
//!   (a token without the permission), rate limit the next calls (429 with
//!   `Retry-After`), or fail with 500. A run without stored `run_results.json` answers
//!   404 (a job whose steps wrote no artifact); artifact answers can be held back.
//!
//! [`StandIn::deliver`] plays dbt Cloud's side of a webhook: it posts a signed
//! `job.run.completed` for a run to every active subscription on the run's job, the
//! body shaped like `dbt-cloud-job-run-completed.json`, signed with the subscription's
//! `hmac_secret` (bare hex HMAC-SHA256 in `Authorization`).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::Mac;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// Endpoint groups a test can deny or break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Account,
    Jobs,
    Runs,
    Artifacts,
    Webhooks,
    Projects,
}

/// What the stand-in holds: one account, its jobs, runs and subscriptions.
#[derive(Debug, Default)]
pub struct Cloud {
    pub token: String,
    pub account_id: i64,
    pub account_name: String,
    /// Job objects, by id.
    pub jobs: BTreeMap<i64, Value>,
    /// Run objects, by id.
    pub runs: BTreeMap<i64, Value>,
    /// `run_results.json` per run id.
    pub artifacts: BTreeMap<i64, Value>,
    /// Subscription objects (as listed: no `hmac_secret`), by id.
    pub subscriptions: BTreeMap<String, Value>,
    /// Each subscription's `hmac_secret`.
    pub secrets: BTreeMap<String, String>,
    /// The next this many calls answer 429.
    pub rate_limit_next: usize,
    /// `Retry-After` sent with a 429 (`None`: no header).
    pub retry_after: Option<String>,
    /// Endpoints answering 404 as if the token lacked the permission.
    pub hidden: BTreeSet<Endpoint>,
    /// Endpoints answering 403.
    pub forbidden: BTreeSet<Endpoint>,
    /// Endpoints answering 500.
    pub broken: BTreeSet<Endpoint>,
    /// While set, artifact requests wait (at most 30 s) before answering: a fetch in
    /// flight that a test can observe, or cut off by stopping the listener.
    pub hold_artifacts: bool,
    /// `METHOD path?query` of every call, in order.
    pub calls: Vec<String>,
    next_id: i64,
}

type Shared = Arc<Mutex<Cloud>>;

fn lock(state: &Shared) -> MutexGuard<'_, Cloud> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running stand-in on a loopback port.
#[derive(Debug, Clone)]
pub struct StandIn {
    /// `http://127.0.0.1:<port>`, the access URL to allow and connect with.
    pub base_url: String,
    state: Shared,
}

fn now_text() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f+00:00")
        .to_string()
}

fn v2_status(code: u16, message: &str) -> Value {
    json!({
        "code": code,
        "is_success": (200..300).contains(&code),
        "user_message": message,
        "developer_message": "",
    })
}

fn v2(data: Value, extra: Option<Value>) -> Response {
    let mut body = json!({"status": v2_status(200, "Success!"), "data": data});
    if let Some(extra) = extra {
        body["extra"] = extra;
    }
    Json(body).into_response()
}

fn error(code: StatusCode, message: &str) -> Response {
    (
        code,
        Json(json!({"status": v2_status(code.as_u16(), message), "data": null})),
    )
        .into_response()
}

/// The fixture's 401 body, byte for byte.
const UNAUTHORIZED: &str = include_str!("../../../fixtures/payloads/dbt-cloud-error-401.json");

/// `limit`/`offset` from a query; a 400 when the limit is above dbt's 100.
fn page(query: &BTreeMap<String, String>) -> Result<(usize, usize), Box<Response>> {
    let number = |key: &str, default: usize| {
        query
            .get(key)
            .map(|v| v.parse::<usize>())
            .unwrap_or(Ok(default))
    };
    let (Ok(limit), Ok(offset)) = (number("limit", 100), number("offset", 0)) else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "limit and offset must be integers",
        )));
    };
    if limit == 0 || limit > 100 {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "limit must be between 1 and 100",
        )));
    }
    Ok((limit, offset))
}

fn paged(
    items: Vec<Value>,
    limit: usize,
    offset: usize,
    filters: Value,
    order_by: &str,
) -> Response {
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let count = data.len();
    v2(
        Value::Array(data),
        Some(json!({
            "filters": filters,
            "order_by": order_by,
            "pagination": {"count": count, "total_count": total},
        })),
    )
}

/// Checks token, account and the test's injected failures; records the call.
fn guard(
    state: &Shared,
    headers: &HeaderMap,
    call: String,
    account: i64,
    endpoint: Endpoint,
) -> Option<Response> {
    let mut cloud = lock(state);
    cloud.calls.push(call);
    let expected = format!("Token {}", cloud.token);
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == expected);
    if !authorized {
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/json")],
                UNAUTHORIZED,
            )
                .into_response(),
        );
    }
    if cloud.rate_limit_next > 0 {
        cloud.rate_limit_next -= 1;
        let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests.");
        if let Some(after) = cloud.retry_after.as_deref().and_then(|v| v.parse().ok()) {
            response.headers_mut().insert("retry-after", after);
        }
        return Some(response);
    }
    if account != cloud.account_id || cloud.hidden.contains(&endpoint) {
        return Some(error(StatusCode::NOT_FOUND, "Not found."));
    }
    if cloud.forbidden.contains(&endpoint) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        ));
    }
    if cloud.broken.contains(&endpoint) {
        return Some(error(StatusCode::INTERNAL_SERVER_ERROR, "Server error."));
    }
    None
}

fn query_text(query: &BTreeMap<String, String>) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

async fn account(State(s): State<Shared>, headers: HeaderMap, Path(a): Path<i64>) -> Response {
    if let Some(r) = guard(
        &s,
        &headers,
        format!("GET account {a}"),
        a,
        Endpoint::Account,
    ) {
        return r;
    }
    let cloud = lock(&s);
    v2(
        json!({
            "id": cloud.account_id,
            "name": cloud.account_name,
            "state": 1,
            "plan": "team",
            "identifier": format!("act-{}", cloud.account_id),
        }),
        None,
    )
}

async fn jobs(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(a): Path<i64>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let call = format!("GET jobs?{}", query_text(&q));
    if let Some(r) = guard(&s, &headers, call, a, Endpoint::Jobs) {
        return r;
    }
    let (limit, offset) = match page(&q) {
        Ok(page) => page,
        Err(response) => return *response,
    };
    let project: Option<i64> = q.get("project_id").and_then(|p| p.parse().ok());
    let cloud = lock(&s);
    let items: Vec<Value> = cloud
        .jobs
        .values()
        .filter(|job| project.is_none_or(|p| job["project_id"] == json!(p)))
        .cloned()
        .collect();
    paged(
        items,
        limit,
        offset,
        json!({"account_id": a, "project_id": project, "limit": limit, "offset": offset}),
        "id",
    )
}

async fn job(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((a, j)): Path<(i64, i64)>,
) -> Response {
    if let Some(r) = guard(&s, &headers, format!("GET job {j}"), a, Endpoint::Jobs) {
        return r;
    }
    match lock(&s).jobs.get(&j) {
        Some(job) => v2(job.clone(), None),
        None => error(StatusCode::NOT_FOUND, "Not found."),
    }
}

async fn trigger(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((a, j)): Path<(i64, i64)>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(r) = guard(&s, &headers, format!("POST trigger {j}"), a, Endpoint::Jobs) {
        return r;
    }
    if !lock(&s).jobs.contains_key(&j) {
        return error(StatusCode::NOT_FOUND, "Not found.");
    }
    let cause = body["cause"].as_str().unwrap_or_default();
    if cause.is_empty() || cause.chars().count() > 255 {
        return error(
            StatusCode::BAD_REQUEST,
            "cause is required and at most 255 characters",
        );
    }
    let stand_in = StandIn {
        base_url: String::new(),
        state: s.clone(),
    };
    let id = stand_in.add_run(j, 1);
    let run = lock(&s).runs.get(&id).cloned().unwrap_or_default();
    v2(run, None)
}

async fn runs(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(a): Path<i64>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let call = format!("GET runs?{}", query_text(&q));
    if let Some(r) = guard(&s, &headers, call, a, Endpoint::Runs) {
        return r;
    }
    let (limit, offset) = match page(&q) {
        Ok(page) => page,
        Err(response) => return *response,
    };
    let job: Option<i64> = q.get("job_definition_id").and_then(|p| p.parse().ok());
    let newest_first = q.get("order_by").is_some_and(|o| o == "-id");
    let cloud = lock(&s);
    let mut items: Vec<Value> = cloud
        .runs
        .values()
        .filter(|run| job.is_none_or(|j| run["job_definition_id"] == json!(j)))
        .cloned()
        .collect();
    if newest_first {
        items.reverse();
    }
    paged(
        items,
        limit,
        offset,
        json!({"account_id": a, "job_definition_id": job, "limit": limit, "offset": offset}),
        if newest_first { "-id" } else { "id" },
    )
}

async fn run(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((a, r)): Path<(i64, i64)>,
) -> Response {
    if let Some(resp) = guard(&s, &headers, format!("GET run {r}"), a, Endpoint::Runs) {
        return resp;
    }
    match lock(&s).runs.get(&r) {
        Some(run) => v2(run.clone(), None),
        None => error(StatusCode::NOT_FOUND, "Not found."),
    }
}

async fn artifact(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((a, r)): Path<(i64, i64)>,
) -> Response {
    let call = format!("GET artifact {r}");
    if let Some(resp) = guard(&s, &headers, call, a, Endpoint::Artifacts) {
        return resp;
    }
    let held_until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while lock(&s).hold_artifacts && std::time::Instant::now() < held_until {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    match lock(&s).artifacts.get(&r) {
        // Artifacts are the file itself, not enveloped.
        Some(file) => Json(file.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "Artifact not found."),
    }
}

async fn projects(State(s): State<Shared>, headers: HeaderMap, Path(a): Path<i64>) -> Response {
    if let Some(r) = guard(&s, &headers, "GET projects".into(), a, Endpoint::Projects) {
        return r;
    }
    paged(
        vec![json!({"id": 7, "name": "analytics", "account_id": a})],
        100,
        0,
        json!({"limit": 100, "offset": 0}),
        "id",
    )
}

async fn environments(State(s): State<Shared>, headers: HeaderMap, Path(a): Path<i64>) -> Response {
    let call = "GET environments".to_string();
    if let Some(r) = guard(&s, &headers, call, a, Endpoint::Projects) {
        return r;
    }
    paged(
        vec![json!({"id": 8, "name": "Production", "project_id": 7, "account_id": a})],
        100,
        0,
        json!({"limit": 100, "offset": 0}),
        "id",
    )
}

fn v3(data: Value, code: StatusCode) -> Response {
    (
        code,
        Json(json!({"data": data, "status": {"code": code.as_u16()}})),
    )
        .into_response()
}

async fn list_subscriptions(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(a): Path<i64>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let call = format!("GET subscriptions?{}", query_text(&q));
    if let Some(r) = guard(&s, &headers, call, a, Endpoint::Webhooks) {
        return r;
    }
    let (limit, offset) = match page(&q) {
        Ok(page) => page,
        Err(response) => return *response,
    };
    let cloud = lock(&s);
    let items: Vec<Value> = cloud.subscriptions.values().cloned().collect();
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    let count = data.len();
    Json(json!({
        "data": data,
        "status": {"code": 200},
        "extra": {
            "pagination": {"total_count": total, "count": count},
            "filters": {"offset": offset, "limit": limit},
        },
    }))
    .into_response()
}

async fn create_subscription(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(a): Path<i64>,
    Json(body): Json<Value>,
) -> Response {
    let call = format!(
        "POST subscription {}",
        body["client_url"].as_str().unwrap_or("")
    );
    if let Some(r) = guard(&s, &headers, call, a, Endpoint::Webhooks) {
        return r;
    }
    let job_ids: Option<Vec<String>> = body["job_ids"].as_array().map(|ids| {
        ids.iter()
            .map(|id| match id {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect()
    });
    let (Some(job_ids), Some(client_url), Some(event_types)) = (
        job_ids,
        body["client_url"].as_str(),
        body["event_types"].as_array(),
    ) else {
        return v3(
            json!({"error": "job_ids, client_url and event_types are required"}),
            StatusCode::BAD_REQUEST,
        );
    };
    let mut cloud = lock(&s);
    cloud.next_id += 1;
    let id = format!("wsu_standin{:06}", cloud.next_id);
    let secret = format!("whsec-{}-{}", cloud.next_id, backflow_platform::new_id());
    let stamp = chrono::Utc::now().timestamp_micros().to_string();
    let listed = json!({
        "id": id,
        "account_identifier": format!("act_{}", cloud.account_id),
        "name": body["name"],
        "description": body["description"],
        "job_ids": job_ids,
        "event_types": event_types,
        "client_url": client_url,
        "active": body["active"].as_bool().unwrap_or(true),
        "created_at": stamp,
        "updated_at": stamp,
        "account_id": cloud.account_id.to_string(),
        "http_status_code": "0",
    });
    cloud.subscriptions.insert(id.clone(), listed.clone());
    cloud.secrets.insert(id, secret.clone());
    let mut created = listed;
    created["hmac_secret"] = json!(secret);
    v3(created, StatusCode::CREATED)
}

async fn get_subscription(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((a, id)): Path<(i64, String)>,
) -> Response {
    let call = format!("GET subscription {id}");
    if let Some(r) = guard(&s, &headers, call, a, Endpoint::Webhooks) {
        return r;
    }
    match lock(&s).subscriptions.get(&id) {
        Some(sub) => v3(sub.clone(), StatusCode::OK),
        None => error(StatusCode::NOT_FOUND, "Not found."),
    }
}

async fn delete_subscription(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((a, id)): Path<(i64, String)>,
) -> Response {
    let call = format!("DELETE subscription {id}");
    if let Some(r) = guard(&s, &headers, call, a, Endpoint::Webhooks) {
        return r;
    }
    let mut cloud = lock(&s);
    cloud.secrets.remove(&id);
    match cloud.subscriptions.remove(&id) {
        Some(sub) => v3(sub, StatusCode::OK),
        None => error(StatusCode::NOT_FOUND, "Not found."),
    }
}

impl StandIn {
    /// Starts a stand-in for `account_id` accepting `token`.
    pub async fn start(account_id: i64, token: &str) -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(Cloud {
            token: token.to_string(),
            account_id,
            account_name: "Jaffle Shop".into(),
            next_id: 0,
            ..Cloud::default()
        }));
        let app = Router::new()
            .route("/api/v2/accounts/{a}/", get(account))
            .route("/api/v2/accounts/{a}/jobs/", get(jobs))
            .route("/api/v2/accounts/{a}/jobs/{j}/", get(job))
            .route("/api/v2/accounts/{a}/jobs/{j}/run/", post(trigger))
            .route("/api/v2/accounts/{a}/runs/", get(runs))
            .route("/api/v2/accounts/{a}/runs/{r}/", get(run))
            .route(
                "/api/v2/accounts/{a}/runs/{r}/artifacts/run_results.json",
                get(artifact),
            )
            .route("/api/v3/accounts/{a}/projects/", get(projects))
            .route("/api/v3/accounts/{a}/environments/", get(environments))
            .route(
                "/api/v3/accounts/{a}/webhooks/subscriptions",
                get(list_subscriptions).post(create_subscription),
            )
            .route(
                "/api/v3/accounts/{a}/webhooks/subscription/{id}",
                get(get_subscription).delete(delete_subscription),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "dbt cloud stand-in stopped");
            }
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            state,
        })
    }

    /// Direct access to what the stand-in holds (inject failures, inspect calls).
    pub fn cloud(&self) -> MutexGuard<'_, Cloud> {
        lock(&self.state)
    }

    /// Adds a job shaped like `dbt-cloud-jobs-list.json`'s.
    pub fn add_job(&self, id: i64, name: &str, project_id: i64) {
        let mut cloud = self.cloud();
        let account_id = cloud.account_id;
        cloud.jobs.insert(
            id,
            json!({
                "execution": {"timeout_seconds": 0},
                "generate_docs": false,
                "run_generate_sources": false,
                "id": id,
                "account_id": account_id,
                "project_id": project_id,
                "environment_id": 49819,
                "name": name,
                "dbt_version": null,
                "created_at": "2021-11-18T15:19:03.185668+00:00",
                "updated_at": "2021-12-25T09:17:12.788186+00:00",
                "execute_steps": ["dbt build"],
                "state": 1,
                "job_type": "scheduled",
                "deferring_job_definition_id": null,
                "lifecycle_webhooks": false,
                "lifecycle_webhooks_url": null,
                "triggers": {"github_webhook": false, "git_provider_webhook": null, "custom_branch_only": true, "schedule": true},
                "settings": {"threads": 4, "target_name": "default"},
                "schedule": {"cron": "0 * * * *", "date": {"type": "every_day"}, "time": {"type": "every_hour", "interval": 1}},
                "is_deferrable": false,
                "generate_sources": false,
                "cron_humanized": "Every hour",
                "next_run": null,
                "next_run_humanized": null,
            }),
        );
    }

    /// Adds a run of `job_id` with `status` (1, 2, 3 running; 10, 20, 30 finished now),
    /// shaped like `dbt-cloud-run-get.json`'s; returns its id.
    pub fn add_run(&self, job_id: i64, status: i64) -> i64 {
        let mut cloud = self.cloud();
        let id = cloud.runs.keys().next_back().copied().unwrap_or(36_053_847) + 1;
        let now = now_text();
        let finished = [10, 20, 30].contains(&status);
        let humanized = crate::api::RunStatus::from_code(status).name();
        let account_id = cloud.account_id;
        cloud.runs.insert(
            id,
            json!({
                "id": id,
                "trigger_id": id + 700_000,
                "account_id": account_id,
                "environment_id": 49819,
                "project_id": 123457,
                "job_definition_id": job_id,
                "status": status,
                "dbt_version": "1.7.0",
                "git_branch": "main",
                "git_sha": "981c5cf1ba299e942c6c277c38c8dec9b0738dd0",
                "status_message": if status == 20 { json!("Database Error in model my_model") } else { Value::Null },
                "artifacts_saved": finished,
                "has_docs_generated": false,
                "has_sources_generated": false,
                "created_at": now,
                "updated_at": now,
                "dequeued_at": now,
                "started_at": now,
                "finished_at": if finished { json!(now) } else { Value::Null },
                "status_humanized": humanized,
                "in_progress": !finished,
                "is_complete": finished,
                "is_success": status == 10,
                "is_error": status == 20,
                "is_cancelled": status == 30,
                "href": format!("https://cloud.getdbt.com/deploy/{account_id}/projects/123457/runs/{id}/"),
                "duration": "00:01:50",
                "job_id": job_id,
            }),
        );
        id
    }

    /// Stores the `run_results.json` a run's artifact endpoint returns.
    pub fn set_run_results(&self, run_id: i64, run_results: Value) {
        self.cloud().artifacts.insert(run_id, run_results);
    }

    /// Subscriptions as dbt Cloud lists them.
    pub fn subscriptions(&self) -> Vec<Value> {
        self.cloud().subscriptions.values().cloned().collect()
    }

    /// Calls made so far that start with `prefix` (e.g. `"POST subscription"`).
    pub fn calls_like(&self, prefix: &str) -> Vec<String> {
        self.cloud()
            .calls
            .iter()
            .filter(|call| call.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Posts a signed `job.run.completed` for `run_id` to every active subscription on
    /// the run's job; returns each (client url, HTTP status).
    pub async fn deliver(&self, run_id: i64) -> Vec<(String, u16)> {
        let (targets, body_of) = {
            let cloud = self.cloud();
            let Some(run) = cloud.runs.get(&run_id).cloned() else {
                return Vec::new();
            };
            let job_id = run["job_definition_id"].as_i64().unwrap_or(0);
            let targets: Vec<(String, String, String, String)> = cloud
                .subscriptions
                .values()
                .filter(|sub| sub["active"].as_bool().unwrap_or(false))
                .filter(|sub| {
                    sub["job_ids"].as_array().is_some_and(|ids| {
                        ids.iter()
                            .any(|id| id.as_str() == Some(&job_id.to_string()))
                    })
                })
                .filter_map(|sub| {
                    let id = sub["id"].as_str()?.to_string();
                    Some((
                        id.clone(),
                        sub["client_url"].as_str()?.to_string(),
                        sub["name"].as_str().unwrap_or("").to_string(),
                        cloud.secrets.get(&id)?.clone(),
                    ))
                })
                .collect();
            (targets, (cloud.account_id, run))
        };
        let (account_id, run) = body_of;
        let client = reqwest::Client::new();
        let mut answers = Vec::new();
        for (id, url, name, secret) in targets {
            let status = run["status"].as_i64().unwrap_or(0);
            let body = json!({
                "accountId": account_id,
                "webhooksID": id,
                "eventId": format!("wev_{}_{}", run["id"], id),
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                "eventType": "job.run.completed",
                "webhookName": name,
                "data": {
                    "jobId": run["job_definition_id"].to_string(),
                    "jobName": "Daily Job (dbt build)",
                    "runId": run["id"].to_string(),
                    "environmentId": run["environment_id"].to_string(),
                    "environmentName": "Production",
                    "dbtVersion": run["dbt_version"],
                    "projectName": "Snowflake Github Demo",
                    "projectId": run["project_id"].to_string(),
                    "runStatus": run["status_humanized"],
                    "runStatusCode": status,
                    "runStatusMessage": "None",
                    "runReason": "Kicked off from UI by test@test.com",
                    "runStartedAt": "2023-01-31T19:28:07Z",
                    "runFinishedAt": "2023-01-31T19:29:32Z",
                }
            })
            .to_string();
            let signature = sign(&secret, body.as_bytes());
            let answer = client
                .post(&url)
                .header("authorization", signature)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|response| response.status().as_u16())
                .unwrap_or(0);
            answers.push((url, answer));
        }
        answers
    }
}

/// dbt Cloud's signature: bare hex HMAC-SHA256 of the raw body.
pub fn sign(secret: &str, body: &[u8]) -> String {
    match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}
