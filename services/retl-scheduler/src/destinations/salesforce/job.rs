//! One Bulk API 2.0 ingest job, start to end: the calls (with the error bodies read as
//! Salesforce writes them), create → upload → UploadComplete → poll, and reading a finished
//! job's result files into per-record outcomes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::SalesforceDestination;
use crate::destinations::csv;
use crate::destinations::http;
use crate::destinations::{DestinationError, RecordOutcome};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JobInfo {
    pub(super) id: String,
    pub(super) state: String,
    #[serde(default)]
    pub(super) content_url: Option<String>,
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

impl SalesforceDestination {
    /// One call to `url`; a 2xx answer's body, or the classified error.
    pub(super) async fn call(
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
    pub(super) async fn run_job(
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
        let job_url = format!("{jobs}/{}", job.id);
        if let Err(error) = self
            .call(
                reqwest::Method::PUT,
                &content,
                Some(("text/csv", csv_body.into_bytes())),
                requests,
            )
            .await
        {
            // Nothing was processed (a job does nothing before UploadComplete): abort it
            // rather than leave an open job behind; the batch is resent in a new job.
            self.abort(&job_url, requests).await;
            return Err(error);
        }
        self.close(&job_url, requests).await?;
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
                Err(e) if crate::destinations::retry::is_retryable(&e) && errors_in_a_row < 5 => {
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

    /// `UploadComplete`. When the answer is lost (no answer, 5xx) the job is read back:
    /// a job no longer `Open` was closed (it is processing; closing it again, or resending
    /// the batch in a new job, would apply the records twice), an `Open` one is closed
    /// again. A close refused outright aborts the job.
    async fn close(&self, job_url: &str, requests: &mut u64) -> Result<(), DestinationError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match self
                .json_call(
                    reqwest::Method::PATCH,
                    job_url,
                    json!({"state": "UploadComplete"}),
                    requests,
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            if !matches!(error, DestinationError::Transient { .. }) || attempts >= 3 {
                self.abort(job_url, requests).await;
                return Err(error);
            }
            tracing::warn!(job = %job_url, %error, "closing a salesforce job got no answer, reading it back");
            tokio::time::sleep(Duration::from_millis(100 * attempts)).await;
            match self.patiently(job_url, requests).await {
                Ok(answer) if parse_job(&answer).is_ok_and(|info| info.state != "Open") => {
                    return Ok(())
                }
                Ok(_) => {}
                Err(read) => {
                    tracing::warn!(job = %job_url, error = %read, "reading a salesforce job back failed");
                    return Err(error);
                }
            }
        }
    }

    /// Best effort `Aborted` on a job that will not be closed (its records are resent).
    async fn abort(&self, job_url: &str, requests: &mut u64) {
        if let Err(error) = self
            .json_call(
                reqwest::Method::PATCH,
                job_url,
                json!({"state": "Aborted"}),
                requests,
            )
            .await
        {
            tracing::warn!(job = %job_url, %error, "aborting a salesforce job failed; it stays open until salesforce expires it");
        }
    }

    /// A GET retried in place on transient failures (up to 5 in a row): reading a job
    /// that is already processing must not end in resending its records in a new job.
    async fn patiently(
        &self,
        url: &str,
        requests: &mut u64,
    ) -> Result<bytes::Bytes, DestinationError> {
        let mut failures = 0u32;
        loop {
            match self.call(reqwest::Method::GET, url, None, requests).await {
                Ok(answer) => return Ok(answer),
                Err(e) if crate::destinations::retry::is_retryable(&e) && failures < 5 => {
                    failures += 1;
                    tracing::warn!(url, error = %e, "a salesforce read failed, reading again");
                    let wait = match &e {
                        DestinationError::RateLimited {
                            retry_after: Some(after),
                            ..
                        }
                        | DestinationError::Transient {
                            retry_after: Some(after),
                            ..
                        } => (*after).min(Duration::from_secs(30)),
                        _ => Duration::from_millis(200 * u64::from(failures)),
                    };
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
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
        let answer = self.patiently(&url, requests).await?;
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
    pub(super) async fn outcomes(
        &self,
        job: &JobInfo,
        column: &str,
        ids: &[Option<String>],
        requests: &mut u64,
    ) -> Result<Vec<RecordOutcome>, DestinationError> {
        if job.state == "Aborted" {
            // No result files for an aborted job (the fixture: successful and failed
            // results once JobComplete or Failed): every record fails and is sent again
            // next run (upserts by external id converge if some were applied).
            let message = match &job.error_message {
                Some(m) => format!("the salesforce job {} was aborted: {m}", job.id),
                None => format!("the salesforce job {} was aborted", job.id),
            };
            return Ok(ids
                .iter()
                .map(|id| match id {
                    None => RecordOutcome::Delivered,
                    Some(_) => RecordOutcome::Failed {
                        message: message.clone(),
                        status: 0,
                    },
                })
                .collect());
        }
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
        let job_error = match &job.error_message {
            Some(m) => format!("the salesforce job {} ended {}: {m}", job.id, job.state),
            None => format!("the salesforce job {} ended {}", job.id, job.state),
        };
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
}

pub(super) fn parse_job(answer: &[u8]) -> Result<JobInfo, DestinationError> {
    serde_json::from_slice(answer).map_err(|e| DestinationError::Transient {
        message: format!("salesforce job info is not the documented json: {e}"),
        status: 0,
        retry_after: None,
    })
}

/// The error of a non-2xx answer (`[{errorCode, message}]` bodies).
pub(super) fn error_of(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    answer: &[u8],
) -> DestinationError {
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
            status,
            message: format!("{status}: {message}"),
        };
    }
    http::status_error(status, headers, message)
}
