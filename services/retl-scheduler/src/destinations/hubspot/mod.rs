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

mod answers;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::http;
use super::settings::{bounded, json_text, only_known, optional};
use super::{
    BatchResult, Capabilities, Destination, DestinationError, DestinationKind, DestinationSettings,
    Operation, OutboundBatch, OutboundRecord, RecordOutcome, RecordResult,
};
use answers::{error_of, upsert_results, BatchAnswer};

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
