//! The dbt Cloud Administrative API, as the listener uses it: check a token against an
//! account, list projects, environments, jobs and runs, read a run's `run_results.json`,
//! trigger a run, and manage the webhook subscriptions that call Backflow back.
//!
//! Every answer comes in dbt's envelope (`status` / `data` / `extra.pagination`); lists
//! are paged with `limit` (at most 100) and `offset` until `total_count` is reached. A
//! 429 is retried after its `Retry-After` (or an exponential back-off) a few times,
//! then reported. Status codes become [`ApiError`]s that say what to fix: 401 is a bad
//! token, 403 a token without the permission, and a 404 on an account means the token
//! cannot see it. The token travels only as `Authorization: Token …` and only to the
//! host the connection was checked against (see `access_url`).

mod types;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

pub use types::{
    Account, Environment, Job, Project, Run, RunStatus, Subscription, SubscriptionRequest,
};

/// dbt's page size limit for list endpoints.
pub const MAX_PAGE: usize = 100;

/// Back-off before retry n (0-based) of a 429 without `Retry-After`.
const RATE_LIMIT_BACKOFF: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(8),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("dbt cloud refused the api token (401): {message}")]
    Unauthorized { message: String },
    #[error("the api token lacks a permission for this call (403): {message}")]
    Forbidden { message: String },
    #[error("not found or not visible to this token (404) at {path}: {message}")]
    NotFound { path: String, message: String },
    #[error("dbt cloud kept rate limiting (429) after {attempts} attempts")]
    RateLimited { attempts: usize },
    #[error("cannot reach dbt cloud at {base_url}: {detail}")]
    Unreachable { base_url: String, detail: String },
    #[error("dbt cloud answered {status} at {path}: {message}")]
    Status {
        status: u16,
        path: String,
        message: String,
    },
    #[error("unexpected answer from dbt cloud at {path}: {detail}")]
    Protocol { path: String, detail: String },
}

/// A client for one account on one dbt Cloud host.
#[derive(Clone)]
pub struct DbtCloudClient {
    http: reqwest::Client,
    base_url: String,
    account_id: i64,
    token: SecretString,
}

impl std::fmt::Debug for DbtCloudClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbtCloudClient")
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .field("token", &"[redacted]")
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    extra: Option<Extra>,
}

#[derive(serde::Deserialize, Default)]
struct Extra {
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(serde::Deserialize, Default)]
struct Pagination {
    #[serde(default)]
    total_count: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
struct ErrorEnvelope {
    #[serde(default)]
    status: Option<ErrorStatus>,
}

#[derive(serde::Deserialize, Default)]
struct ErrorStatus {
    #[serde(default)]
    user_message: Option<String>,
    #[serde(default)]
    developer_message: Option<String>,
}

impl DbtCloudClient {
    /// `base_url` is an already-checked `https://<host>` (tests pass a loopback URL).
    pub fn new(base_url: &str, account_id: i64, token: SecretString) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            account_id,
            token,
        }
    }

    /// Checks the token against the account (`GET /api/v2/accounts/{id}/`).
    pub async fn check_account(&self) -> Result<Account, ApiError> {
        let path = format!("/api/v2/accounts/{}/", self.account_id);
        self.get(&path).await
    }

    /// One page of at most `limit` jobs: enough to learn whether the token may list them.
    pub async fn first_jobs(&self, limit: usize) -> Result<Vec<Job>, ApiError> {
        let path = format!("/api/v2/accounts/{}/jobs/", self.account_id);
        let query = [
            ("limit", limit.clamp(1, MAX_PAGE).to_string()),
            ("offset", "0".to_string()),
        ];
        self.get_with(&path, &query).await.map(|(jobs, _)| jobs)
    }

    /// The account's id, for messages.
    pub fn account_id(&self) -> i64 {
        self.account_id
    }

    /// The host the token is sent to, for messages.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub async fn projects(&self) -> Result<Vec<Project>, ApiError> {
        self.list(
            &format!("/api/v3/accounts/{}/projects/", self.account_id),
            &[],
        )
        .await
    }

    pub async fn environments(&self) -> Result<Vec<Environment>, ApiError> {
        self.list(
            &format!("/api/v3/accounts/{}/environments/", self.account_id),
            &[],
        )
        .await
    }

    /// Every job of the account, or of one project.
    pub async fn jobs(&self, project_id: Option<i64>) -> Result<Vec<Job>, ApiError> {
        let filter = project_id.map(|id| ("project_id", id.to_string()));
        self.list(
            &format!("/api/v2/accounts/{}/jobs/", self.account_id),
            filter.as_slice(),
        )
        .await
    }

    pub async fn job(&self, job_id: i64) -> Result<Job, ApiError> {
        self.get(&format!(
            "/api/v2/accounts/{}/jobs/{job_id}/",
            self.account_id
        ))
        .await
    }

    /// The newest `limit` runs of a job, newest first.
    pub async fn recent_runs(&self, job_id: i64, limit: usize) -> Result<Vec<Run>, ApiError> {
        let path = format!("/api/v2/accounts/{}/runs/", self.account_id);
        let query = [
            ("job_definition_id", job_id.to_string()),
            ("order_by", "-id".to_string()),
            ("limit", limit.clamp(1, MAX_PAGE).to_string()),
            ("offset", "0".to_string()),
        ];
        self.get_with(&path, &query).await.map(|(runs, _)| runs)
    }

    pub async fn run(&self, run_id: i64) -> Result<Run, ApiError> {
        self.get(&format!(
            "/api/v2/accounts/{}/runs/{run_id}/",
            self.account_id
        ))
        .await
    }

    /// A run's `run_results.json`, as dbt wrote it.
    pub async fn run_results(&self, run_id: i64) -> Result<serde_json::Value, ApiError> {
        let path = format!(
            "/api/v2/accounts/{}/runs/{run_id}/artifacts/run_results.json",
            self.account_id
        );
        let bytes = self.send(reqwest::Method::GET, &path, &[], None).await?;
        serde_json::from_slice(&bytes).map_err(|err| ApiError::Protocol {
            path,
            detail: err.to_string(),
        })
    }

    /// Triggers a run of a job; `cause` is cut to dbt's 255 characters.
    pub async fn trigger_run(&self, job_id: i64, cause: &str) -> Result<Run, ApiError> {
        let path = format!("/api/v2/accounts/{}/jobs/{job_id}/run/", self.account_id);
        let cause: String = cause.chars().take(255).collect();
        let body = serde_json::json!({ "cause": cause });
        self.send_json(reqwest::Method::POST, &path, Some(body))
            .await
    }

    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, ApiError> {
        self.list(
            &format!(
                "/api/v3/accounts/{}/webhooks/subscriptions",
                self.account_id
            ),
            &[],
        )
        .await
    }

    /// One page of at most `limit` subscriptions: enough to learn whether the token may
    /// manage webhooks.
    pub async fn first_subscriptions(&self, limit: usize) -> Result<Vec<Subscription>, ApiError> {
        let path = format!(
            "/api/v3/accounts/{}/webhooks/subscriptions",
            self.account_id
        );
        let query = [
            ("limit", limit.clamp(1, MAX_PAGE).to_string()),
            ("offset", "0".to_string()),
        ];
        self.get_with(&path, &query).await.map(|(subs, _)| subs)
    }

    /// Creates a subscription; the answer is the only place dbt returns its `hmac_secret`.
    pub async fn create_subscription(
        &self,
        request: &SubscriptionRequest,
    ) -> Result<Subscription, ApiError> {
        let path = format!(
            "/api/v3/accounts/{}/webhooks/subscriptions",
            self.account_id
        );
        let body = serde_json::to_value(request).map_err(|err| ApiError::Protocol {
            path: path.clone(),
            detail: err.to_string(),
        })?;
        self.send_json(reqwest::Method::POST, &path, Some(body))
            .await
    }

    /// Deletes a subscription; one that is already gone counts as deleted.
    pub async fn delete_subscription(&self, subscription_id: &str) -> Result<(), ApiError> {
        let path = format!(
            "/api/v3/accounts/{}/webhooks/subscription/{subscription_id}",
            self.account_id
        );
        match self.send(reqwest::Method::DELETE, &path, &[], None).await {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.send_json(reqwest::Method::GET, path, None).await
    }

    async fn get_with<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(T, Option<u64>), ApiError> {
        let bytes = self.send(reqwest::Method::GET, path, query, None).await?;
        let envelope: Envelope<T> = decode(path, &bytes)?;
        let total = envelope
            .extra
            .and_then(|extra| extra.pagination)
            .and_then(|pagination| pagination.total_count);
        let data = envelope.data.ok_or_else(|| ApiError::Protocol {
            path: path.to_string(),
            detail: "no data in the answer".into(),
        })?;
        Ok((data, total))
    }

    /// Pages with `limit`/`offset` until `total_count` (or a short page).
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        filter: &[(&str, String)],
    ) -> Result<Vec<T>, ApiError> {
        let mut all = Vec::new();
        loop {
            let mut query: Vec<(&str, String)> = filter.to_vec();
            query.push(("limit", MAX_PAGE.to_string()));
            query.push(("offset", all.len().to_string()));
            let (page, total): (Vec<T>, _) = self.get_with(path, &query).await?;
            let short = page.len() < MAX_PAGE;
            all.extend(page);
            let done = match total {
                Some(total) => all.len() as u64 >= total,
                None => short,
            };
            if done || short {
                return Ok(all);
            }
        }
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, ApiError> {
        let bytes = self.send(method, path, &[], body).await?;
        let envelope: Envelope<T> = decode(path, &bytes)?;
        envelope.data.ok_or_else(|| ApiError::Protocol {
            path: path.to_string(),
            detail: "no data in the answer".into(),
        })
    }

    #[tracing::instrument(skip(self, query, body), fields(account_id = self.account_id))]
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<bytes::Bytes, ApiError> {
        let url = format!("{}{path}", self.base_url);
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .query(query)
                .header(
                    reqwest::header::AUTHORIZATION,
                    format!("Token {}", self.token.expose_secret()),
                )
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|err| ApiError::Unreachable {
                base_url: self.base_url.clone(),
                detail: err.without_url().to_string(),
            })?;
            let status = response.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let Some(wait) = rate_limit_wait(response.headers(), attempt) else {
                    return Err(ApiError::RateLimited {
                        attempts: attempt + 1,
                    });
                };
                tracing::debug!(
                    path,
                    wait_ms = wait.as_millis() as u64,
                    "dbt cloud rate limited"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|err| ApiError::Unreachable {
                    base_url: self.base_url.clone(),
                    detail: err.without_url().to_string(),
                })?;
            if status.is_success() {
                return Ok(bytes);
            }
            return Err(status_error(status.as_u16(), path, &bytes));
        }
    }
}

fn decode<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|err| ApiError::Protocol {
        path: path.to_string(),
        detail: err.to_string(),
    })
}

/// Longest wait a `Retry-After` may ask for; dbt's own are seconds.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long to wait before retry `attempt`, or `None` when retries are used up.
/// `Retry-After` is honoured as seconds or as an HTTP date; without it (or with one
/// that cannot be read) the back-off doubles from 500 ms.
fn rate_limit_wait(headers: &reqwest::header::HeaderMap, attempt: usize) -> Option<Duration> {
    let fallback = *RATE_LIMIT_BACKOFF.get(attempt)?;
    let given = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| retry_after(value, std::time::SystemTime::now()));
    Some(given.unwrap_or(fallback).min(MAX_RETRY_AFTER))
}

/// `Retry-After: 3` or `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT` (relative to `now`).
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The error for a non-success status, with dbt's `user_message` when it sent one.
fn status_error(status: u16, path: &str, body: &[u8]) -> ApiError {
    let envelope: ErrorEnvelope = serde_json::from_slice(body).unwrap_or_default();
    let message = envelope
        .status
        .and_then(|s| s.user_message.or(s.developer_message))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    match status {
        401 => ApiError::Unauthorized { message },
        403 => ApiError::Forbidden { message },
        404 => ApiError::NotFound {
            path: path.to_string(),
            message,
        },
        _ => ApiError::Status {
            status,
            path: path.to_string(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbt_error_envelopes_become_errors_that_say_what_to_fix() {
        let body = include_bytes!("../../../../fixtures/payloads/dbt-cloud-error-401.json");
        assert_eq!(
            status_error(401, "/api/v2/accounts/1/", body),
            ApiError::Unauthorized {
                message: "Invalid token.".into()
            }
        );
        assert!(matches!(
            status_error(404, "/x", b"not json"),
            ApiError::NotFound { message, .. } if message == "not json"
        ));
        assert!(matches!(
            status_error(500, "/x", b""),
            ApiError::Status { status: 500, .. }
        ));
    }

    #[test]
    fn rate_limits_wait_as_told_then_give_up() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(
            rate_limit_wait(&headers, 0),
            Some(Duration::from_millis(500))
        );
        assert_eq!(rate_limit_wait(&headers, 1), Some(Duration::from_secs(2)));
        headers.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(rate_limit_wait(&headers, 1), Some(Duration::from_secs(3)));
        assert_eq!(rate_limit_wait(&headers, RATE_LIMIT_BACKOFF.len()), None);
        headers.insert(reqwest::header::RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(rate_limit_wait(&headers, 0), Some(MAX_RETRY_AFTER));
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(
            rate_limit_wait(&headers, 0),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn retry_after_dates_count_from_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("later", now), None);
    }
}
