//! A local BigQuery stand-in: the service-account token endpoint and `jobs.query`,
//! `jobs.getQueryResults`, `jobs.get`, `jobs.cancel`, answering with the bodies in
//! `fixtures/wire/bigquery/` (vendored from `../shared/fixtures/wire`).
//!
//! It checks what the real API and Google's token endpoint check: the JWT assertion's
//! RS256 signature (against the test key's public half), its `kid`, `iss`, `scope`,
//! `aud` (= the token URI), `iat`/`exp` (at most one hour); a valid bearer token on every
//! API call; `useLegacySql: false` sent explicitly; `formatOptions.useInt64Timestamp`
//! (the TIMESTAMP cells are int64 microseconds). It also refuses SQL that is not wrapped
//! `select * from (\n…\n) as backflow_q`, the connector's read-only wrapping.
//!
//! What it answers is chosen by a word in the wrapped SQL (see [`Scenario::of`]). The
//! fixtures' `jobReference.jobId` is rewritten to a fresh id per job, so several jobs can
//! run at once; otherwise bodies are served as the fixtures have them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

/// The test service account.
pub const CLIENT_EMAIL: &str = "backflow-test@standin-project.iam.gserviceaccount.com";
pub const PRIVATE_KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";
pub const SCOPE: &str = "https://www.googleapis.com/auth/bigquery";
/// RSA keys made for these tests (never used anywhere else).
pub const PRIVATE_KEY_PEM: &str = include_str!("keys/bigquery-test-key.pem");
const PUBLIC_KEY_PEM: &str = include_str!("keys/bigquery-test-key.pub.pem");
/// A key the stand-in does not know: its signatures fail.
pub const OTHER_PRIVATE_KEY_PEM: &str = include_str!("keys/other-test-key.pem");

const F_QUERY_COMPLETE: &str =
    include_str!("../../../../fixtures/wire/bigquery/jobs-query-response-complete.json");
const F_QUERY_INCOMPLETE: &str =
    include_str!("../../../../fixtures/wire/bigquery/jobs-query-response-incomplete.json");
const F_PAGE_2: &str =
    include_str!("../../../../fixtures/wire/bigquery/get-query-results-page-2.json");
const F_CELLS: &str =
    include_str!("../../../../fixtures/wire/bigquery/cell-encoding-examples.json");
const F_JOB_RUNNING: &str =
    include_str!("../../../../fixtures/wire/bigquery/jobs-get-running.json");
const F_JOB_FAILED: &str =
    include_str!("../../../../fixtures/wire/bigquery/jobs-get-done-failed.json");
const F_ERR_INVALID: &str =
    include_str!("../../../../fixtures/wire/bigquery/error-400-invalid-query.json");
const F_ERR_QUOTA: &str =
    include_str!("../../../../fixtures/wire/bigquery/error-403-quota-exceeded.json");
const F_ERR_RATE: &str =
    include_str!("../../../../fixtures/wire/bigquery/error-403-rate-limit-exceeded.json");
const F_TOKEN: &str = include_str!("../../../../fixtures/wire/bigquery/oauth-token-response.json");
const F_TOKEN_ERROR: &str =
    include_str!("../../../../fixtures/wire/bigquery/oauth-token-error.json");

/// What a job does, picked from a word in its SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `people`: the 9-row fixture result in three pages (`page-2`, `page-3`).
    People,
    /// `slow_people`: `jobComplete=false` first, two incomplete polls, then as `People`.
    SlowPeople,
    /// `cells`: one row of every cell shape (`cell-encoding-examples.json`).
    Cells,
    /// `invalid`: HTTP 400 invalidQuery.
    Invalid,
    /// `rate_limit`: HTTP 403 rateLimitExceeded.
    RateLimit,
    /// `quota`: HTTP 403 quotaExceeded.
    Quota,
    /// `missing_table`: HTTP 404 notFound (table).
    MissingTable,
    /// `denied`: HTTP 403 accessDenied.
    Denied,
    /// `fails_later`: incomplete, then `jobs.get` 200 with `status.errorResult`.
    FailsLater,
    /// `never_finishes`: incomplete until cancelled.
    NeverFinishes,
    /// `count`: one row `("9", null)` of two INT64 columns.
    Count,
    /// `select 1` and INFORMATION_SCHEMA of dataset `people`: one INT64 row / no rows.
    One,
    /// INFORMATION_SCHEMA of another dataset: 404 notFound (dataset).
    MissingDataset,
}

impl Scenario {
    pub fn of(sql: &str) -> Self {
        let has = |w: &str| sql.contains(w);
        if has("INFORMATION_SCHEMA") {
            if has("`people`") {
                Self::One
            } else {
                Self::MissingDataset
            }
        } else if has("slow_people") {
            Self::SlowPeople
        } else if has("people") {
            Self::People
        } else if has("cells") {
            Self::Cells
        } else if has("rate_limit") {
            Self::RateLimit
        } else if has("quota") {
            Self::Quota
        } else if has("missing_table") {
            Self::MissingTable
        } else if has("denied") {
            Self::Denied
        } else if has("fails_later") {
            Self::FailsLater
        } else if has("never_finishes") {
            Self::NeverFinishes
        } else if has("count") {
            Self::Count
        } else if has("select 1") {
            Self::One
        } else {
            Self::Invalid
        }
    }
}

#[derive(Debug, Clone)]
struct Job {
    scenario: Scenario,
    /// `limit 0`: schema only.
    empty: bool,
    polls: usize,
    cancelled: bool,
}

/// Everything the stand-in saw, for assertions.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Claims of every accepted assertion.
    pub token_claims: Vec<Value>,
    /// Headers of every accepted assertion.
    pub token_headers: Vec<Value>,
    pub token_requests: usize,
    pub rejected_assertions: usize,
    /// `jobs.query` bodies.
    pub queries: Vec<Value>,
    /// `(jobId, query string)` of each getQueryResults.
    pub results_calls: Vec<(String, HashMap<String, String>)>,
    pub job_gets: Vec<String>,
    pub cancels: Vec<String>,
    /// API calls refused with 401.
    pub unauthorized: usize,
}

#[derive(Debug)]
struct Inner {
    seen: Seen,
    valid_tokens: HashSet<String>,
    token_lifetime: u64,
    jobs: HashMap<String, Job>,
    next: u64,
    token_uri: String,
}

/// A running stand-in; dropped, it stops.
#[derive(Debug)]
pub struct BigQueryStandIn {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for BigQueryStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Shared = Arc<Mutex<Inner>>;

impl BigQueryStandIn {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Mutex::new(Inner {
            seen: Seen::default(),
            valid_tokens: HashSet::new(),
            token_lifetime: 3600,
            jobs: HashMap::new(),
            next: 0,
            token_uri: format!("http://{addr}/token"),
        }));
        let api = "/bigquery/v2/projects/{project}";
        let app = Router::new()
            .route("/token", post(token))
            .route(&format!("{api}/queries"), post(jobs_query))
            .route(&format!("{api}/queries/{{job}}"), get(get_query_results))
            .route(&format!("{api}/jobs/{{job}}"), get(jobs_get))
            .route(&format!("{api}/jobs/{{job}}/cancel"), post(jobs_cancel))
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            inner,
            server,
        }
    }

    /// The `endpoint` setting pointing at this stand-in.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token_uri(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// A service-account key file for the test account, signed with `private_key_pem`.
    pub fn key_file_with(&self, private_key_pem: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": "standin-project",
            "private_key_id": PRIVATE_KEY_ID,
            "private_key": private_key_pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri(),
        })
        .to_string()
    }

    /// The key file the stand-in accepts.
    pub fn key_file(&self) -> String {
        self.key_file_with(PRIVATE_KEY_PEM)
    }

    /// `expires_in` of the tokens issued from now on.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.inner.lock().unwrap().token_lifetime = seconds;
    }

    /// Forgets every issued token (the next API call answers 401).
    pub fn revoke_tokens(&self) {
        self.inner.lock().unwrap().valid_tokens.clear();
    }

    pub fn seen(&self) -> Seen {
        self.inner.lock().unwrap().seen.clone()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn google_error(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// An error envelope for answers the fixtures do not hold (illustrative text).
fn envelope(code: u16, reason: &str, message: &str, status: &str) -> Value {
    json!({"error": {"code": code, "message": message, "errors": [
        {"message": message, "domain": "global", "reason": reason}], "status": status}})
}

async fn token(State(inner): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.seen.token_requests += 1;
    let reject = |inner: &mut Inner, description: &str| {
        inner.seen.rejected_assertions += 1;
        let mut body = fixture(F_TOKEN_ERROR);
        body["error_description"] = json!(description);
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        let mut body = fixture(F_TOKEN_ERROR);
        body["error"] = json!("unsupported_grant_type");
        body["error_description"] = json!("Invalid grant_type: ");
        inner.seen.rejected_assertions += 1;
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let Some(assertion) = form.get("assertion") else {
        return reject(&mut inner, "Missing required parameter: assertion");
    };
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return reject(&mut inner, "Invalid JWT Signature.");
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[inner.token_uri.clone()]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    let key = DecodingKey::from_rsa_pem(PUBLIC_KEY_PEM.as_bytes()).unwrap();
    let claims = match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(data) => data.claims,
        // The fixture's text for a bad signature; other failures name the claim.
        Err(e) => {
            let text = match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    "Invalid JWT Signature.".to_string()
                }
                other => format!("Invalid JWT: {other:?}"),
            };
            return reject(&mut inner, &text);
        }
    };
    let iat = claims["iat"].as_u64().unwrap_or(0);
    let exp = claims["exp"].as_u64().unwrap_or(0);
    let typ_ok = header.typ.as_deref() == Some("JWT");
    if !typ_ok || header.kid.as_deref() != Some(PRIVATE_KEY_ID) {
        return reject(&mut inner, "Invalid JWT: kid or typ");
    }
    if claims["scope"] != json!(SCOPE) {
        return reject(&mut inner, "Invalid JWT: scope");
    }
    if exp <= iat || exp - iat > 3600 || iat.abs_diff(now()) > 300 {
        return reject(
            &mut inner,
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
    }
    inner.next += 1;
    let access_token = format!("ya29.standin-{}", inner.next);
    inner.valid_tokens.insert(access_token.clone());
    inner.seen.token_claims.push(claims);
    inner.seen.token_headers.push(json!({
        "alg": format!("{:?}", header.alg), "typ": header.typ, "kid": header.kid}));
    let mut body = fixture(F_TOKEN);
    body["access_token"] = json!(access_token);
    body["expires_in"] = json!(inner.token_lifetime);
    body["scope"] = json!(SCOPE);
    Json(body).into_response()
}

/// `Err(401 response)` unless the bearer token is one the token endpoint issued.
// A stand-in handler helper: the Err is the ready-made refusal.
#[allow(clippy::result_large_err)]
fn authorize(inner: &mut Inner, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(t) if inner.valid_tokens.contains(t) => Ok(()),
        _ => {
            inner.seen.unauthorized += 1;
            Err(google_error(
                StatusCode::UNAUTHORIZED,
                envelope(
                    401,
                    "authError",
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                    "UNAUTHENTICATED",
                ),
            ))
        }
    }
}

/// Rewrites `jobReference.jobId` (and `kind`) of a fixture body.
fn with_job(mut body: Value, job_id: &str, kind: &str) -> Value {
    body["jobReference"]["jobId"] = json!(job_id);
    body["kind"] = json!(kind);
    body
}

const QUERY_KIND: &str = "bigquery#queryResponse";
const RESULTS_KIND: &str = "bigquery#getQueryResultsResponse";

fn one_int_schema(names: &[&str]) -> Value {
    json!({"fields": names.iter().map(|n| json!({"name": n, "type": "INT64", "mode": "NULLABLE"})).collect::<Vec<_>>()})
}

/// The complete first page of a scenario's result.
fn first_page(job: &Job, job_id: &str, kind: &str) -> Value {
    let mut body = match job.scenario {
        Scenario::People | Scenario::SlowPeople => fixture(F_QUERY_COMPLETE),
        Scenario::Cells => {
            let cells = fixture(F_CELLS);
            json!({"jobReference": {"projectId": "response-project", "jobId": "x", "location": "US"},
                   "jobComplete": true, "schema": cells["schema"], "rows": cells["rows"], "totalRows": "1"})
        }
        Scenario::Count => json!({"jobReference": {"projectId": "response-project", "jobId": "x"},
            "jobComplete": true, "schema": one_int_schema(&["rows", "nulls"]),
            "rows": [{"f": [{"v": "9"}, {"v": null}]}], "totalRows": "1"}),
        _ => json!({"jobReference": {"projectId": "response-project", "jobId": "x"},
            "jobComplete": true, "schema": one_int_schema(&["f0_"]),
            "rows": [{"f": [{"v": "1"}]}], "totalRows": "1"}),
    };
    if job.empty || job.scenario == Scenario::MissingDataset {
        body.as_object_mut().unwrap().remove("rows");
        body.as_object_mut().unwrap().remove("pageToken");
        body["totalRows"] = json!("0");
    }
    with_job(body, job_id, kind)
}

fn incomplete(job_id: &str, kind: &str) -> Value {
    with_job(fixture(F_QUERY_INCOMPLETE), job_id, kind)
}

fn is_wrapped(sql: &str) -> bool {
    sql.starts_with("select * from (\n") && sql.contains("\n) as backflow_q")
}

async fn jobs_query(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Err(r) = authorize(&mut inner, &headers) {
        return r;
    }
    inner.seen.queries.push(body.clone());
    let sql = body["query"].as_str().unwrap_or_default().to_string();
    if body.get("useLegacySql") != Some(&json!(false)) {
        return google_error(
            StatusCode::BAD_REQUEST,
            envelope(
                400,
                "invalidQuery",
                "stand-in: useLegacySql must be sent as false",
                "INVALID_ARGUMENT",
            ),
        );
    }
    if !is_wrapped(&sql) {
        return google_error(
            StatusCode::BAD_REQUEST,
            envelope(
                400,
                "invalidQuery",
                "stand-in: the query is not wrapped read-only",
                "INVALID_ARGUMENT",
            ),
        );
    }
    let scenario = Scenario::of(&sql);
    if scenario == Scenario::Cells && body["formatOptions"]["useInt64Timestamp"] != json!(true) {
        return google_error(
            StatusCode::BAD_REQUEST,
            envelope(
                400,
                "invalid",
                "stand-in: expected formatOptions.useInt64Timestamp",
                "INVALID_ARGUMENT",
            ),
        );
    }
    match scenario {
        Scenario::Invalid => return google_error(StatusCode::BAD_REQUEST, fixture(F_ERR_INVALID)),
        Scenario::RateLimit => return google_error(StatusCode::FORBIDDEN, fixture(F_ERR_RATE)),
        Scenario::Quota => return google_error(StatusCode::FORBIDDEN, fixture(F_ERR_QUOTA)),
        Scenario::MissingTable => {
            return google_error(
                StatusCode::NOT_FOUND,
                envelope(404, "notFound", "Not found: Table my-project:people.missing_table was not found in location US", "NOT_FOUND"),
            )
        }
        Scenario::MissingDataset => {
            return google_error(
                StatusCode::NOT_FOUND,
                envelope(404, "notFound", "Not found: Dataset standin-project:nope was not found in location US", "NOT_FOUND"),
            )
        }
        Scenario::Denied => {
            return google_error(
                StatusCode::FORBIDDEN,
                envelope(403, "accessDenied", "Access Denied: Table my-project:people.denied: User does not have permission to query table my-project:people.denied.", "PERMISSION_DENIED"),
            )
        }
        _ => {}
    }
    inner.next += 1;
    let job_id = format!("job_standin_{}", inner.next);
    let job = Job {
        scenario,
        empty: sql.ends_with(" limit 0"),
        polls: 0,
        cancelled: false,
    };
    let answer = match scenario {
        Scenario::SlowPeople | Scenario::FailsLater | Scenario::NeverFinishes => {
            incomplete(&job_id, QUERY_KIND)
        }
        _ => first_page(&job, &job_id, QUERY_KIND),
    };
    inner.jobs.insert(job_id, job);
    Json(answer).into_response()
}

fn unknown_job(job_id: &str) -> Response {
    google_error(
        StatusCode::NOT_FOUND,
        envelope(
            404,
            "notFound",
            &format!("Not found: Job standin-project:{job_id}"),
            "NOT_FOUND",
        ),
    )
}

async fn get_query_results(
    State(inner): State<Shared>,
    Path((_project, job_id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Err(r) = authorize(&mut inner, &headers) {
        return r;
    }
    inner
        .seen
        .results_calls
        .push((job_id.clone(), params.clone()));
    let Some(job) = inner.jobs.get_mut(&job_id) else {
        return unknown_job(&job_id);
    };
    match params.get("pageToken").map(String::as_str) {
        Some("page-2") => {
            return Json(with_job(fixture(F_PAGE_2), &job_id, RESULTS_KIND)).into_response()
        }
        Some("page-3") => {
            let body = json!({"jobReference": {"projectId": "response-project", "jobId": job_id},
                "jobComplete": true, "totalRows": "9",
                "rows": [{"f": [{"v": "Dino"}, {"v": "1"}]}]});
            return Json(with_job(body, &job_id, RESULTS_KIND)).into_response();
        }
        Some(other) => {
            return google_error(
                StatusCode::BAD_REQUEST,
                envelope(
                    400,
                    "invalid",
                    &format!("stand-in: unknown pageToken {other}"),
                    "INVALID_ARGUMENT",
                ),
            )
        }
        None => {}
    }
    job.polls += 1;
    let done = match job.scenario {
        Scenario::SlowPeople => job.polls > 2,
        Scenario::FailsLater | Scenario::NeverFinishes => false,
        _ => true,
    };
    let job = job.clone();
    let body = if done {
        first_page(&job, &job_id, RESULTS_KIND)
    } else {
        incomplete(&job_id, RESULTS_KIND)
    };
    Json(body).into_response()
}

async fn jobs_get(
    State(inner): State<Shared>,
    Path((_project, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Err(r) = authorize(&mut inner, &headers) {
        return r;
    }
    inner.seen.job_gets.push(job_id.clone());
    let Some(job) = inner.jobs.get(&job_id) else {
        return unknown_job(&job_id);
    };
    let mut body = if job.cancelled {
        let mut b = fixture(F_JOB_FAILED);
        let stopped = json!({"reason": "stopped", "message": "Job execution was cancelled: User requested cancellation"});
        b["status"]["errorResult"] = stopped.clone();
        b["status"]["errors"] = json!([stopped]);
        b
    } else if job.scenario == Scenario::FailsLater {
        fixture(F_JOB_FAILED)
    } else {
        fixture(F_JOB_RUNNING)
    };
    body["jobReference"]["jobId"] = json!(job_id);
    Json(body).into_response()
}

async fn jobs_cancel(
    State(inner): State<Shared>,
    Path((_project, job_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Err(r) = authorize(&mut inner, &headers) {
        return r;
    }
    inner.seen.cancels.push(job_id.clone());
    let Some(job) = inner.jobs.get_mut(&job_id) else {
        return unknown_job(&job_id);
    };
    job.cancelled = true;
    let mut running = fixture(F_JOB_RUNNING);
    running["jobReference"]["jobId"] = json!(job_id);
    Json(json!({"kind": "bigquery#jobCancelResponse", "job": running})).into_response()
}
