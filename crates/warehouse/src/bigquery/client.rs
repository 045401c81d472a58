//! The BigQuery REST calls this connector makes, each with a bearer token from the
//! service account: `jobs.query`, `jobs.getQueryResults`, `jobs.get`, `jobs.cancel`.
//! A 401 drops the cached token and retries once with a fresh one (google-auth refreshes
//! at most twice); any other non-2xx answer goes through [`super::errors::from_http`].

use reqwest::{Method, Url};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::auth::TokenSource;
use super::errors::{self, ErrorContext};
use super::wire::{Job, JobReference, QueryRequest, QueryResponse};
use crate::{http, WarehouseError};

#[derive(Debug)]
pub(crate) struct BqClient {
    pub http: reqwest::Client,
    /// Scheme, host and port, e.g. `https://bigquery.googleapis.com`.
    pub endpoint: String,
    pub project: String,
    pub location: Option<String>,
    pub dataset: Option<String>,
    pub tokens: TokenSource,
}

/// Query-string parameters of one call.
type Params<'a> = Vec<(&'static str, String)>;

impl BqClient {
    /// `<endpoint>/bigquery/v2/projects/<project>/<rest...>`, each segment escaped.
    fn url(&self, project: &str, rest: &[&str]) -> Result<Url, WarehouseError> {
        let mut url = Url::parse(&self.endpoint).map_err(|_| WarehouseError::Settings {
            key: "endpoint".into(),
            reason: "not a url".into(),
        })?;
        url.path_segments_mut()
            .map_err(|_| WarehouseError::Settings {
                key: "endpoint".into(),
                reason: "cannot be a base url".into(),
            })?
            .pop_if_empty()
            .extend(["bigquery", "v2", "projects", project])
            .extend(rest);
        Ok(url)
    }

    /// `jobs.query`: `POST projects/{projectId}/queries`.
    pub async fn query(
        &self,
        request: &QueryRequest,
        ctx: &ErrorContext,
    ) -> Result<QueryResponse, WarehouseError> {
        let url = self.url(&self.project, &["queries"])?;
        self.call(Method::POST, url, vec![], Some(request), ctx)
            .await
    }

    /// `jobs.getQueryResults`: `GET projects/{projectId}/queries/{jobId}`.
    pub async fn get_query_results(
        &self,
        job: &JobReference,
        page_token: Option<&str>,
        max_results: u32,
        timeout_ms: Option<u32>,
        ctx: &ErrorContext,
    ) -> Result<QueryResponse, WarehouseError> {
        let url = self.url(self.job_project(job), &["queries", &job.job_id])?;
        let mut params = self.location_param(job);
        params.push(("maxResults", max_results.to_string()));
        params.push(("formatOptions.useInt64Timestamp", "true".into()));
        if let Some(token) = page_token {
            params.push(("pageToken", token.to_string()));
        }
        if let Some(ms) = timeout_ms {
            params.push(("timeoutMs", ms.to_string()));
        }
        self.call(Method::GET, url, params, None::<&()>, ctx).await
    }

    /// `jobs.get`: `GET projects/{projectId}/jobs/{jobId}`.
    pub async fn get_job(
        &self,
        job: &JobReference,
        ctx: &ErrorContext,
    ) -> Result<Job, WarehouseError> {
        let url = self.url(self.job_project(job), &["jobs", &job.job_id])?;
        let params = self.location_param(job);
        self.call(Method::GET, url, params, None::<&()>, ctx).await
    }

    /// `jobs.cancel`: `POST projects/{projectId}/jobs/{jobId}/cancel`. Returns at once;
    /// the job stops later.
    pub async fn cancel_job(
        &self,
        job: &JobReference,
        ctx: &ErrorContext,
    ) -> Result<(), WarehouseError> {
        let url = self.url(self.job_project(job), &["jobs", &job.job_id, "cancel"])?;
        let params = self.location_param(job);
        self.call::<serde_json::Value>(Method::POST, url, params, None::<&()>, ctx)
            .await
            .map(|_| ())
    }

    fn job_project<'a>(&'a self, job: &'a JobReference) -> &'a str {
        job.project_id.as_deref().unwrap_or(&self.project)
    }

    /// `location` is required for jobs outside the US and EU multi-regions.
    fn location_param(&self, job: &JobReference) -> Params<'_> {
        job.location
            .clone()
            .or_else(|| self.location.clone())
            .map(|l| vec![("location", l)])
            .unwrap_or_default()
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        params: Params<'_>,
        body: Option<&(impl Serialize + ?Sized)>,
        ctx: &ErrorContext,
    ) -> Result<T, WarehouseError> {
        let mut refreshed = false;
        loop {
            let token = self.tokens.access_token().await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose_secret())
                .query(&params);
            request = match body {
                Some(b) => request.json(b),
                // Google front ends want a length on an empty POST.
                None if method == Method::POST => request.header("content-length", "0"),
                None => request,
            };
            let response = request
                .send()
                .await
                .map_err(|e| http::transport_error(&self.endpoint, &e))?;
            let status = response.status();
            let bytes = http::read_body(&self.endpoint, response).await?;
            if status.as_u16() == 401 && !refreshed {
                tracing::debug!("bigquery answered 401; minting a new access token");
                self.tokens.invalidate().await;
                refreshed = true;
                continue;
            }
            if !status.is_success() {
                let text = String::from_utf8_lossy(&bytes);
                return Err(errors::from_http(status.as_u16(), &text, ctx));
            }
            return http::decode_json("bigquery answer", &bytes);
        }
    }
}
