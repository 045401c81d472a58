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
//! 4xx refuse the batch. A transient failure while polling is retried in place (up to 5
//! in a row) so a created job is not abandoned and recreated.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::csv;
use super::http;
use super::settings::{bounded, json_text, only_known, optional, required};
use super::{
    BatchResult, Capabilities, Destination, DestinationError, DestinationKind, DestinationSettings,
    Operation, OutboundBatch, OutboundRecord, RecordOutcome, RecordResult,
};

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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobInfo {
    id: String,
    state: String,
    #[serde(default)]
    content_url: Option<String>,
    #[serde(default)]
    number_records_failed: Option<u64>,
    #[serde(default)]
    error_message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default, rename = "errorCode")]
    error_code: String,
    #[serde(default)]
    message: String,
}

/// A CSV value of a JSON value (null → `#N/A`, see the module doc).
pub fn csv_value(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::Null) => "#N/A".into(),
        Some(v) => csv::quoted(&json_text(v).unwrap_or_default()),
    }
}

fn source_value(record: &OutboundRecord, source: Option<&str>) -> Option<String> {
    match source {
        Some(name) => record
            .key
            .get(name)
            .or_else(|| record.fields.get(name))
            .and_then(json_text),
        None if record.key.len() == 1 => record.key.values().next().and_then(json_text),
        None => None,
    }
    .filter(|v| !v.is_empty())
}

/// The upload CSV of an upsert batch: the external id column, then the mapped fields in
/// name order; returns it with the external id value of each record (None: not sent).
pub fn upsert_csv(batch: &OutboundBatch, external_id_field: &str) -> (String, Vec<Option<String>>) {
    let source = optional(&batch.options, "external_id_source");
    let mut columns: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for record in &batch.records {
        columns.extend(record.fields.keys().map(String::as_str));
    }
    columns.remove(external_id_field);
    let mut out = String::new();
    csv::push_line(
        &mut out,
        std::iter::once(external_id_field.to_string()).chain(columns.iter().map(|c| c.to_string())),
    );
    let mut ids = Vec::with_capacity(batch.records.len());
    for record in &batch.records {
        let id = source_value(record, source);
        if let Some(id) = &id {
            csv::push_line(
                &mut out,
                std::iter::once(csv::quoted(id))
                    .chain(columns.iter().map(|c| csv_value(record.fields.get(*c)))),
            );
        }
        ids.push(id);
    }
    (out, ids)
}

fn soql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn is_api_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
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

    /// One call to `url`; a 2xx answer's body, or the classified error.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<(&'static str, Vec<u8>)>,
        requests: &mut u64,
    ) -> Result<bytes::Bytes, DestinationError> {
        *requests += 1;
        let mut request = self
            .client
            .request(method, url)
            .header("authorization", &self.authorization);
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
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
            return Ok(answer);
        }
        Err(error_of(status, &headers, &answer))
    }

    async fn json_call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Value,
        requests: &mut u64,
    ) -> Result<JobInfo, DestinationError> {
        let answer = self
            .call(
                method,
                url,
                Some(("application/json", body.to_string().into_bytes())),
                requests,
            )
            .await?;
        parse_job(&answer)
    }

    /// Runs one ingest job to its end; returns its final info.
    async fn run_job(
        &self,
        spec: Value,
        csv_body: String,
        requests: &mut u64,
    ) -> Result<JobInfo, DestinationError> {
        let jobs = format!("{}/jobs/ingest", self.api_base);
        let job = self
            .json_call(reqwest::Method::POST, &jobs, spec, requests)
            .await?;
        let content = match &job.content_url {
            // Opaque relative URL (the docs show it with and without the `v`).
            Some(path) => format!(
                "{}/{}",
                self.instance.as_str().trim_end_matches('/'),
                path.trim_start_matches('/')
            ),
            None => format!("{jobs}/{}/batches", job.id),
        };
        self.call(
            reqwest::Method::PUT,
            &content,
            Some(("text/csv", csv_body.into_bytes())),
            requests,
        )
        .await?;
        let job_url = format!("{jobs}/{}", job.id);
        self.json_call(
            reqwest::Method::PATCH,
            &job_url,
            json!({"state": "UploadComplete"}),
            requests,
        )
        .await?;
        let deadline = Instant::now() + self.poll_timeout;
        let mut backoff = Duration::from_millis(100);
        let mut errors_in_a_row = 0;
        loop {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            match self
                .call(reqwest::Method::GET, &job_url, None, requests)
                .await
            {
                Ok(answer) => {
                    errors_in_a_row = 0;
                    let info = parse_job(&answer)?;
                    if matches!(info.state.as_str(), "JobComplete" | "Failed" | "Aborted") {
                        return Ok(info);
                    }
                }
                Err(e) if super::retry::is_retryable(&e) && errors_in_a_row < 5 => {
                    errors_in_a_row += 1;
                    tracing::warn!(job = %job.id, error = %e, "polling a salesforce job failed, polling again");
                }
                Err(e) => return Err(e),
            }
            if Instant::now() > deadline {
                return Err(DestinationError::Transient {
                    message: format!(
                        "salesforce job {} did not finish within {} s",
                        job.id,
                        self.poll_timeout.as_secs()
                    ),
                    status: 0,
                    retry_after: None,
                });
            }
        }
    }

    /// Result rows of a finished job (`failedResults` or `successfulResults`), by the
    /// value of `column`, with the column `detail` (e.g. `sf__Error`).
    async fn results_by(
        &self,
        job: &JobInfo,
        which: &str,
        column: &str,
        detail: &str,
        requests: &mut u64,
    ) -> Result<HashMap<String, String>, DestinationError> {
        let url = format!("{}/jobs/ingest/{}/{which}/", self.api_base, job.id);
        let answer = self
            .call(reqwest::Method::GET, &url, None, requests)
            .await?;
        let text = String::from_utf8_lossy(&answer);
        let rows = csv::parse(&text).map_err(|e| DestinationError::Transient {
            message: format!("salesforce {which} is not csv: {e}"),
            status: 0,
            retry_after: None,
        })?;
        let Some((header, rows)) = rows.split_first() else {
            return Ok(HashMap::new());
        };
        let find = |name: &str| header.iter().position(|h| h == name);
        let (Some(key), detail) = (find(column), find(detail)) else {
            return Ok(HashMap::new());
        };
        Ok(rows
            .iter()
            .filter_map(|row| {
                let k = row.get(key)?.clone();
                let d = detail.and_then(|i| row.get(i).cloned()).unwrap_or_default();
                Some((k, d))
            })
            .collect())
    }

    /// Per-record outcomes of a finished job; `ids[i]` is record i's matching value.
    async fn outcomes(
        &self,
        job: &JobInfo,
        column: &str,
        ids: &[Option<String>],
        requests: &mut u64,
    ) -> Result<Vec<RecordOutcome>, DestinationError> {
        let failed = if job.number_records_failed != Some(0) || job.state != "JobComplete" {
            self.results_by(job, "failedResults", column, "sf__Error", requests)
                .await?
        } else {
            HashMap::new()
        };
        let succeeded = if job.state == "JobComplete" {
            None
        } else {
            Some(
                self.results_by(job, "successfulResults", column, "sf__Id", requests)
                    .await?,
            )
        };
        let job_error = job
            .error_message
            .clone()
            .unwrap_or_else(|| format!("the salesforce job ended {}", job.state));
        Ok(ids
            .iter()
            .map(|id| match id {
                None => RecordOutcome::Delivered,
                Some(id) => {
                    if let Some(error) = failed.get(id) {
                        RecordOutcome::Failed {
                            message: error.clone(),
                            status: 0,
                        }
                    } else if succeeded.as_ref().is_some_and(|s| !s.contains_key(id)) {
                        RecordOutcome::Failed {
                            message: job_error.clone(),
                            status: 0,
                        }
                    } else {
                        RecordOutcome::Delivered
                    }
                }
            })
            .collect())
    }

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

fn parse_job(answer: &[u8]) -> Result<JobInfo, DestinationError> {
    serde_json::from_slice(answer).map_err(|e| DestinationError::Transient {
        message: format!("salesforce job info is not the documented json: {e}"),
        status: 0,
        retry_after: None,
    })
}

/// The error of a non-2xx answer (`[{errorCode, message}]` bodies).
fn error_of(status: u16, headers: &reqwest::header::HeaderMap, answer: &[u8]) -> DestinationError {
    let errors: Vec<ApiError> = serde_json::from_slice(answer).unwrap_or_default();
    let message = if errors.is_empty() {
        http::excerpt(answer)
    } else {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.error_code, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if status == 403
        && errors
            .iter()
            .any(|e| e.error_code == "REQUEST_LIMIT_EXCEEDED")
    {
        return DestinationError::RateLimited {
            retry_after: http::retry_after(headers),
        };
    }
    http::status_error(status, headers, message)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const F_403: &str =
        include_str!("../../../../fixtures/wire/salesforce/error-403-request-limit.json");
    const F_404: &str =
        include_str!("../../../../fixtures/wire/salesforce/error-404-not-found.json");
    const F_OPEN: &str =
        include_str!("../../../../fixtures/wire/salesforce/create-job-response-upsert.json");

    #[test]
    fn upload_csv_writes_the_external_id_first_and_null_as_na() {
        let record = |id: &str, fields: Value| OutboundRecord {
            key_hash: 1,
            key: json!({"ext": id}).as_object().cloned().unwrap(),
            fields: fields.as_object().cloned().unwrap(),
        };
        let batch = OutboundBatch {
            sync_id: "s".into(),
            run_id: "r".into(),
            operation: Operation::Upsert,
            idempotency_key: "r:upsert:0".into(),
            options: Arc::default(),
            records: vec![
                record(
                    "234",
                    json!({"name": "United Oil & Gas, UK", "NumberOfEmployees": 1467}),
                ),
                record("345", json!({"name": null, "NumberOfEmployees": 348})),
                record("", json!({"name": "no id"})),
            ],
        };
        let (csv_body, ids) = upsert_csv(&batch, "customExtIdField__c");
        assert_eq!(
            csv_body,
            "customExtIdField__c,NumberOfEmployees,name\n\"234\",\"1467\",\"United Oil & Gas, UK\"\n\"345\",\"348\",#N/A\n"
        );
        assert_eq!(ids, vec![Some("234".into()), Some("345".into()), None]);
        assert_eq!(soql_literal("o'k"), "'o\\'k'");
    }

    #[test]
    fn errors_are_read_from_the_array_bodies() {
        let h = reqwest::header::HeaderMap::new();
        assert_eq!(
            error_of(403, &h, F_403.as_bytes()),
            DestinationError::RateLimited { retry_after: None }
        );
        assert!(
            matches!(error_of(404, &h, F_404.as_bytes()), DestinationError::Rejected { status: 404, message } if message == "404: NOT_FOUND: The requested resource does not exist")
        );
        let job = parse_job(F_OPEN.as_bytes()).unwrap();
        assert_eq!(
            job.content_url.as_deref(),
            Some("services/data/66.0/jobs/ingest/7476gEXAMPLE4X2ZWO/batches")
        );
        assert_eq!(job.state, "Open");
    }
}
