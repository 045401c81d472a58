//! A Snowflake SQL API v2 stand-in following fixtures/wire/snowflake-sql-api.md.
//!
//! What it holds clients to: `Authorization: Bearer`, `X-Snowflake-Authorization-Token-Type`
//! (`KEYPAIR_JWT`: RS256 signature checked against the test key's public key, `iss` =
//! `MYACCOUNT.MYUSER.SHA256:<fp>` with the fingerprint computed here from the public key,
//! `sub` = `MYACCOUNT.MYUSER`, `exp` in the future and at most one hour after `iat`;
//! `OAUTH` or absent: the OAuth token), a `User-Agent`, `Content-Type: application/json`
//! on POSTs (415 otherwise), and `MULTI_STATEMENT_COUNT` (either case, string or integer;
//! a count mismatch is a 422 `000008` with the documented message). It answers with the
//! documented bodies: 200 ResultSet (`rowType` types as the test wrote them; the built-ins
//! use the live lower-case form), 202 QueryStatus while a statement "runs", partitions ≥ 1
//! as `{"data": [...]}` gzip-encoded with `Content-Encoding: gzip`, 422 QueryFailureStatus,
//! 429 `390505`, 401 `390303` (OAuth) or `390144` `JWT token is invalid.` (the SQL API's
//! JWT 401 body is unverified; this one uses the same envelope), cancel 200 `000604` /
//! 422 `000709`, and after a cancel a status 422 `000604`.
//!
//! Statements are answered by [`Script`]s registered with [`SnowflakeStandIn::on`]
//! (matched by substring, last registered first), else by built-ins for the connection
//! test (`current_version()...`, `information_schema.schemata`), else a 422 "does not
//! exist or not authorized" compile error. A trailing `limit N` truncates the rows.
//! Resubmitting a `requestId` returns the first submission's statement (it never runs
//! twice). Unknown database or warehouse in a request: `current_database()` /
//! `current_warehouse()` answer NULL (real Snowflake's exact answer is unverified).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::SourceSettings;

pub const ACCOUNT: &str = "MYACCOUNT";
pub const USER: &str = "MYUSER";
pub const DATABASE: &str = "ANALYTICS";
pub const WAREHOUSE: &str = "TRANSFORMING";
pub const ROLE: &str = "REPORTER";
pub const SCHEMA: &str = "PUBLIC";
pub const OAUTH_TOKEN: &str = "stand-in-oauth-token";
pub const VERSION: &str = "8.40.1";

/// The test key pair's private key (PKCS#8 PEM; generated for these tests only).
pub const PRIVATE_KEY_PEM: &str = include_str!("snowflake-test-key.pem");
/// A different key: its JWTs carry the right claims but a signature the stand-in refuses.
pub const OTHER_PRIVATE_KEY_PEM: &str = include_str!("snowflake-other-key.pem");

/// Result rows and their `rowType`, split into partitions (partition 0 inline).
#[derive(Debug, Clone)]
pub struct Table {
    pub row_type: Vec<Value>,
    pub partitions: Vec<Vec<Vec<Option<String>>>>,
}

impl Table {
    /// A `rowType` entry as live responses write it.
    pub fn column(name: &str, kind: &str, precision: Option<u64>, scale: Option<i64>) -> Value {
        json!({
            "name": name, "database": DATABASE, "schema": SCHEMA, "table": "T",
            "type": kind, "precision": precision, "scale": scale,
            "length": if kind.eq_ignore_ascii_case("text") { Some(16_777_216) } else { None },
            "byteLength": null, "nullable": true, "collation": null
        })
    }
}

/// How the stand-in answers a statement.
#[derive(Debug, Clone)]
pub enum Script {
    /// 202 for the first `running_polls` status polls (0: 200 at once), then the rows.
    Rows { table: Table, running_polls: u32 },
    /// The POST answers `status` with `body` (and `Retry-After` when given).
    Fail {
        status: u16,
        body: Value,
        retry_after: Option<String>,
    },
    /// 202, then after `running_polls` polls the status GET answers `status` + `body`.
    FailWhilePolling {
        running_polls: u32,
        status: u16,
        body: Value,
    },
    /// 202 on every poll until cancelled.
    Hang,
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
    /// Claims of a key-pair JWT that verified.
    pub jwt_claims: Option<Value>,
}

struct Statement {
    script: Script,
    sql_limit: Option<usize>,
    polls: u32,
    cancelled: bool,
    request_id: Option<String>,
    /// For built-ins: the full answer.
    builtin: Option<Table>,
}

#[derive(Default)]
struct Inner {
    scripts: Vec<(String, Script)>,
    statements: HashMap<String, Statement>,
    by_request_id: HashMap<String, String>,
    next_handle: u64,
    requests: Vec<Recorded>,
    executions: u32,
    fail_next_posts: Vec<u16>,
    throttle_polls: u32,
    schemas: Vec<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    public_modulus: Vec<u8>,
    public_exponent: Vec<u8>,
    fingerprint: String,
}

/// A running stand-in; stops when dropped.
pub struct SnowflakeStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SnowflakeStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Base64 (standard, padded) of SHA-256 over the public key's DER SubjectPublicKeyInfo.
pub fn fingerprint_of(private_pem: &str) -> String {
    let key = RsaPrivateKey::from_pkcs8_pem(private_pem).unwrap();
    let der = key.to_public_key().to_public_key_der().unwrap();
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(der.as_bytes()))
}

impl SnowflakeStandIn {
    pub async fn start() -> Self {
        let key = RsaPrivateKey::from_pkcs8_pem(PRIVATE_KEY_PEM).unwrap();
        let public = key.to_public_key();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                schemas: vec![SCHEMA.to_string()],
                ..Inner::default()
            }),
            public_modulus: public.n().to_bytes_be(),
            public_exponent: public.e().to_bytes_be(),
            fingerprint: fingerprint_of(PRIVATE_KEY_PEM),
        });
        let app = Router::new()
            .route("/api/v2/statements", post(submit))
            .route("/api/v2/statements/{handle}", get(status))
            .route("/api/v2/statements/{handle}/cancel", post(cancel))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Settings of a source pointing here (`auth` = `key_pair` or `oauth`).
    pub fn settings(&self, auth: &str) -> SourceSettings {
        [
            ("account", ACCOUNT.to_lowercase()),
            ("user", USER.to_lowercase()),
            ("database", DATABASE.into()),
            ("warehouse", WAREHOUSE.into()),
            ("role", ROLE.into()),
            ("schema", SCHEMA.into()),
            ("auth", auth.into()),
            ("endpoint", self.endpoint()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Answers statements containing `statement_contains` with `script`.
    pub fn on(&self, statement_contains: &str, script: Script) {
        self.lock()
            .scripts
            .push((statement_contains.to_string(), script));
    }

    /// The next POSTs answer these statuses (empty bodies) after registering the
    /// statement, as if the answer was lost: a resubmission must reuse its `requestId`.
    pub fn fail_next_posts(&self, statuses: &[u16]) {
        self.lock().fail_next_posts = statuses.to_vec();
    }

    /// The next `n` status polls answer 429.
    pub fn throttle_polls(&self, n: u32) {
        self.lock().throttle_polls = n;
    }

    /// Schemas the role may use (default: `PUBLIC`).
    pub fn set_schemas(&self, schemas: &[&str]) {
        self.lock().schemas = schemas.iter().map(|s| s.to_string()).collect();
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Statements run (resubmissions of a known `requestId` not counted).
    pub fn executions(&self) -> u32 {
        self.lock().executions
    }

    /// Handles cancelled through the cancel endpoint.
    pub fn cancelled(&self) -> Vec<String> {
        let inner = self.lock();
        let mut handles: Vec<_> = inner
            .statements
            .iter()
            .filter(|(_, s)| s.cancelled)
            .map(|(h, _)| h.clone())
            .collect();
        handles.sort();
        handles
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap()
    }
}

// ---- request checks ----

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn jwt_invalid() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        json!({"code": "390144", "message": "JWT token is invalid."}),
    )
}

fn oauth_invalid() -> Response {
    // fixtures/wire/snowflake/error-401-invalid-oauth.json
    json_response(
        StatusCode::UNAUTHORIZED,
        json!({"code": "390303", "message": "Invalid OAuth access token. ...TTTTTTTT"}),
    )
}

/// Checks the auth headers; on success the verified JWT claims (key pair) or `Null`.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Value, Response> {
    let token_type = headers
        .get("x-snowflake-authorization-token-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("OAUTH");
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(if token_type == "KEYPAIR_JWT" {
            jwt_invalid()
        } else {
            oauth_invalid()
        });
    };
    match token_type {
        "KEYPAIR_JWT" => verify_jwt(shared, token).ok_or_else(jwt_invalid),
        "OAUTH" if token == OAUTH_TOKEN => Ok(Value::Null),
        _ => Err(oauth_invalid()),
    }
}

fn verify_jwt(shared: &Shared, token: &str) -> Option<Value> {
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
    let header = decode_header(token).ok()?;
    if header.alg != Algorithm::RS256 || header.typ.as_deref() != Some("JWT") {
        return None;
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = DecodingKey::from_rsa_components(
        &b64.encode(&shared.public_modulus),
        &b64.encode(&shared.public_exponent),
    )
    .ok()?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
    validation.leeway = 0;
    let claims: Value = decode(token, &key, &validation).ok()?.claims;
    let expected_sub = format!("{ACCOUNT}.{USER}");
    let expected_iss = format!("{expected_sub}.SHA256:{}", shared.fingerprint);
    let iat = claims["iat"].as_u64()?;
    let exp = claims["exp"].as_u64()?;
    let ok = claims["iss"] == expected_iss.as_str()
        && claims["sub"] == expected_sub.as_str()
        && iat <= now() + 60
        && exp > now()
        && exp > iat
        && exp - iat <= 3600;
    ok.then_some(claims)
}

fn record(
    shared: &Shared,
    method: &str,
    path: String,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Option<Value>,
    jwt_claims: Option<Value>,
) {
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    shared.inner.lock().unwrap().requests.push(Recorded {
        method: method.to_string(),
        path,
        query: query.clone().into_iter().collect(),
        headers,
        body,
        jwt_claims,
    });
}

/// Auth, then `User-Agent`: the common checks of every endpoint.
fn admit(shared: &Shared, headers: &HeaderMap) -> Result<Option<Value>, Response> {
    let claims = authenticate(shared, headers)?;
    if headers.get("user-agent").is_none() {
        return Err(json_response(
            StatusCode::BAD_REQUEST,
            json!({"code": "390142", "message": "Incoming request does not contain a valid payload."}),
        ));
    }
    Ok((!claims.is_null()).then_some(claims))
}

// ---- statements ----

fn statement_count(sql: &str) -> usize {
    let mut count = 0;
    let mut in_string = false;
    let mut current = String::new();
    for c in sql.chars() {
        match c {
            '\'' => in_string = !in_string,
            ';' if !in_string => {
                if !current.trim().is_empty() {
                    count += 1;
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    count + usize::from(!current.trim().is_empty())
}

fn desired_count(body: &Value) -> Option<usize> {
    let params = body.get("parameters")?.as_object()?;
    let value = params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("multi_statement_count"))?
        .1;
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
}

fn trailing_limit(sql: &str) -> Option<usize> {
    let lower = sql.trim().to_lowercase();
    let (_, n) = lower.rsplit_once("limit ")?;
    n.trim().parse().ok()
}

fn status_url(handle: &str) -> String {
    format!("/api/v2/statements/{handle}")
}

fn running_body(handle: &str) -> Value {
    // fixtures/wire/snowflake/post-statements-202-async.json
    json!({
        "code": "333334",
        "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
        "statementHandle": handle,
        "statementStatusUrl": status_url(handle),
    })
}

fn limited(table: &Table, limit: Option<usize>) -> Table {
    let Some(mut left) = limit else {
        return table.clone();
    };
    let mut partitions = Vec::new();
    for partition in &table.partitions {
        let take = partition.len().min(left);
        left -= take;
        if take > 0 {
            partitions.push(partition[..take].to_vec());
        }
    }
    if partitions.is_empty() {
        partitions.push(Vec::new());
    }
    Table {
        row_type: table.row_type.clone(),
        partitions,
    }
}

fn result_body(handle: &str, request_id: Option<&str>, table: &Table) -> Value {
    let partition_info: Vec<Value> = table
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let size = serde_json::to_string(p).unwrap().len();
            if i == 0 {
                json!({"rowCount": p.len(), "uncompressedSize": size})
            } else {
                json!({"rowCount": p.len(), "uncompressedSize": size, "compressedSize": size / 4})
            }
        })
        .collect();
    let num_rows: usize = table.partitions.iter().map(Vec::len).sum();
    json!({
        "resultSetMetaData": {
            "numRows": num_rows,
            "format": "jsonv2",
            "rowType": table.row_type,
            "partitionInfo": partition_info,
        },
        "data": table.partitions.first().cloned().unwrap_or_default(),
        "code": "090001",
        "statementStatusUrl": status_url(handle),
        "requestId": request_id,
        "sqlState": "00000",
        "statementHandle": handle,
        "message": "Statement executed successfully.",
        "createdOn": now() * 1000,
    })
}

fn builtin(inner: &Inner, sql: &str, body: &Value) -> Option<Table> {
    let lower = sql.to_lowercase();
    let known = |field: &str, value: &str| body[field].as_str() == Some(value);
    if lower.contains("current_version()") {
        let database = known("database", DATABASE).then(|| DATABASE.to_string());
        let warehouse = known("warehouse", WAREHOUSE).then(|| WAREHOUSE.to_string());
        let role = body["role"].as_str().unwrap_or(ROLE).to_string();
        return Some(Table {
            row_type: [
                "CURRENT_VERSION()",
                "CURRENT_DATABASE()",
                "CURRENT_WAREHOUSE()",
                "CURRENT_ROLE()",
            ]
            .iter()
            .map(|n| Table::column(n, "text", None, None))
            .collect(),
            partitions: vec![vec![vec![
                Some(VERSION.into()),
                database,
                warehouse,
                Some(role),
            ]]],
        });
    }
    if lower.contains("information_schema.schemata") {
        let wanted = body["bindings"]["1"]["value"].as_str().unwrap_or_default();
        let visible = known("database", DATABASE) && inner.schemas.iter().any(|s| s == wanted);
        return Some(Table {
            row_type: vec![Table::column("COUNT(*)", "fixed", Some(18), Some(0))],
            partitions: vec![vec![vec![Some(if visible { "1" } else { "0" }.into())]]],
        });
    }
    None
}

fn not_found(handle: &str) -> Value {
    json!({
        "code": "002003",
        "sqlState": "02000",
        "message": "SQL compilation error:\nObject 'UNKNOWN' does not exist or not authorized.",
        "statementHandle": handle,
    })
}

async fn submit(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let claims = match admit(&shared, &headers) {
        Ok(c) => c,
        Err(r) => {
            record(
                &shared,
                "POST",
                "/api/v2/statements".into(),
                &query,
                &headers,
                parsed,
                None,
            );
            return r;
        }
    };
    record(
        &shared,
        "POST",
        "/api/v2/statements".into(),
        &query,
        &headers,
        parsed.clone(),
        claims,
    );
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let Some(body) = parsed.filter(|b| b["statement"].is_string()) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"code": "390142", "message": "Incoming request does not contain a valid payload."}),
        );
    };
    let request_id = query.get("requestId").cloned();
    let mut inner = shared.inner.lock().unwrap();
    // A known requestId: the statement it started, never a second run.
    if let Some(handle) = request_id
        .as_ref()
        .and_then(|id| inner.by_request_id.get(id))
        .cloned()
    {
        if !inner.fail_next_posts.is_empty() {
            let status = inner.fail_next_posts.remove(0);
            return StatusCode::from_u16(status).unwrap().into_response();
        }
        return answer(&mut inner, &handle, false);
    }
    inner.next_handle += 1;
    let handle = format!("01b2c3d4-0000-0000-0000-{:012x}", inner.next_handle);
    let sql = body["statement"].as_str().unwrap_or_default().to_string();
    let actual = statement_count(&sql);
    let desired = desired_count(&body).unwrap_or(1);
    if desired != 0 && actual != desired {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({
                "code": "000008",
                "sqlState": "0A000",
                "message": format!("Actual statement count {actual} did not match the desired statement count {desired}."),
                "statementHandle": handle,
            }),
        );
    }
    let script = inner
        .scripts
        .iter()
        .rev()
        .find(|(key, _)| sql.contains(key.as_str()))
        .map(|(_, s)| s.clone());
    let builtin = if script.is_none() {
        builtin(&inner, &sql, &body)
    } else {
        None
    };
    let script = match (script, &builtin) {
        (Some(s), _) => s,
        (None, Some(_)) => Script::Hang, // unused: builtin answers directly
        (None, None) => Script::Fail {
            status: 422,
            body: not_found(&handle),
            retry_after: None,
        },
    };
    inner.executions += 1;
    if let Some(id) = &request_id {
        inner.by_request_id.insert(id.clone(), handle.clone());
    }
    inner.statements.insert(
        handle.clone(),
        Statement {
            script,
            sql_limit: trailing_limit(&sql),
            polls: 0,
            cancelled: false,
            request_id,
            builtin,
        },
    );
    if !inner.fail_next_posts.is_empty() {
        let status = inner.fail_next_posts.remove(0);
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    answer(&mut inner, &handle, false)
}

/// The statement's answer now: to its POST (`poll` false) or to a status GET.
fn answer(inner: &mut Inner, handle: &str, poll: bool) -> Response {
    let statement = inner.statements.get_mut(handle).unwrap();
    if statement.cancelled {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code": "000604", "sqlState": "57014", "message": "SQL execution canceled", "statementHandle": handle}),
        );
    }
    if poll {
        statement.polls += 1;
    }
    let request_id = statement.request_id.clone();
    if let Some(table) = &statement.builtin {
        return json_response(
            StatusCode::OK,
            result_body(handle, request_id.as_deref(), table),
        );
    }
    match &statement.script {
        Script::Rows {
            table,
            running_polls,
        } => {
            if *running_polls > 0 && statement.polls <= *running_polls {
                return json_response(StatusCode::ACCEPTED, running_body(handle));
            }
            let table = limited(table, statement.sql_limit);
            json_response(
                StatusCode::OK,
                result_body(handle, request_id.as_deref(), &table),
            )
        }
        Script::Fail {
            status,
            body,
            retry_after,
        } => {
            let mut response = json_response(StatusCode::from_u16(*status).unwrap(), body.clone());
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_str(value).unwrap());
            }
            response
        }
        Script::FailWhilePolling {
            running_polls,
            status,
            body,
        } => {
            if !poll || statement.polls <= *running_polls {
                return json_response(StatusCode::ACCEPTED, running_body(handle));
            }
            json_response(StatusCode::from_u16(*status).unwrap(), body.clone())
        }
        Script::Hang => json_response(StatusCode::ACCEPTED, running_body(handle)),
    }
}

async fn status(
    State(shared): State<Arc<Shared>>,
    Path(handle): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = status_url(&handle);
    let claims = match admit(&shared, &headers) {
        Ok(c) => c,
        Err(r) => {
            record(&shared, "GET", path, &query, &headers, None, None);
            return r;
        }
    };
    record(&shared, "GET", path, &query, &headers, None, claims);
    let mut inner = shared.inner.lock().unwrap();
    if !inner.statements.contains_key(&handle) {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code": "000709", "message": format!("Statement {handle} not found"), "sqlState": "02000", "statementHandle": handle}),
        );
    }
    let partition: usize = query
        .get("partition")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    if partition == 0 {
        if inner.throttle_polls > 0 {
            inner.throttle_polls -= 1;
            return json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"code": "390505", "message": "Too many requests."}),
            );
        }
        return answer(&mut inner, &handle, true);
    }
    let statement = &inner.statements[&handle];
    let table = match (&statement.script, &statement.builtin) {
        (_, Some(t)) => t.clone(),
        (Script::Rows { table, .. }, None) => limited(table, statement.sql_limit),
        _ => Table {
            row_type: vec![],
            partitions: vec![],
        },
    };
    let Some(rows) = table.partitions.get(partition) else {
        return json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code": "000709", "message": format!("Statement {handle} partition {partition} not found"), "sqlState": "02000", "statementHandle": handle}),
        );
    };
    // Partitions ≥ 1: data only, gzip-encoded.
    let body = json!({ "data": rows }).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let compressed = gz.finish().unwrap();
    (
        StatusCode::OK,
        [
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        compressed,
    )
        .into_response()
}

async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(handle): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let path = format!("{}/cancel", status_url(&handle));
    let claims = match admit(&shared, &headers) {
        Ok(c) => c,
        Err(r) => {
            record(&shared, "POST", path, &query, &headers, None, None);
            return r;
        }
    };
    record(&shared, "POST", path, &query, &headers, None, claims);
    let mut inner = shared.inner.lock().unwrap();
    match inner.statements.get_mut(&handle) {
        Some(statement) => {
            statement.cancelled = true;
            // fixtures/wire/snowflake/cancel-200.json
            json_response(
                StatusCode::OK,
                json!({"code": "000604", "sqlState": "57014", "message": "SQL execution canceled", "statementHandle": handle, "statementStatusUrl": status_url(&handle)}),
            )
        }
        // fixtures/wire/snowflake/cancel-422-not-found.json
        None => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"code": "000709", "message": format!("Statement {handle} not found"), "sqlState": "02000", "statementHandle": handle}),
        ),
    }
}
