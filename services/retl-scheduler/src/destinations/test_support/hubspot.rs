//! A HubSpot CRM v3 stand-in (fixtures/wire/hubspot-crm-batch-upsert.md): batch upsert by
//! `idProperty` (200 when every input applied, 207 with StandardErrors naming
//! `context.objectWriteTraceId` otherwise), batch read by `idProperty`, batch archive by
//! object id (204), and a one-object list for connection tests.
//!
//! Checked as HubSpot does: `Authorization: Bearer <token>` (401 ModelError otherwise), at
//! most 100 inputs (400), every input has `id` (400, the fixture's message), property
//! values are strings (400). A property in [`HubspotStandIn::reject_property`] makes its
//! input fail with the fixture's `PROPERTY_DOESNT_EXIST` error in a 207. Faults: a status;
//! 429 with the `TEN_SECONDLY_ROLLING` body and `Retry-After` ([`Fault::RateLimited`]
//! seconds, [`Fault::RateLimitedUntil`] an HTTP-date; whether HubSpot sends `Retry-After`
//! is unverified — the official client does not read it — so the stand-in sends it to keep
//! tests short, and the destination falls back to the client's 10 s without it);
//! `Fault::Status(429)` answers the `DAILY` body; dropped connections; [`Fault::Hang`].
//! Every answer to the right token, errors and 429s included, carries
//! `X-HubSpot-RateLimit-Daily` / `-Daily-Remaining` (private-app tokens get them; the
//! per-interval header names are unverified and not sent).
//!
//! Holds: key = the `idProperty` value (`<object>/<value>` for objects other than
//! contacts) → properties merged; archived keys deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};

use super::server::{dropped, retry_after_value, serve, Fault, Holds, Kill, Running, StepFaults};

pub const TOKEN: &str = "pat-na1-00000000-0000-0000-0000-000000000000";
const F_429_TEN: &str =
    include_str!("../../../../../fixtures/wire/hubspot/error-429-ten-secondly.json");
const F_429_DAILY: &str =
    include_str!("../../../../../fixtures/wire/hubspot/error-429-daily-limit.json");
const F_400: &str = include_str!("../../../../../fixtures/wire/hubspot/error-400-validation.json");

#[derive(Debug, Default)]
struct Object {
    hs_id: String,
    id_property: String,
    value: String,
    properties: Map<String, Value>,
}

#[derive(Debug, Default)]
struct Inner {
    holds: Holds,
    objects: BTreeMap<String, Object>,
    next_id: u64,
    rejected_properties: BTreeSet<String>,
    rejected_ids: BTreeSet<String>,
    upsert_inputs: Vec<Value>,
    daily_remaining: i64,
}

#[derive(Debug)]
struct Shared {
    faults: StepFaults<Step>,
    inner: Mutex<Inner>,
}

/// Which call a fault queued with [`HubspotStandIn::push_fault_at`] meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// `POST …/batch/upsert`.
    Upsert,
    /// `POST …/batch/read` (deletes look object ids up).
    Read,
    /// `POST …/batch/archive`.
    Archive,
}

#[derive(Debug)]
pub struct HubspotStandIn {
    shared: Arc<Shared>,
    running: Running,
}

impl HubspotStandIn {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            faults: StepFaults::default(),
            inner: Mutex::new(Inner {
                next_id: 51,
                daily_remaining: 250_000,
                ..Inner::default()
            }),
        });
        let router = Router::new()
            .route("/crm/v3/objects/{object}", get(list))
            .route("/crm/v3/objects/{object}/batch/upsert", post(upsert))
            .route("/crm/v3/objects/{object}/batch/read", post(read))
            .route("/crm/v3/objects/{object}/batch/archive", post(archive))
            .with_state(Arc::clone(&shared));
        let running = serve(router).await;
        Self { shared, running }
    }

    /// The `base_url` setting.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    pub fn holds(&self) -> Holds {
        self.shared.inner.lock().unwrap().holds.clone()
    }

    /// Every upsert input received, in order.
    pub fn upsert_inputs(&self) -> Vec<Value> {
        self.shared.inner.lock().unwrap().upsert_inputs.clone()
    }

    /// Inputs setting this property fail with `PROPERTY_DOESNT_EXIST`.
    pub fn reject_property(&self, name: &str) {
        self.shared
            .inner
            .lock()
            .unwrap()
            .rejected_properties
            .insert(name.into());
    }

    /// Inputs with this `id` (the unique property's value) fail in a 207 with HubSpot's
    /// `INVALID_OPTION` property error (the fixture's StandardError layout).
    pub fn reject_id(&self, id: &str) {
        self.shared
            .inner
            .lock()
            .unwrap()
            .rejected_ids
            .insert(id.into());
    }

    /// Stops refusing anything.
    pub fn accept_all(&self) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.rejected_ids.clear();
        inner.rejected_properties.clear();
    }

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
}

fn holds_key(object: &str, value: &str) -> String {
    if object == "contacts" {
        value.to_string()
    } else {
        format!("{object}/{value}")
    }
}

fn model_error(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "status": "error",
            "message": message,
            "correlationId": "00000000-0000-4000-8000-000000000000",
            "category": category,
        })),
    )
        .into_response()
}

fn raw_json(status: StatusCode, body: &'static str) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

/// Auth, request count and faults; `Err` is the answer to give instead.
async fn gate(
    shared: &Shared,
    kill: &Kill,
    headers: &HeaderMap,
    step: Option<Step>,
) -> Result<Option<Fault>, Response> {
    let fault = gate_faults(shared, kill, headers, step).await;
    match fault {
        Err(answer) if answer.status() != StatusCode::UNAUTHORIZED => {
            Err(with_limits(shared, answer))
        }
        other => other,
    }
}

async fn gate_faults(
    shared: &Shared,
    kill: &Kill,
    headers: &HeaderMap,
    step: Option<Step>,
) -> Result<Option<Fault>, Response> {
    let remaining = {
        let mut inner = shared.inner.lock().unwrap();
        inner.holds.requests += 1;
        inner.daily_remaining -= 1;
        inner.daily_remaining
    };
    let _ = remaining;
    let expected = format!("Bearer {TOKEN}");
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Err(model_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        ));
    }
    let fault = shared.faults.next(step);
    match fault {
        Some(Fault::Status(429)) => Err(raw_json(StatusCode::TOO_MANY_REQUESTS, F_429_DAILY)),
        Some(Fault::Status(status)) => Err(model_error(
            StatusCode::from_u16(status).unwrap(),
            "INTERNAL_ERROR",
            "injected failure",
        )),
        Some(limited @ (Fault::RateLimited { .. } | Fault::RateLimitedUntil { .. })) => Err((
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("content-type", "application/json".to_string()),
                (
                    "retry-after",
                    retry_after_value(&limited).unwrap_or_default(),
                ),
            ],
            F_429_TEN,
        )
            .into_response()),
        Some(Fault::DropConnection) => Err(dropped(kill).await),
        Some(Fault::Hang) => Err(std::future::pending().await),
        other => Ok(other),
    }
}

fn with_limits(shared: &Shared, response: Response) -> Response {
    let remaining = shared.inner.lock().unwrap().daily_remaining;
    let mut response = response;
    let headers = response.headers_mut();
    headers.insert("x-hubspot-ratelimit-daily", "250000".parse().unwrap());
    headers.insert(
        "x-hubspot-ratelimit-daily-remaining",
        remaining.to_string().parse().unwrap(),
    );
    response
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = gate(&shared, &kill, &headers, None).await {
        return answer;
    }
    with_limits(&shared, Json(json!({"results": []})).into_response())
}

fn inputs(body: &Value) -> Result<&Vec<Value>, Response> {
    let Some(inputs) = body["inputs"].as_array() else {
        return Err(raw_json(StatusCode::BAD_REQUEST, F_400));
    };
    if inputs.len() > 100 {
        return Err(model_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Batch input size of more than 100 is not supported",
        ));
    }
    if inputs.iter().any(|i| !i["id"].is_string()) {
        return Err(raw_json(StatusCode::BAD_REQUEST, F_400));
    }
    Ok(inputs)
}

async fn upsert(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    Path(object): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let fault = match gate(&shared, &kill, &headers, Some(Step::Upsert)).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let inputs = match inputs(&body) {
        Ok(inputs) => inputs,
        Err(answer) => return answer,
    };
    for input in inputs {
        let props = input["properties"].as_object();
        if props.is_none_or(|p| p.values().any(|v| !v.is_string()))
            || !input["idProperty"].is_string()
        {
            return model_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "Invalid input JSON: property values must be strings",
            );
        }
    }
    let now = "2024-01-31T10:00:00.000Z";
    let mut results = Vec::new();
    let mut errors = Vec::new();
    {
        let mut inner = shared.inner.lock().unwrap();
        inner.holds.batches += 1;
        for input in inputs {
            inner.upsert_inputs.push(input.clone());
            let trace = input["objectWriteTraceId"].clone();
            let props = input["properties"].as_object().cloned().unwrap_or_default();
            if let Some(bad) = props
                .keys()
                .find(|k| inner.rejected_properties.contains(*k))
            {
                errors.push(json!({
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": format!("Property values were not valid: [{{\"isValid\":false,\"message\":\"Property \\\"{bad}\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"{bad}\"}}]"),
                    "errors": [{"message": format!("Property \"{bad}\" does not exist"), "code": "PROPERTY_DOESNT_EXIST", "in": bad}],
                    "context": {"objectWriteTraceId": [trace]},
                    "links": {}
                }));
                continue;
            }
            let id_property = input["idProperty"].as_str().unwrap_or_default().to_string();
            let value = input["id"].as_str().unwrap_or_default().to_string();
            if inner.rejected_ids.contains(&value) {
                errors.push(json!({
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": format!("Property values were not valid: [{{\"isValid\":false,\"message\":\"{value} was not one of the allowed options\",\"error\":\"INVALID_OPTION\",\"name\":\"{id_property}\"}}]"),
                    "errors": [{"message": format!("{value} was not one of the allowed options"), "code": "INVALID_OPTION", "in": id_property}],
                    "context": {"objectWriteTraceId": [trace]},
                    "links": {}
                }));
                continue;
            }
            let key = holds_key(&object, &value);
            let is_new = !inner.objects.contains_key(&key);
            if is_new {
                let hs_id = inner.next_id.to_string();
                inner.next_id += 1;
                inner.objects.insert(
                    key.clone(),
                    Object {
                        hs_id,
                        id_property: id_property.clone(),
                        value: value.clone(),
                        properties: Map::new(),
                    },
                );
            }
            let stored = inner.objects.get_mut(&key).unwrap();
            stored.properties.extend(props.clone());
            let hs_id = stored.hs_id.clone();
            let mut shown = stored.properties.clone();
            shown.insert(id_property, json!(value));
            shown.insert("hs_object_id".into(), json!(hs_id));
            results.push(json!({
                "id": hs_id, "new": is_new, "properties": shown,
                "createdAt": now, "updatedAt": now, "archived": false,
                "objectWriteTraceId": trace,
            }));
            inner.holds.merge(key, props);
        }
    }
    if fault == Some(Fault::DropAfterApply) {
        return dropped(&kill).await;
    }
    let mut answer = json!({
        "status": "COMPLETE",
        "results": results,
        "requestedAt": now, "startedAt": now, "completedAt": now,
    });
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        answer["numErrors"] = json!(errors.len());
        answer["errors"] = json!(errors);
        StatusCode::MULTI_STATUS
    };
    with_limits(&shared, (status, Json(answer)).into_response())
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    Path(object): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(answer) = gate(&shared, &kill, &headers, Some(Step::Read)).await {
        return answer;
    }
    let inputs = match inputs(&body) {
        Ok(inputs) => inputs,
        Err(answer) => return answer,
    };
    let id_property = body["idProperty"].as_str().unwrap_or("hs_object_id");
    let inner = shared.inner.lock().unwrap();
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for input in inputs {
        let value = input["id"].as_str().unwrap_or_default();
        match inner.objects.get(&holds_key(&object, value)) {
            Some(o) if o.id_property == id_property => results.push(json!({
                "id": o.hs_id,
                "properties": {id_property: o.value, "hs_object_id": o.hs_id},
                "archived": false,
            })),
            _ => missing.push(json!(value)),
        }
    }
    drop(inner);
    let mut answer = json!({"status": "COMPLETE", "results": results});
    let status = if missing.is_empty() {
        StatusCode::OK
    } else {
        answer["numErrors"] = json!(1);
        answer["errors"] = json!([{
            "status": "error", "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some objects, they may be deleted or not exist.",
            "context": {"ids": missing}, "links": {}
        }]);
        StatusCode::MULTI_STATUS
    };
    with_limits(&shared, (status, Json(answer)).into_response())
}

async fn archive(
    State(shared): State<Arc<Shared>>,
    Extension(kill): Extension<Kill>,
    Path(object): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let fault = match gate(&shared, &kill, &headers, Some(Step::Archive)).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let inputs = match inputs(&body) {
        Ok(inputs) => inputs,
        Err(answer) => return answer,
    };
    {
        let mut inner = shared.inner.lock().unwrap();
        inner.holds.batches += 1;
        for input in inputs {
            let hs_id = input["id"].as_str().unwrap_or_default();
            let key = inner
                .objects
                .iter()
                .find(|(k, o)| {
                    o.hs_id == hs_id
                        && (object == "contacts" || k.starts_with(&format!("{object}/")))
                })
                .map(|(k, _)| k.clone());
            if let Some(key) = key {
                inner.objects.remove(&key);
                inner.holds.delete(&key);
            }
        }
    }
    if fault == Some(Fault::DropAfterApply) {
        return dropped(&kill).await;
    }
    with_limits(&shared, StatusCode::NO_CONTENT.into_response())
}
