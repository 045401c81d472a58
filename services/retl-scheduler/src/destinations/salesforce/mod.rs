//! The Salesforce destination, through Bulk API 2.0 ingest jobs
//! (fixtures/wire/salesforce-bulk-api-2.md): one job per batch — create (`POST
//! /jobs/ingest`), upload the CSV (`PUT <contentUrl>`), close (`PATCH` `UploadComplete`;
//! nothing happens without it), poll `GET /jobs/ingest/{id}` until `JobComplete`, `Failed`
//! or `Aborted`, then read `failedResults/` for per-record errors.
//!
//! Settings: `instance_url` (required, `https://<MyDomain>.my.salesforce.com`),
//! `api_version` (default `v62.0`; `62.0` is read as `v62.0`), `batch_size` (records per
//! job, 1–100000, default 10000, Salesforce's internal batch size), `max_concurrency`
//! (jobs in flight per sync, 1–10, default 2), `poll_timeout_seconds` (10–7200, default
//! 900). Secret: an OAuth access token (`Authorization: Bearer`). Default rate: 5 requests
//! per second per instance and token (the org's limit is per 24 h, unknown here).
//!
//! Sync options: `object` (required, e.g. `Account`), `external_id_field` (required: the
//! external id field upserts match on, e.g. `customExtIdField__c`), `external_id_source`
//! (the key or mapped field with its value; default the record key's single column).
//! Mapped fields are the CSV's columns by API name. Values: strings as is, numbers and
//! booleans printed, objects as JSON; **null is written `#N/A`** (sets the field to null);
//! an empty string is an empty field, which Salesforce ignores on update. Upsert, insert
//! and update modes all use `upsert` on the external id (a resent `insert` job would
//! duplicate; `update` needs Salesforce record ids the sync does not have).
//!
//! Deletes: a delete job needs Salesforce `Id`s, so a delete batch first looks them up
//! with the REST query API (`GET /query?q=SELECT Id, <ext> FROM <object> WHERE <ext> IN
//! (…)`, 200 values per query; this API is not in the fixture: unverified shape
//! `{records: [{Id, <ext>}], done}`), then runs a `delete` job with an `Id` column.
//! Records the query does not find are delivered (nothing to delete).
//!
//! Results: records in `failedResults/` fail with `sf__Error` (matched by the external id
//! column, or `Id` for deletes; the `CODE:message:fields --` layout is illustrative in the
//! fixture, so the whole text is kept); the others of a `JobComplete` job are delivered.
//! A `Failed` or `Aborted` job fails the records not in `successfulResults/` with the
//! job's `errorMessage`. Errors are JSON arrays `[{errorCode, message}]`: 401 credentials;
//! **403 `REQUEST_LIMIT_EXCEEDED` is the org's rate limit** (retried on the schedule; no
//! `Retry-After` is documented for Bulk 2.0); other 403 credentials; 5xx transient; other
//! 4xx refuse the batch. A transient failure while polling or reading results is retried
//! in place (up to 5 in a row) so a created job is not abandoned and recreated.
//!
//! Faults mid-job: once a job is closed its records are never sent in another job by this
//! attempt (a second job would apply them twice). A lost answer to `UploadComplete` is
//! settled by reading the job back (not `Open` any more: it was closed, poll it; still
//! `Open`: close again). A failed upload or a refused close aborts the job (`PATCH
//! Aborted`, best effort; nothing was processed) before the batch is resent. An
//! `Aborted` job has no result files (the fixture: results once `JobComplete` or
//! `Failed`), so all its records fail with the job's id and are upserted again next run.
//! A process killed after a close cannot settle its job: the resumed run sends the
//! batch in a new job (the external-id upsert converges; a killed-before-close job stays
//! `Open`, unprocessed, until Salesforce expires it).

mod job;
mod wire;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::csv;
use super::http;
use super::settings::{bounded, json_text, only_known, optional, required};
use super::{
    BatchResult, Capabilities, Destination, DestinationError, DestinationKind, DestinationSettings,
    Operation, OutboundBatch, RecordOutcome, RecordResult,
};
pub use wire::{csv_value, upsert_csv};
use wire::{is_api_name, soql_literal, source_value};

const KNOWN: &[&str] = &[
    "instance_url",
    "api_version",
    "batch_size",
    "max_concurrency",
    "poll_timeout_seconds",
];
pub const DEFAULT_API_VERSION: &str = "v62.0";
const QUERY_CHUNK: usize = 200;

#[derive(Debug)]
pub struct SalesforceDestination {
    instance: reqwest::Url,
    api_base: String,
    endpoint: String,
    authorization: String,
    token_fingerprint: String,
    client: reqwest::Client,
    batch_size: usize,
    max_concurrency: usize,
    poll_timeout: Duration,
}

impl SalesforceDestination {
    pub fn new(
        settings: &DestinationSettings,
        token: Option<&str>,
    ) -> Result<Self, DestinationError> {
        only_known(settings, KNOWN)?;
        let instance = http::base_url("instance_url", required(settings, "instance_url")?)?;
        let version = optional(settings, "api_version").unwrap_or(DEFAULT_API_VERSION);
        let version = if version.starts_with('v') {
            version.to_string()
        } else {
            format!("v{version}")
        };
        if !version[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.')
        {
            return Err(DestinationError::Settings(format!(
                "api_version must look like v62.0, not {version:?}"
            )));
        }
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                DestinationError::Settings("the access token (secret) is required".into())
            })?;
        let root = instance.as_str().trim_end_matches('/').to_string();
        Ok(Self {
            api_base: format!("{root}/services/data/{version}"),
            endpoint: http::authority(&instance),
            instance,
            authorization: format!("Bearer {token}"),
            token_fingerprint: http::fingerprint(token),
            client: http::client(Duration::from_secs(120))?,
            batch_size: bounded(settings, "batch_size", 10_000, 1, 100_000)?,
            max_concurrency: bounded(settings, "max_concurrency", 2, 1, 10)?,
            poll_timeout: Duration::from_secs(bounded(
                settings,
                "poll_timeout_seconds",
                900,
                10,
                7200,
            )? as u64),
        })
    }
}

impl SalesforceDestination {
    async fn upsert(
        &self,
        object: &str,
        external_id_field: &str,
        batch: &OutboundBatch,
    ) -> Result<BatchResult, DestinationError> {
        let (body, ids) = upsert_csv(batch, external_id_field);
        let mut requests = 0;
        let mut outcomes: Vec<RecordOutcome> =
            ids.iter().map(|_| RecordOutcome::Delivered).collect();
        if ids.iter().any(Option::is_some) {
            let spec = json!({
                "object": object, "operation": "upsert", "externalIdFieldName": external_id_field,
                "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA",
            });
            let job = self.run_job(spec, body, &mut requests).await?;
            outcomes = self
                .outcomes(&job, external_id_field, &ids, &mut requests)
                .await?;
        }
        Ok(BatchResult {
            results: batch
                .records
                .iter()
                .zip(ids.iter().zip(outcomes))
                .map(|(r, (id, outcome))| RecordResult {
                    key_hash: r.key_hash,
                    outcome: match id {
                        None => RecordOutcome::Failed {
                            message: format!("the record has no {external_id_field} value"),
                            status: 0,
                        },
                        Some(_) => outcome,
                    },
                })
                .collect(),
            requests,
        })
    }

    async fn delete(
        &self,
        object: &str,
        external_id_field: &str,
        batch: &OutboundBatch,
    ) -> Result<BatchResult, DestinationError> {
        let source = optional(&batch.options, "external_id_source");
        let values: Vec<Option<String>> = batch
            .records
            .iter()
            .map(|r| source_value(r, source))
            .collect();
        let mut requests = 0;
        let mut sf_ids: HashMap<String, String> = HashMap::new();
        let wanted: Vec<&String> = values.iter().flatten().collect();
        for chunk in wanted.chunks(QUERY_CHUNK) {
            let soql =
                format!(
                "SELECT Id, {external_id_field} FROM {object} WHERE {external_id_field} IN ({})",
                chunk.iter().map(|v| soql_literal(v)).collect::<Vec<_>>().join(", ")
            );
            let mut url = reqwest::Url::parse(&format!("{}/query", self.api_base))
                .map_err(|e| DestinationError::Settings(format!("instance_url: {e}")))?;
            url.query_pairs_mut().append_pair("q", &soql);
            let answer = self
                .call(reqwest::Method::GET, url.as_str(), None, &mut requests)
                .await?;
            let parsed: Value = serde_json::from_slice(&answer).unwrap_or_default();
            for record in parsed["records"].as_array().into_iter().flatten() {
                if let (Some(id), Some(ext)) = (
                    record["Id"].as_str(),
                    record.get(external_id_field).and_then(json_text),
                ) {
                    sf_ids.insert(ext, id.to_string());
                }
            }
        }
        let ids: Vec<Option<String>> = values
            .iter()
            .map(|v| v.as_ref().and_then(|v| sf_ids.get(v).cloned()))
            .collect();
        let mut outcomes: Vec<RecordOutcome> =
            ids.iter().map(|_| RecordOutcome::Delivered).collect();
        if ids.iter().any(Option::is_some) {
            let mut body = String::new();
            csv::push_line(&mut body, ["Id".to_string()]);
            for id in ids.iter().flatten() {
                csv::push_line(&mut body, [csv::quoted(id)]);
            }
            let spec = json!({"object": object, "operation": "delete", "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA"});
            let job = self.run_job(spec, body, &mut requests).await?;
            outcomes = self.outcomes(&job, "Id", &ids, &mut requests).await?;
        }
        Ok(BatchResult {
            results: batch
                .records
                .iter()
                .zip(values.iter().zip(outcomes))
                .map(|(r, (value, outcome))| RecordResult {
                    key_hash: r.key_hash,
                    outcome: match value {
                        None => RecordOutcome::Failed {
                            message: format!("the record has no {external_id_field} value"),
                            status: 0,
                        },
                        Some(_) => outcome,
                    },
                })
                .collect(),
            requests,
        })
    }
}

#[async_trait::async_trait]
impl Destination for SalesforceDestination {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Salesforce
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_records: self.batch_size,
            max_concurrency: self.max_concurrency,
            deletes: true,
            idempotent: true,
            default_rate_per_second: 5.0,
        }
    }

    fn rate_limit_key(&self) -> String {
        format!("salesforce:{}:{}", self.endpoint, self.token_fingerprint)
    }

    /// Lists ingest jobs (one page), which needs a valid token and the Bulk API.
    async fn test(&self) -> Result<(), DestinationError> {
        let mut requests = 0;
        let url = format!("{}/jobs/ingest", self.api_base);
        self.call(reqwest::Method::GET, &url, None, &mut requests)
            .await
            .map(|_| ())
    }

    async fn send(&self, batch: &OutboundBatch) -> Result<BatchResult, DestinationError> {
        let object = optional(&batch.options, "object")
            .ok_or_else(|| DestinationError::Settings("the option object is required".into()))?;
        let external_id_field = optional(&batch.options, "external_id_field").ok_or_else(|| {
            DestinationError::Settings("the option external_id_field is required".into())
        })?;
        for (what, name) in [("object", object), ("external_id_field", external_id_field)] {
            if !is_api_name(name) {
                return Err(DestinationError::Settings(format!(
                    "{what} {name:?} is not a salesforce api name"
                )));
            }
        }
        match batch.operation {
            Operation::Delete => self.delete(object, external_id_field, batch).await,
            Operation::Upsert | Operation::Insert | Operation::Update => {
                self.upsert(object, external_id_field, batch).await
            }
        }
    }
}
