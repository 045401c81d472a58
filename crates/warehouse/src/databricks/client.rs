//! The Statement Execution API calls this connector makes, each with
//! `Authorization: Bearer <personal access token>`: submit, get status, get a chunk by its
//! `next_chunk_internal_link` (an absolute path, joined with the host, treated as opaque),
//! and cancel. Non-2xx answers go through [`super::errors::from_http`] with the
//! `Retry-After` header read as integer seconds.

use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::errors::{self, Call, ErrorContext};
use super::wire::{ExecuteRequest, ResultData, StatementResponse};
use crate::{http, WarehouseError};

const STATEMENTS: &str = "/api/2.0/sql/statements";

pub(crate) struct DbxClient {
    pub http: reqwest::Client,
    /// Scheme, host and port, e.g. `https://adb-1.azuredatabricks.net`.
    pub endpoint: String,
    pub token: SecretString,
    pub warehouse_id: String,
    pub catalog: Option<String>,
    pub schema: Option<String>,
}

impl std::fmt::Debug for DbxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbxClient")
            .field("endpoint", &self.endpoint)
            .field("warehouse_id", &self.warehouse_id)
            .finish_non_exhaustive()
    }
}

impl DbxClient {
    fn url(&self, path: &str) -> Result<Url, WarehouseError> {
        if !path.starts_with('/') {
            return Err(WarehouseError::Protocol {
                detail: "a chunk link is not an absolute path".into(),
            });
        }
        Url::parse(&format!("{}{path}", self.endpoint)).map_err(|_| WarehouseError::Protocol {
            detail: "a chunk link does not make a url".into(),
        })
    }

    fn statement_path(id: &str, rest: &str) -> Result<String, WarehouseError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(WarehouseError::Protocol {
                detail: "the statement id is not the documented form".into(),
            });
        }
        Ok(format!("{STATEMENTS}/{id}{rest}"))
    }

    pub async fn submit(
        &self,
        request: &ExecuteRequest,
        ctx: &ErrorContext,
    ) -> Result<StatementResponse, WarehouseError> {
        let url = self.url(STATEMENTS)?;
        self.call(Method::POST, url, Some(request), Call::Submit, ctx)
            .await
    }

    pub async fn status(
        &self,
        statement_id: &str,
        ctx: &ErrorContext,
    ) -> Result<StatementResponse, WarehouseError> {
        let url = self.url(&Self::statement_path(statement_id, "")?)?;
        self.call(Method::GET, url, None::<&()>, Call::Statement, ctx)
            .await
    }

    pub async fn chunk(
        &self,
        link: &str,
        ctx: &ErrorContext,
    ) -> Result<ResultData, WarehouseError> {
        let url = self.url(link)?;
        self.call(Method::GET, url, None::<&()>, Call::Statement, ctx)
            .await
    }

    /// Receipt only: the statement may still finish; poll to know.
    pub async fn cancel(
        &self,
        statement_id: &str,
        ctx: &ErrorContext,
    ) -> Result<(), WarehouseError> {
        let url = self.url(&Self::statement_path(statement_id, "/cancel")?)?;
        self.call::<serde_json::Value>(Method::POST, url, None::<&()>, Call::Statement, ctx)
            .await
            .map(|_| ())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + ?Sized)>,
        call: Call,
        ctx: &ErrorContext,
    ) -> Result<T, WarehouseError> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose_secret());
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request
            .send()
            .await
            .map_err(|e| http::transport_error(&self.endpoint, &e))?;
        let status = response.status();
        let retry_after = http::retry_after(response.headers());
        let bytes = http::read_body(&self.endpoint, response).await?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(errors::from_http(
                status.as_u16(),
                &text,
                retry_after,
                call,
                ctx,
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // The cancel answer is an empty body.
            return http::decode_json("databricks answer", b"{}");
        }
        http::decode_json("databricks answer", &bytes)
    }
}
