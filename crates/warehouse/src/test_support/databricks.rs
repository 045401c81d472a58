//! A local Databricks SQL Statement Execution API 2.0 stand-in, answering with the bodies
//! in `fixtures/wire/databricks/` (vendored from `../shared/fixtures/wire`).
//!
//! It checks what the API checks: `Authorization: Bearer <token>` on every call, the
//! `warehouse_id`, `wait_timeout` being `0s` or `5s`–`50s`, `disposition`/`format` being
//! INLINE + JSON_ARRAY (the only combination allowed for inline results), and that the
//! statement is wrapped `select * from (\n…\n) as backflow_q` (the connector's read-only
//! form). It answers PENDING then RUNNING then SUCCEEDED, serves chunks by their
//! `next_chunk_internal_link`, answers 200 with `state: FAILED`, and 429 / 503 with an
//! integer-seconds `Retry-After`, chosen by a word in the statement ([`Scenario::of`]).
//! The fixtures' statement id is replaced by a fresh id per statement (also inside the
//! chunk links); bodies the fixtures do not hold are marked illustrative where built.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const TOKEN: &str = "dapi0123456789abcdef0123456789abcdef";
/// A token that authenticates but may not use the warehouse.
pub const TOKEN_WITHOUT_WAREHOUSE_ACCESS: &str = "dapi-no-warehouse-access";
pub const WAREHOUSE_ID: &str = "abcdef0123456789";

const FIXTURE_ID: &str = "01ee48eb-5124-1922-bb90-f98c82f024fe";
const F_PENDING: &str =
    include_str!("../../../../fixtures/wire/databricks/statement-response-pending.json");
const F_SUCCEEDED: &str =
    include_str!("../../../../fixtures/wire/databricks/statement-response-succeeded-inline.json");
const F_LAST_CHUNK: &str =
    include_str!("../../../../fixtures/wire/databricks/result-chunk-inline-last.json");
const F_FAILED: &str =
    include_str!("../../../../fixtures/wire/databricks/statement-response-failed.json");
const F_429: &str =
    include_str!("../../../../fixtures/wire/databricks/error-429-rate-limited.json");
const F_404: &str =
    include_str!("../../../../fixtures/wire/databricks/error-404-statement-not-found.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// `range`: PENDING on submit, RUNNING, then SUCCEEDED with the fixture's two chunks.
    Range,
    /// `typed`: SUCCEEDED at once, one chunk with a cell of every type.
    Typed,
    /// `syntax`: 200 FAILED (the fixture) on submit.
    Syntax,
    /// `missing_table`: 200 FAILED `[TABLE_OR_VIEW_NOT_FOUND]` (illustrative).
    MissingTable,
    /// `denied`: 200 FAILED `[INSUFFICIENT_PERMISSIONS]` (illustrative).
    Denied,
    /// `fails_later`: PENDING, then 200 FAILED while polling.
    FailsLater,
    /// `throttle`: 429 with `Retry-After: 7`.
    Throttle,
    /// `unavailable`: 503 with `Retry-After: 3`.
    Unavailable,
    /// `never_finishes`: RUNNING until cancelled, then CANCELED.
    NeverFinishes,
    /// `closed`: PENDING, then CLOSED.
    Closed,
    /// `count`: one row `("9", null)`.
    Count,
    /// `select 1` (and anything else): one INT row.
    One,
}

impl Scenario {
    pub fn of(sql: &str) -> Self {
        let table = [
            ("range", Self::Range),
            ("typed", Self::Typed),
            ("syntax", Self::Syntax),
            ("missing_table", Self::MissingTable),
            ("denied", Self::Denied),
            ("fails_later", Self::FailsLater),
            ("throttle", Self::Throttle),
            ("unavailable", Self::Unavailable),
            ("never_finishes", Self::NeverFinishes),
            ("closed", Self::Closed),
            ("count", Self::Count),
        ];
        table
            .iter()
            .find(|(w, _)| sql.contains(w))
            .map(|(_, s)| *s)
            .unwrap_or(Self::One)
    }
}

#[derive(Debug, Clone)]
struct Statement {
    scenario: Scenario,
    empty: bool,
    polls: usize,
    cancelled: bool,
}

/// Everything the stand-in saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub submits: Vec<Value>,
    /// Statement ids of status polls, in order.
    pub polls: Vec<String>,
    /// Paths of chunk fetches, in order.
    pub chunk_fetches: Vec<String>,
    pub cancels: Vec<String>,
    /// Requests refused with 401.
    pub unauthorized: usize,
}

#[derive(Debug, Default)]
struct Inner {
    seen: Seen,
    statements: HashMap<String, Statement>,
    next: u64,
}

type Shared = Arc<Mutex<Inner>>;

#[derive(Debug)]
pub struct DatabricksStandIn {
    pub addr: SocketAddr,
    inner: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for DatabricksStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl DatabricksStandIn {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner: Shared = Arc::default();
        let app = Router::new()
            .route("/api/2.0/sql/statements", post(submit))
            .route("/api/2.0/sql/statements/{id}", get(status))
            .route(
                "/api/2.0/sql/statements/{id}/result/chunks/{index}",
                get(chunk),
            )
            .route("/api/2.0/sql/statements/{id}/cancel", post(cancel))
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

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Seen {
        self.inner.lock().unwrap().seen.clone()
    }
}

fn fixture(text: &str, id: &str) -> Value {
    serde_json::from_str(&text.replace(FIXTURE_ID, id)).unwrap()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

// A stand-in handler helper: the Err is the ready-made refusal.
#[allow(clippy::result_large_err)]
fn authorize(inner: &mut Inner, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(TOKEN) => Ok(()),
        Some(TOKEN_WITHOUT_WAREHOUSE_ACCESS) => Err(error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "User is not authorized to use SQL warehouse abcdef0123456789.",
        )),
        _ => {
            inner.seen.unauthorized += 1;
            Err(error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Credential was not sent or was of an unsupported type for this API.",
            ))
        }
    }
}

fn wait_timeout_ok(v: &Value) -> bool {
    match v.as_str() {
        None => v.is_null(),
        Some(s) => matches!(
            s.strip_suffix('s').and_then(|n| n.parse::<u32>().ok()),
            Some(0 | 5..=50)
        ),
    }
}

fn failed(id: &str, code: &str, message: &str) -> Value {
    json!({"statement_id": id, "status": {"state": "FAILED", "sql_state": "42P01",
        "error": {"error_code": code, "message": message}}})
}

fn state(id: &str, state: &str) -> Value {
    json!({"statement_id": id, "status": {"state": state}})
}

/// A single-chunk SUCCEEDED answer (illustrative: the shape of the fixture).
fn one_chunk(id: &str, columns: Value, rows: Value) -> Value {
    let mut body = fixture(F_SUCCEEDED, id);
    let n = rows.as_array().map_or(0, Vec::len);
    body["manifest"]["schema"] =
        json!({"column_count": columns.as_array().map_or(0, Vec::len), "columns": columns});
    body["manifest"]["total_chunk_count"] = json!(1);
    body["manifest"]["chunks"] = json!([{"chunk_index": 0, "row_offset": 0, "row_count": n}]);
    body["manifest"]["total_row_count"] = json!(n);
    body["result"] = json!({"chunk_index": 0, "row_offset": 0, "row_count": n, "data_array": rows});
    body
}

fn col(name: &str, pos: u32, type_name: &str, type_text: &str) -> Value {
    json!({"name": name, "position": pos, "type_name": type_name, "type_text": type_text})
}

fn succeeded(st: &Statement, id: &str) -> Value {
    let mut body = match st.scenario {
        Scenario::Range => fixture(F_SUCCEEDED, id),
        Scenario::Typed => {
            let mut dec = col("d", 4, "DECIMAL", "DECIMAL(10,2)");
            dec["type_precision"] = json!(10);
            dec["type_scale"] = json!(2);
            one_chunk(
                id,
                json!([
                    col("b", 0, "BOOLEAN", "BOOLEAN"),
                    col("i", 1, "INT", "INT"),
                    col("l", 2, "LONG", "BIGINT"),
                    col("f", 3, "DOUBLE", "DOUBLE"),
                    dec,
                    col("s", 5, "STRING", "STRING"),
                    col("dt", 6, "DATE", "DATE"),
                    col("ts", 7, "TIMESTAMP", "TIMESTAMP"),
                    col("bin", 8, "BINARY", "BINARY"),
                    col("arr", 9, "ARRAY", "ARRAY<STRING>"),
                    col("st", 10, "STRUCT", "STRUCT<city: STRING>"),
                    col("n", 11, "NULL", "VOID")
                ]),
                json!([[
                    "true",
                    "42",
                    "9007199254740993",
                    "1.5",
                    "123.45",
                    "hello",
                    "2024-01-31",
                    "2024-01-31T12:34:56.789Z",
                    "aGVsbG8=",
                    "[\"a\",\"b\"]",
                    "{\"city\":\"Paris\"}",
                    null
                ]]),
            )
        }
        Scenario::Count => one_chunk(
            id,
            json!([
                col("rows", 0, "LONG", "BIGINT"),
                col("nulls", 1, "LONG", "BIGINT")
            ]),
            json!([["9", null]]),
        ),
        _ => one_chunk(id, json!([col("1", 0, "INT", "INT")]), json!([["1"]])),
    };
    if st.empty {
        body["result"] = json!({"chunk_index": 0, "row_offset": 0, "row_count": 0});
        body["manifest"]["total_row_count"] = json!(0);
    }
    body
}

/// The answer for a statement's current state (after `polls` status calls).
fn answer(st: &Statement, id: &str) -> Value {
    use Scenario as S;
    if st.cancelled {
        return state(id, "CANCELED");
    }
    match (st.scenario, st.polls) {
        (S::Range, 0) | (S::FailsLater, 0) | (S::Closed, 0) => fixture(F_PENDING, id),
        (S::Range, 1) | (S::NeverFinishes, _) => state(id, "RUNNING"),
        (S::Syntax, _) | (S::FailsLater, _) => fixture(F_FAILED, id),
        (S::MissingTable, _) => failed(
            id,
            "BAD_REQUEST",
            "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`default`.`missing_table` cannot be found. Verify the spelling and correctness of the schema and catalog.",
        ),
        (S::Denied, _) => failed(
            id,
            "BAD_REQUEST",
            "[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have SELECT on Table 'main.default.denied'.",
        ),
        (S::Closed, _) => state(id, "CLOSED"),
        _ => succeeded(st, id),
    }
}

async fn submit(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Err(r) = authorize(&mut inner, &headers) {
        return r;
    }
    inner.seen.submits.push(body.clone());
    if body["warehouse_id"] != json!(WAREHOUSE_ID) {
        // Illustrative: the fixtures do not hold this answer.
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            "SQL warehouse does not exist.",
        );
    }
    if !wait_timeout_ok(&body["wait_timeout"]) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "wait_timeout must be 0s or between 5s and 50s",
        );
    }
    let inline = body["disposition"].as_str().unwrap_or("INLINE") == "INLINE";
    let format = body["format"].as_str().unwrap_or("JSON_ARRAY");
    if !inline || format != "JSON_ARRAY" {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "stand-in: expected INLINE JSON_ARRAY",
        );
    }
    let sql = body["statement"].as_str().unwrap_or_default().to_string();
    if !(sql.starts_with("select * from (\n") && sql.contains("\n) as backflow_q")) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            "stand-in: the statement is not wrapped read-only",
        );
    }
    let scenario = Scenario::of(&sql);
    if body["schema"] == json!("missing_schema") {
        // Illustrative: `schema` acts like USE SCHEMA, which fails for a missing one.
        inner.next += 1;
        let id = format!("01ee48eb-0000-0000-0000-{:012}", inner.next);
        return Json(failed(
            &id,
            "BAD_REQUEST",
            "[SCHEMA_NOT_FOUND] The schema `main`.`missing_schema` cannot be found. Verify the spelling and correctness of the schema and catalog.",
        ))
        .into_response();
    }
    match scenario {
        Scenario::Throttle => {
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")], Json(serde_json::from_str::<Value>(F_429).unwrap()))
                .into_response()
        }
        Scenario::Unavailable => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "3")],
                Json(json!({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "The service is temporarily unavailable."})),
            )
                .into_response()
        }
        _ => {}
    }
    inner.next += 1;
    let id = format!("01ee48eb-0000-0000-0000-{:012}", inner.next);
    let st = Statement {
        scenario,
        empty: sql.ends_with(" limit 0"),
        polls: 0,
        cancelled: false,
    };
    let body = answer(&st, &id);
    inner.statements.insert(id, st);
    Json(body).into_response()
}

async fn status(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Err(r) = authorize(&mut inner, &headers) {
        return r;
    }
    inner.seen.polls.push(id.clone());
    let Some(st) = inner.statements.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(fixture(F_404, &id))).into_response();
    };
    st.polls += 1;
    let st = st.clone();
    Json(answer(&st, &id)).into_response()
}

async fn chunk(
    State(inner): State<Shared>,
    Path((id, index)): Path<(String, u32)>,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Err(r) = authorize(&mut inner, &headers) {
        return r;
    }
    inner.seen.chunk_fetches.push(format!(
        "/api/2.0/sql/statements/{id}/result/chunks/{index}"
    ));
    match inner.statements.get(&id) {
        Some(st) if st.scenario == Scenario::Range && index == 1 => {
            Json(fixture(F_LAST_CHUNK, &id)).into_response()
        }
        _ => (StatusCode::NOT_FOUND, Json(fixture(F_404, &id))).into_response(),
    }
}

async fn cancel(
    State(inner): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut inner = inner.lock().unwrap();
    if let Err(r) = authorize(&mut inner, &headers) {
        return r;
    }
    inner.seen.cancels.push(id.clone());
    if let Some(st) = inner.statements.get_mut(&id) {
        st.cancelled = true;
    }
    // "Receiving response indicates successful receipt": an empty body.
    StatusCode::OK.into_response()
}
