//! A Salesforce Bulk API 2.0 ingest stand-in (fixtures/wire/salesforce-bulk-api-2.md) plus
//! the one REST query form the destination's deletes use.
//!
//! Checked as Salesforce does: `Authorization: Bearer <token>` (401
//! `INVALID_SESSION_ID`), a job's `operation`, `externalIdFieldName` for upsert,
//! `contentType: CSV`; the upload is `PUT` `text/csv` while the job is `Open` (201, no
//! body); nothing is processed until `PATCH {"state":"UploadComplete"}`; polling shows
//! `UploadComplete`, then `InProgress`, then `JobComplete`. The job's `contentUrl` is
//! `services/data/62.0/…` **without the `v`**, as in the quick-start fixture, so clients
//! must treat it as opaque. Results: `failedResults/` (`"sf__Id","sf__Error"` + original
//! columns) and `successfulResults/` (`"sf__Id","sf__Created"` + columns). Errors are
//! arrays `[{errorCode, message}]`; [`Fault::RateLimited`] answers the org limit, 403
//! `REQUEST_LIMIT_EXCEEDED` (no `Retry-After`: none is documented); 404 for unknown jobs.
//!
//! Faults: [`Fault`]s for any call, or for one [`Step`] of the flow
//! ([`SalesforceStandIn::push_fault_at`]; a [`Fault::Hang`] there holds, say, the close of
//! a job while a test kills the client); [`JobEnd`] makes the next job end `Failed` (with
//! `errorMessage`, processed rows kept, the rest in `unprocessedrecords/`) or `Aborted`.
//! Result files are served as the fixture says: successful / failed results once the job
//! is `JobComplete` or `Failed`, unprocessed records once it is `Failed` or `Aborted`
//! (`InvalidJobState` before).
//!
//! A row whose external id is in [`SalesforceStandIn::reject`] fails with
//! `REQUIRED_FIELD_MISSING:…` (the illustrative layout of the fixture). `#N/A` sets a field
//! to null; an empty field is ignored. Holds: key = external id value → fields merged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, put};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::server::{dropped, serve, Fault, Holds, Kill, Running, StepFaults};
use crate::destinations::csv;

pub const TOKEN: &str = "00D5fORGID!AQ0AQexampleaccesstoken";
const F_403: &str =
    include_str!("../../../../../fixtures/wire/salesforce/error-403-request-limit.json");
const F_404: &str =
    include_str!("../../../../../fixtures/wire/salesforce/error-404-not-found.json");

#[derive(Debug, Clone)]
struct Job {
    spec: Value,
    state: String,
    polls: u32,
    csv: Option<String>,
    failed: Vec<(String, String, Vec<String>)>,
    succeeded: Vec<(String, bool, Vec<String>)>,
    /// Rows a `Failed` or `Aborted` job never processed (`unprocessedrecords/`).
    unprocessed: Vec<Vec<String>>,
    header: Vec<String>,
    error_message: Option<String>,
}

/// Which call of the job flow a fault queued with [`SalesforceStandIn::push_fault_at`]
/// meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// `POST /jobs/ingest`.
    Create,
    /// `PUT …/batches`.
    Upload,
    /// `PATCH /jobs/ingest/{id}` (`UploadComplete` or `Aborted`).
    Close,
    /// `GET /jobs/ingest/{id}`.
    Poll,
    /// `GET …/successfulResults/`, `failedResults/`, `unprocessedrecords/`.
    Results,
    /// `GET /query`.
    Query,
}

/// How the next closed job ends instead of `JobComplete` ([`SalesforceStandIn::end_next_job`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// Salesforce gave up on the job after `processed` rows: those stay applied (Bulk 2.0
    /// does not roll back), the rest are unprocessed; `errorMessage` is `message`.
    Failed { processed: usize, message: String },
    /// Someone aborted the job after `processed` rows were applied.
    Aborted { processed: usize },
}

#[derive(Debug, Default)]
struct Inner {
    holds: Holds,
    jobs: BTreeMap<String, Job>,
    /// external id → Salesforce Id, per object.
    ids: BTreeMap<(String, String), String>,
    next: u64,
    reject: BTreeSet<String>,
    uploads: Vec<String>,
    ends: std::collections::VecDeque<JobEnd>,
}

#[derive(Debug)]
struct Shared {
    faults: StepFaults<Step>,
    /// Requests answered [`Fault::Hang`] and still hanging.
    hanging: std::sync::atomic::AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
pub struct SalesforceStandIn {
    shared: Arc<Shared>,
    running: Running,
}

impl SalesforceStandIn {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            faults: StepFaults::default(),
            hanging: Default::default(),
            inner: Mutex::new(Inner {
                next: 1,
                ..Inner::default()
            }),
        });
        let router = Router::new()
            .route(
                "/services/data/{version}/jobs/ingest",
                get(list).post(create),
            )
            .route(
                "/services/data/{version}/jobs/ingest/{id}",
                patch(close).get(info),
            )
            .route(
                "/services/data/{version}/jobs/ingest/{id}/batches",
                put(upload),
            )
            .route(
                "/services/data/{version}/jobs/ingest/{id}/{which}/",
                get(results),
            )
            .route("/services/data/{version}/query", get(query))
            .with_state(Arc::clone(&shared));
        let running = serve(router).await;
        Self { shared, running }
    }

    /// The `instance_url` setting.
    pub fn instance_url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    pub fn holds(&self) -> Holds {
        self.shared.inner.lock().unwrap().holds.clone()
    }

    /// Upload bodies received, in order.
    pub fn uploads(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().uploads.clone()
    }

    /// Jobs created (spec JSON), in id order.
    pub fn jobs(&self) -> Vec<Value> {
        let inner = self.shared.inner.lock().unwrap();
        inner.jobs.values().map(|j| j.spec.clone()).collect()
    }

    /// Rows with this external id value fail.
    pub fn reject(&self, external_id: &str) {
        self.shared
            .inner
            .lock()
            .unwrap()
            .reject
            .insert(external_id.into());
    }

    /// Stops rejecting rows.
    pub fn accept_all(&self) {
        self.shared.inner.lock().unwrap().reject.clear();
    }

    /// A fault for the next request of any step.
    pub fn push_fault(&self, fault: Fault) {
        self.shared.faults.push(fault);
    }

    /// Faults queued and not met yet (any step).
    pub fn pending_faults(&self) -> usize {
        self.shared.faults.pending()
    }

    /// A fault for the next request of `step` only (checked before [`Self::push_fault`]'s).
    pub fn push_fault_at(&self, step: Step, fault: Fault) {
        self.shared.faults.push_at(step, fault);
    }

    /// The next job closed with `UploadComplete` ends as `end` says.
    pub fn end_next_job(&self, end: JobEnd) {
        self.shared.inner.lock().unwrap().ends.push_back(end);
    }

    /// Requests hanging on a [`Fault::Hang`].
    pub fn hanging(&self) -> u64 {
        self.shared
            .hanging
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Each job's state, in id order.
    pub fn job_states(&self) -> Vec<String> {
        let inner = self.shared.inner.lock().unwrap();
        inner.jobs.values().map(|j| j.state.clone()).collect()
    }
}

fn errors(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!([{"errorCode": code, "message": message}])),
    )
        .into_response()
}

fn raw(status: StatusCode, body: &'static str) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

async fn gate(
    shared: &Shared,
    kill: &Kill,
    headers: &HeaderMap,
    step: Option<Step>,
) -> Result<Option<Fault>, Response> {
    shared.inner.lock().unwrap().holds.requests += 1;
    let expected = format!("Bearer {TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Err(errors(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ));
    }
    let fault = shared.faults.next(step);
    match fault {
        Some(Fault::Status(status)) => Err(errors(
            StatusCode::from_u16(status).unwrap(),
            "UNKNOWN_EXCEPTION",
            "injected failure",
        )),
        Some(Fault::RateLimited { .. } | Fault::RateLimitedUntil { .. }) => {
            Err(raw(StatusCode::FORBIDDEN, F_403))
        }
        Some(Fault::DropConnection) => Err(dropped(kill).await),
        Some(Fault::Hang) => {
            shared
                .hanging
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(std::future::pending().await)
        }
        other => Ok(other),
    }
}

fn job_info(id: &str, job: &Job, version: &str) -> Value {
    let mut info = job.spec.clone();
    info["id"] = json!(id);
    info["state"] = json!(job.state);
    info["apiVersion"] = json!(62.0);
    info["concurrencyMode"] = json!("Parallel");
    info["createdById"] = json!("0055fEXAMPLEtG4AAM");
    info["createdDate"] = json!("2024-01-31T10:00:00.000+0000");
    info["systemModstamp"] = json!("2024-01-31T10:00:01.000+0000");
    info["jobType"] = json!("V2Ingest");
    if job.state == "Open" {
        // Without the `v`, as the quick-start fixture shows it.
        info["contentUrl"] = json!(format!(
            "services/data/{}/jobs/ingest/{id}/batches",
            version.trim_start_matches('v')
        ));
    }
    if matches!(job.state.as_str(), "JobComplete" | "Failed" | "Aborted") {
        info["numberRecordsProcessed"] = json!(job.failed.len() + job.succeeded.len());
        info["numberRecordsFailed"] = json!(job.failed.len());
        // as job-info-complete.json has them (ms)
        info["retries"] = json!(0);
        info["totalProcessingTime"] = json!(886);
        info["apiActiveProcessingTime"] = json!(813);
        info["apexProcessingTime"] = json!(0);
    }
    if let Some(message) = &job.error_message {
        info["errorMessage"] = json!(message);
    }
    info
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = gate(&shared, &kill, &headers, None).await {
        return answer;
    }
    Json(json!({"done": true, "records": [], "nextRecordsUrl": null})).into_response()
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Json(spec): Json<Value>,
) -> Response {
    if let Err(answer) = gate(&shared, &kill, &headers, Some(Step::Create)).await {
        return answer;
    }
    let operation = spec["operation"].as_str().unwrap_or_default();
    if !["insert", "delete", "hardDelete", "update", "upsert"].contains(&operation) {
        return errors(StatusCode::BAD_REQUEST, "InvalidJob", "Invalid operation");
    }
    if operation == "upsert" && !spec["externalIdFieldName"].is_string() {
        return errors(
            StatusCode::BAD_REQUEST,
            "InvalidJob",
            "External ID was blank for upsert",
        );
    }
    if spec["contentType"].as_str().is_some_and(|c| c != "CSV") || !spec["object"].is_string() {
        return errors(
            StatusCode::BAD_REQUEST,
            "InvalidJob",
            "Invalid job specification",
        );
    }
    let mut inner = shared.inner.lock().unwrap();
    let id = format!("7505f{:013}", inner.next);
    inner.next += 1;
    let job = Job {
        spec,
        state: "Open".into(),
        polls: 0,
        csv: None,
        failed: vec![],
        succeeded: vec![],
        unprocessed: vec![],
        header: vec![],
        error_message: None,
    };
    let info = job_info(&id, &job, &version);
    inner.jobs.insert(id, job);
    Json(info).into_response()
}

async fn upload(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    Path((_version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(answer) = gate(&shared, &kill, &headers, Some(Step::Upload)).await {
        return answer;
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("text/csv") {
        return errors(
            StatusCode::BAD_REQUEST,
            "ClientInputError",
            "Content-Type must be text/csv",
        );
    }
    let mut inner = shared.inner.lock().unwrap();
    let text = String::from_utf8_lossy(&body).to_string();
    inner.uploads.push(text.clone());
    let Some(job) = inner.jobs.get_mut(&id) else {
        return raw(StatusCode::NOT_FOUND, F_404);
    };
    if job.state != "Open" {
        return errors(StatusCode::CONFLICT, "InvalidJobState", "Job is not open");
    }
    job.csv = Some(text);
    StatusCode::CREATED.into_response()
}

async fn close(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let fault = match gate(&shared, &kill, &headers, Some(Step::Close)).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let info = match process(&shared, &version, &id, &body) {
        Ok(info) => info,
        Err(answer) => return answer,
    };
    if fault == Some(Fault::DropAfterApply) {
        return dropped(&kill).await;
    }
    Json(info).into_response()
}

/// Applies a job's upload on `UploadComplete` (or aborts it); the job info to answer.
fn process(shared: &Shared, version: &str, id: &str, body: &Value) -> Result<Value, Response> {
    let mut guard = shared.inner.lock().unwrap();
    let inner = &mut *guard;
    let Some(job) = inner.jobs.get_mut(id) else {
        return Err(raw(StatusCode::NOT_FOUND, F_404));
    };
    match body["state"].as_str() {
        Some("UploadComplete") if job.state == "Open" && job.csv.is_some() => {}
        Some("Aborted")
            if matches!(job.state.as_str(), "Open" | "UploadComplete" | "InProgress") =>
        {
            job.state = "Aborted".into();
            return Ok(job_info(id, job, version));
        }
        _ => {
            return Err(errors(
                StatusCode::BAD_REQUEST,
                "InvalidJobState",
                "Invalid state change",
            ))
        }
    }
    job.state = "UploadComplete".into();
    // Process now; polling reveals it step by step.
    let rows = csv::parse(job.csv.as_deref().unwrap_or_default()).unwrap_or_default();
    let Some((header, rows)) = rows.split_first() else {
        job.state = "Failed".into();
        return Ok(job_info(id, job, version));
    };
    job.header = header.clone();
    let end = inner.ends.pop_front();
    let processed = match &end {
        Some(JobEnd::Failed { processed, .. } | JobEnd::Aborted { processed }) => *processed,
        None => usize::MAX,
    };
    let object = job.spec["object"].as_str().unwrap_or_default().to_string();
    let operation = job.spec["operation"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ext = job.spec["externalIdFieldName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for (index, row) in rows.iter().enumerate() {
        if index >= processed {
            job.unprocessed.push(row.clone());
            continue;
        }
        if operation == "delete" {
            let sf_id = row.first().cloned().unwrap_or_default();
            let found = inner
                .ids
                .iter()
                .find(|((o, _), v)| *o == object && **v == sf_id)
                .map(|(k, _)| k.clone());
            match found {
                Some(key) => {
                    inner.ids.remove(&key);
                    inner.holds.delete(&key.1);
                    job.succeeded.push((sf_id, false, row.clone()));
                }
                None => job.failed.push((
                    sf_id,
                    "ENTITY_IS_DELETED:entity is deleted:--".into(),
                    row.clone(),
                )),
            }
            continue;
        }
        let position = header.iter().position(|h| *h == ext).unwrap_or(0);
        let value = row.get(position).cloned().unwrap_or_default();
        if inner.reject.contains(&value) {
            job.failed.push((
                String::new(),
                "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --".into(),
                row.clone(),
            ));
            continue;
        }
        let mut fields = serde_json::Map::new();
        for (name, cell) in header.iter().zip(row) {
            if *name == ext || cell.is_empty() {
                continue;
            }
            fields.insert(
                name.clone(),
                if cell == "#N/A" {
                    Value::Null
                } else {
                    json!(cell)
                },
            );
        }
        let key = (object.clone(), value.clone());
        let created = !inner.ids.contains_key(&key);
        if created {
            let sf = format!("001{:015}", inner.next);
            inner.next += 1;
            inner.ids.insert(key.clone(), sf);
        }
        let sf = inner.ids[&key].clone();
        inner.holds.merge(value, fields);
        job.succeeded.push((sf, created, row.clone()));
    }
    inner.holds.batches += 1;
    match end {
        Some(JobEnd::Failed { message, .. }) => {
            job.state = "Failed".into();
            job.error_message = Some(message);
        }
        Some(JobEnd::Aborted { .. }) => job.state = "Aborted".into(),
        None => {}
    }
    let mut info = job_info(id, job, version);
    // The answer to the close shows the job as it was closed.
    if job.state != "UploadComplete" {
        info["state"] = json!("UploadComplete");
    }
    Ok(info)
}

async fn info(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = gate(&shared, &kill, &headers, Some(Step::Poll)).await {
        return answer;
    }
    let mut inner = shared.inner.lock().unwrap();
    let Some(job) = inner.jobs.get_mut(&id) else {
        return raw(StatusCode::NOT_FOUND, F_404);
    };
    if matches!(job.state.as_str(), "UploadComplete" | "InProgress") {
        job.polls += 1;
        job.state = if job.polls >= 2 {
            "JobComplete"
        } else {
            "InProgress"
        }
        .into();
    }
    Json(job_info(&id, job, &version)).into_response()
}

async fn results(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    Path((_version, id, which)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = gate(&shared, &kill, &headers, Some(Step::Results)).await {
        return answer;
    }
    let inner = shared.inner.lock().unwrap();
    let Some(job) = inner.jobs.get(&id) else {
        return raw(StatusCode::NOT_FOUND, F_404);
    };
    let ready = if which == "unprocessedrecords" {
        matches!(job.state.as_str(), "Failed" | "Aborted")
    } else {
        matches!(job.state.as_str(), "JobComplete" | "Failed")
    };
    if !ready {
        return errors(
            StatusCode::BAD_REQUEST,
            "InvalidJobState",
            "Job is not complete",
        );
    }
    let mut out = String::new();
    let original = job.header.clone();
    match which.as_str() {
        "failedResults" => {
            csv::push_line(
                &mut out,
                ["\"sf__Id\"".to_string(), "\"sf__Error\"".to_string()]
                    .into_iter()
                    .chain(original),
            );
            for (sf, error, row) in &job.failed {
                csv::push_line(
                    &mut out,
                    [csv::quoted(sf), csv::quoted(error)]
                        .into_iter()
                        .chain(row.iter().map(|c| csv::quoted(c))),
                );
            }
        }
        "successfulResults" => {
            csv::push_line(
                &mut out,
                ["\"sf__Id\"".to_string(), "\"sf__Created\"".to_string()]
                    .into_iter()
                    .chain(original),
            );
            for (sf, created, row) in &job.succeeded {
                csv::push_line(
                    &mut out,
                    [csv::quoted(sf), csv::quoted(&created.to_string())]
                        .into_iter()
                        .chain(row.iter().map(|c| csv::quoted(c))),
                );
            }
        }
        "unprocessedrecords" => {
            csv::push_line(&mut out, original);
            for row in &job.unprocessed {
                csv::push_line(&mut out, row.iter().map(|c| csv::quoted(c)));
            }
        }
        _ => return raw(StatusCode::NOT_FOUND, F_404),
    }
    (StatusCode::OK, [("content-type", "text/csv")], out).into_response()
}

/// `SELECT Id, <ext> FROM <object> WHERE <ext> IN ('a', 'b')` and nothing else.
async fn query(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(answer) = gate(&shared, &kill, &headers, Some(Step::Query)).await {
        return answer;
    }
    let q = params.get("q").cloned().unwrap_or_default();
    let malformed = || {
        errors(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "unexpected token",
        )
    };
    let Some(rest) = q.strip_prefix("SELECT Id, ") else {
        return malformed();
    };
    let Some((ext, rest)) = rest.split_once(" FROM ") else {
        return malformed();
    };
    let Some((object, rest)) = rest.split_once(" WHERE ") else {
        return malformed();
    };
    let Some(list) = rest
        .strip_prefix(&format!("{ext} IN ("))
        .and_then(|l| l.strip_suffix(')'))
    else {
        return malformed();
    };
    let values: Vec<String> = list
        .split(", ")
        .map(|v| {
            v.trim_matches('\'')
                .replace("\\'", "'")
                .replace("\\\\", "\\")
        })
        .collect();
    let inner = shared.inner.lock().unwrap();
    let records: Vec<Value> = values
        .iter()
        .filter_map(|v| {
            let id = inner.ids.get(&(object.to_string(), v.clone()))?;
            Some(json!({"attributes": {"type": object, "url": format!("/services/data/v62.0/sobjects/{object}/{id}")}, "Id": id, ext: v}))
        })
        .collect();
    Json(json!({"totalSize": records.len(), "done": true, "records": records})).into_response()
}
