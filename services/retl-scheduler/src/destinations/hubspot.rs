//! The HubSpot CRM destination: records are upserted into a CRM object type by a unique
//! property with `POST /crm/v3/objects/{object}/batch/upsert`, deletes archived
//! (fixtures/wire/hubspot-crm-batch-upsert.md).
//!
//! Settings: `base_url` (default `https://api.hubapi.com`), `batch_size` (1–100, default
//! 100: HubSpot's batch limit, stated by community experts, unverified from the guide),
//! `max_concurrency` (1–16, default 4). Secret: a private app or OAuth access token
//! (`Authorization: Bearer`). Default rate: 10 requests/s per token (the lowest tier's
//! 100 per 10 s; tiers are unverified). The rate-limit key is the token's fingerprint (one
//! token belongs to one portal; the portal id would cost a call).
//!
//! Sync options: `object` (default `contacts`; `companies`, `deals`, a custom object's
//! type id …), `id_property` (required: the unique property, e.g. `email`), `id_field` (the
//! key or mapped field holding that property's value; default the record key's single
//! column). Mapped fields become `properties`, all as strings (numbers and booleans
//! printed, objects as JSON, null as `""`, which clears the property). Insert and update
//! modes use the same upsert (HubSpot has no "update only if present" batch by property).
//!
//! Results: 200 → every record delivered. 207 → `errors[]` are matched to records by
//! `context.objectWriteTraceId` (each input carries the record's key hash there; the
//! fixture's use of that context key is illustrative, the order of results is not
//! guaranteed, so nothing is matched by position); records named in `results` are
//! delivered; records in neither fail with the unmatched errors' messages (safe: they
//! are upserted again next run). 429: `policyName` `TEN_SECONDLY_ROLLING` → rate limited,
//! retry after `Retry-After` if sent, else 10 s (the official client's wait); the
//! "secondly limit" message → 1 s; any other policy (`DAILY`) refuses the batch at once,
//! as the official client does not retry it. 401/403 credentials, 5xx transient, other
//! 4xx (ModelError `message`) refuse the batch.
//!
//! Deletes: batch archive takes HubSpot object ids, not the unique property, so a delete
//! batch first reads the ids with `POST /crm/v3/objects/{object}/batch/read` (`idProperty`,
//! `inputs[{id}]`), then archives them with `POST …/batch/archive` (`inputs[{id}]`, 204).
//! Records the read does not find are delivered (already gone). The read and archive
//! shapes follow HubSpot's API reference; the fixture does not cover them (unverified).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::http;
use super::settings::{bounded, json_text, only_known, optional};
use super::{
    BatchResult, Capabilities, Destination, DestinationError, DestinationKind, DestinationSettings,
    Operation, OutboundBatch, OutboundRecord, RecordOutcome, RecordResult,
};

const KNOWN: &[&str] = &["base_url", "batch_size", "max_concurrency"];
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";
pub const MAX_BATCH: usize = 100;

#[derive(Debug)]
pub struct HubspotDestination {
    base: reqwest::Url,
    endpoint: String,
    authorization: String,
    token_fingerprint: String,
    client: reqwest::Client,
    batch_size: usize,
    max_concurrency: usize,
}

/// The trace id of a record (its key hash), echoed by HubSpot in results and errors.
pub fn trace_id(key_hash: u64) -> String {
    format!("{key_hash:016x}")
}

#[derive(Debug, Default, Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    results: Vec<ResultObject>,
    #[serde(default)]
    errors: Vec<StandardError>,
}

#[derive(Debug, Deserialize)]
struct ResultObject {
    #[serde(default)]
    id: String,
    #[serde(default, rename = "objectWriteTraceId")]
    object_write_trace_id: Option<String>,
    #[serde(default)]
    properties: HashMap<String, Option<String>>,
}

#[derive(Debug, Deserialize)]
struct StandardError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    context: HashMap<String, Vec<String>>,
}

impl HubspotDestination {
    pub fn new(
        settings: &DestinationSettings,
        token: Option<&str>,
    ) -> Result<Self, DestinationError> {
        only_known(settings, KNOWN)?;
        let base = http::base_url(
            "base_url",
            optional(settings, "base_url").unwrap_or(DEFAULT_BASE_URL),
        )?;
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                DestinationError::Settings("the access token (secret) is required".into())
            })?;
        Ok(Self {
            endpoint: http::authority(&base),
            base,
            authorization: format!("Bearer {token}"),
            token_fingerprint: http::fingerprint(token),
            client: http::client(Duration::from_secs(60))?,
            batch_size: bounded(settings, "batch_size", MAX_BATCH, 1, MAX_BATCH)?,
            max_concurrency: bounded(settings, "max_concurrency", 4, 1, 16)?,
        })
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, DestinationError> {
        let prefix = self.base.path().trim_end_matches('/');
        self.base
            .join(&format!("{prefix}{path}"))
            .map_err(|e| DestinationError::Settings(format!("base_url: {e}")))
    }

    /// One call; 2xx gives the status and body, anything else the classified error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, bytes::Bytes), DestinationError> {
        let mut request = self
            .client
            .request(method, self.url(path)?)
            .header("authorization", &self.authorization);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| http::transport_error(&self.endpoint, &e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let answer = response
            .bytes()
            .await
            .map_err(|e| http::transport_error(&self.endpoint, &e))?;
        if (200..300).contains(&status) {
            return Ok((status, answer));
        }
        Err(error_of(status, &headers, &answer))
    }

    async fn upsert(
        &self,
        object: &str,
        id_property: &str,
        batch: &OutboundBatch,
    ) -> Result<BatchResult, DestinationError> {
        let id_field = optional(&batch.options, "id_field");
        let mut failed_early = HashMap::new();
        let mut inputs = Vec::with_capacity(batch.records.len());
        for record in &batch.records {
            match record_id(record, id_field) {
                Some(id) => inputs.push(json!({
                    "idProperty": id_property,
                    "id": id,
                    "properties": properties(&record.fields),
                    "objectWriteTraceId": trace_id(record.key_hash),
                })),
                None => {
                    failed_early.insert(
                        record.key_hash,
                        "the record has no id (null or empty)".to_string(),
                    );
                }
            }
        }
        let answer = if inputs.is_empty() {
            (200, bytes::Bytes::new())
        } else {
            self.call(
                reqwest::Method::POST,
                &format!("/crm/v3/objects/{object}/batch/upsert"),
                Some(json!({ "inputs": inputs })),
            )
            .await?
        };
        let requests = u64::from(!inputs.is_empty());
        Ok(BatchResult {
            results: upsert_results(batch, answer.0, &answer.1, &failed_early),
            requests,
        })
    }

    async fn archive(
        &self,
        object: &str,
        id_property: &str,
        batch: &OutboundBatch,
    ) -> Result<BatchResult, DestinationError> {
        let id_field = optional(&batch.options, "id_field");
        let ids: Vec<(u64, Option<String>)> = batch
            .records
            .iter()
            .map(|r| (r.key_hash, record_id(r, id_field)))
            .collect();
        let inputs: Vec<Value> = ids
            .iter()
            .filter_map(|(_, id)| id.as_ref().map(|id| json!({ "id": id })))
            .collect();
        let mut requests = 0;
        let mut found: HashMap<String, String> = HashMap::new();
        if !inputs.is_empty() {
            requests += 1;
            let (_, answer) = self
                .call(
                    reqwest::Method::POST,
                    &format!("/crm/v3/objects/{object}/batch/read"),
                    Some(json!({ "idProperty": id_property, "properties": [id_property], "inputs": inputs })),
                )
                .await?;
            let read: BatchAnswer = serde_json::from_slice(&answer).unwrap_or_default();
            for result in read.results {
                if let Some(Some(value)) = result.properties.get(id_property) {
                    found.insert(value.clone(), result.id);
                }
            }
        }
        let archive: Vec<Value> = found.values().map(|id| json!({ "id": id })).collect();
        if !archive.is_empty() {
            requests += 1;
            self.call(
                reqwest::Method::POST,
                &format!("/crm/v3/objects/{object}/batch/archive"),
                Some(json!({ "inputs": archive })),
            )
            .await?;
        }
        Ok(BatchResult {
            results: ids
                .into_iter()
                .map(|(key_hash, id)| RecordResult {
                    key_hash,
                    outcome: match id {
                        Some(_) => RecordOutcome::Delivered,
                        None => RecordOutcome::Failed {
                            message: "the record has no id (null or empty)".into(),
                            status: 0,
                        },
                    },
                })
                .collect(),
            requests,
        })
    }
}

/// The id value of a record: `field` in the key then the fields, or the key's one column.
fn record_id(record: &OutboundRecord, field: Option<&str>) -> Option<String> {
    match field {
        Some(name) => record
            .key
            .get(name)
            .or_else(|| record.fields.get(name))
            .and_then(json_text),
        None if record.key.len() == 1 => record.key.values().next().and_then(json_text),
        None => None,
    }
    .filter(|id| !id.is_empty())
}

/// HubSpot property values are strings; null clears a property (`""`).
pub fn properties(fields: &Map<String, Value>) -> Map<String, Value> {
    fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(json_text(v).unwrap_or_default())))
        .collect()
}

/// Per-record outcomes of a 200 or 207 upsert answer (see the module doc).
fn upsert_results(
    batch: &OutboundBatch,
    status: u16,
    answer: &[u8],
    failed_early: &HashMap<u64, String>,
) -> Vec<RecordResult> {
    let parsed: BatchAnswer = serde_json::from_slice(answer).unwrap_or_default();
    let mut errors: HashMap<String, String> = HashMap::new();
    let mut unmatched = Vec::new();
    for e in &parsed.errors {
        let message = if e.category.is_empty() {
            e.message.clone()
        } else {
            format!("{}: {}", e.category, e.message)
        };
        match e.context.get("objectWriteTraceId") {
            Some(ids) if !ids.is_empty() => {
                for id in ids {
                    errors.insert(id.clone(), message.clone());
                }
            }
            _ => unmatched.push(message),
        }
    }
    let delivered: std::collections::HashSet<String> = parsed
        .results
        .iter()
        .filter_map(|r| r.object_write_trace_id.clone())
        .collect();
    batch
        .records
        .iter()
        .map(|r| {
            let trace = trace_id(r.key_hash);
            let outcome = if let Some(message) = failed_early.get(&r.key_hash) {
                RecordOutcome::Failed {
                    message: message.clone(),
                    status: 0,
                }
            } else if let Some(message) = errors.get(&trace) {
                RecordOutcome::Failed {
                    message: message.clone(),
                    status,
                }
            } else if status == 200 || delivered.contains(&trace) {
                RecordOutcome::Delivered
            } else if parsed.errors.is_empty()
                && parsed
                    .results
                    .iter()
                    .all(|r| r.object_write_trace_id.is_none())
            {
                // A 2xx without trace ids to go by: the batch's outcome.
                RecordOutcome::Delivered
            } else {
                RecordOutcome::Failed {
                    message: if unmatched.is_empty() {
                        "hubspot returned no result for this record".into()
                    } else {
                        unmatched.join("; ")
                    },
                    status,
                }
            };
            RecordResult {
                key_hash: r.key_hash,
                outcome,
            }
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "policyName")]
    policy_name: String,
    #[serde(default)]
    category: String,
}

/// The error of a non-2xx answer, reading HubSpot's 429 policy names.
fn error_of(status: u16, headers: &reqwest::header::HeaderMap, answer: &[u8]) -> DestinationError {
    let body: ErrorBody = serde_json::from_slice(answer).unwrap_or_default();
    let message = if body.message.is_empty() {
        http::excerpt(answer)
    } else if body.category.is_empty() {
        body.message.clone()
    } else {
        format!("{}: {}", body.category, body.message)
    };
    if status == 429 {
        let header = http::retry_after(headers);
        if body.policy_name == "TEN_SECONDLY_ROLLING" {
            return DestinationError::RateLimited {
                retry_after: Some(header.unwrap_or(Duration::from_secs(10))),
            };
        }
        if body.message == "You have reached your secondly limit." {
            return DestinationError::RateLimited {
                retry_after: Some(header.unwrap_or(Duration::from_secs(1))),
            };
        }
        return DestinationError::Rejected {
            message: format!("429 {}: {message}", body.policy_name),
            status,
        };
    }
    http::status_error(status, headers, message)
}

#[async_trait::async_trait]
impl Destination for HubspotDestination {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Hubspot
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_records: self.batch_size,
            max_concurrency: self.max_concurrency,
            deletes: true,
            idempotent: true,
            default_rate_per_second: 10.0,
        }
    }

    fn rate_limit_key(&self) -> String {
        format!("hubspot:{}:{}", self.endpoint, self.token_fingerprint)
    }

    /// Lists one contact (any token with CRM read scope may).
    async fn test(&self) -> Result<(), DestinationError> {
        self.call(
            reqwest::Method::GET,
            "/crm/v3/objects/contacts?limit=1",
            None,
        )
        .await
        .map(|_| ())
    }

    async fn send(&self, batch: &OutboundBatch) -> Result<BatchResult, DestinationError> {
        let object = optional(&batch.options, "object").unwrap_or("contacts");
        if !object
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(DestinationError::Settings(format!(
                "object {object:?} is not a hubspot object type"
            )));
        }
        let id_property = optional(&batch.options, "id_property").ok_or_else(|| {
            DestinationError::Settings("the option id_property is required (e.g. email)".into())
        })?;
        if batch.records.len() > MAX_BATCH {
            return Err(DestinationError::Settings(format!(
                "a hubspot batch holds at most {MAX_BATCH} records, not {}",
                batch.records.len()
            )));
        }
        match batch.operation {
            Operation::Delete => self.archive(object, id_property, batch).await,
            Operation::Upsert | Operation::Insert | Operation::Update => {
                self.upsert(object, id_property, batch).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const F_207: &str =
        include_str!("../../../../fixtures/wire/hubspot/batch-upsert-response-207.json");
    const F_200: &str =
        include_str!("../../../../fixtures/wire/hubspot/batch-upsert-response-200.json");
    const F_DAILY: &str =
        include_str!("../../../../fixtures/wire/hubspot/error-429-daily-limit.json");
    const F_TEN: &str =
        include_str!("../../../../fixtures/wire/hubspot/error-429-ten-secondly.json");
    const F_400: &str = include_str!("../../../../fixtures/wire/hubspot/error-400-validation.json");

    /// Records whose trace ids are the fixtures' `row-1`, `row-2` would be: the fixture
    /// answers are rewritten to this module's trace ids.
    fn fixture_batch() -> (OutboundBatch, String) {
        let record = |hash: u64, email: &str| OutboundRecord {
            key_hash: hash,
            key: json!({"email": email}).as_object().cloned().unwrap(),
            fields: json!({"firstname": "x"}).as_object().cloned().unwrap(),
        };
        let batch = OutboundBatch {
            sync_id: "s".into(),
            run_id: "r".into(),
            operation: Operation::Upsert,
            idempotency_key: "r:upsert:0".into(),
            options: Arc::default(),
            records: vec![record(1, "ada@example.com"), record(2, "grace@example.com")],
        };
        (batch, String::new())
    }

    fn with_trace_ids(fixture: &str) -> String {
        fixture
            .replace("\"row-1\"", &format!("\"{}\"", trace_id(1)))
            .replace("\"row-2\"", &format!("\"{}\"", trace_id(2)))
    }

    #[test]
    fn multi_status_errors_fail_their_records() {
        let (batch, _) = fixture_batch();
        let got = upsert_results(
            &batch,
            207,
            with_trace_ids(F_207).as_bytes(),
            &HashMap::new(),
        );
        assert_eq!(got[0].outcome, RecordOutcome::Delivered);
        assert!(
            matches!(&got[1].outcome, RecordOutcome::Failed { status: 207, message } if message.starts_with("VALIDATION_ERROR: Property values were not valid"))
        );
        let got = upsert_results(
            &batch,
            200,
            with_trace_ids(F_200).as_bytes(),
            &HashMap::new(),
        );
        assert!(got.iter().all(|r| r.outcome == RecordOutcome::Delivered));
        // A 207 whose errors name no record: the records without results fail.
        let unnamed = F_207.replace(
            "\"objectWriteTraceId\": [\n          \"row-2\"\n        ]",
            "",
        );
        let got = upsert_results(
            &batch,
            207,
            with_trace_ids(&unnamed).as_bytes(),
            &HashMap::new(),
        );
        assert_eq!(got[0].outcome, RecordOutcome::Delivered);
        assert!(
            matches!(&got[1].outcome, RecordOutcome::Failed { message, .. } if message.contains("favorite_colour"))
        );
    }

    #[test]
    fn rate_limit_policies_decide_retries() {
        let h = reqwest::header::HeaderMap::new();
        assert_eq!(
            error_of(429, &h, F_TEN.as_bytes()),
            DestinationError::RateLimited {
                retry_after: Some(Duration::from_secs(10))
            }
        );
        assert!(
            matches!(error_of(429, &h, F_DAILY.as_bytes()), DestinationError::Rejected { status: 429, message } if message.contains("DAILY") && message.contains("daily limit"))
        );
        assert!(
            matches!(error_of(400, &h, F_400.as_bytes()), DestinationError::Rejected { status: 400, message } if *message == format!("400: VALIDATION_ERROR: {}", "Invalid input JSON on line 1, column 15: Cannot build SimplePublicObjectBatchInputUpsert, some of required attributes are not set [id]"))
        );
        assert!(matches!(
            error_of(401, &h, b"{}"),
            DestinationError::Authentication(_)
        ));
    }

    #[test]
    fn properties_are_strings() {
        let fields = json!({"a": 1, "b": true, "c": null, "d": "x", "e": {"k": 1}});
        assert_eq!(
            Value::Object(properties(fields.as_object().unwrap())),
            json!({"a": "1", "b": "true", "c": "", "d": "x", "e": "{\"k\":1}"})
        );
    }
}
