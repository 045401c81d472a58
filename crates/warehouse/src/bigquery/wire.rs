//! The BigQuery REST v2 bodies this connector sends and reads, as serde types named after
//! the discovery document's schemas (`QueryRequest`, `QueryResponse`,
//! `GetQueryResultsResponse`, `Job`, `JobStatus`, `ErrorProto`). Only the fields the
//! connector uses are declared; everything else in an answer is ignored. Google encodes
//! every int64/uint64 as a JSON string (`totalRows`, `jobTimeoutMs`, `precision`), so
//! those are strings here too.

use serde::{Deserialize, Serialize};

/// `jobs.query` request body (`POST projects/{projectId}/queries`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueryRequest {
    pub query: String,
    /// Always sent, always `false`: the API defaults to legacy SQL.
    pub use_legacy_sql: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// How long this call waits for the job before answering `jobComplete: false`.
    pub timeout_ms: u32,
    /// Page size in rows.
    pub max_results: u32,
    pub format_options: FormatOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_dataset: Option<DatasetReference>,
    /// The job's own timeout, enforced by BigQuery (int64 as a string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_timeout_ms: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FormatOptions {
    /// TIMESTAMP cells as int64 microseconds instead of float seconds.
    pub use_int64_timestamp: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DatasetReference {
    pub project_id: String,
    pub dataset_id: String,
}

/// `QueryResponse` and `GetQueryResultsResponse` share every field the connector reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueryResponse {
    pub job_reference: Option<JobReference>,
    pub job_complete: Option<bool>,
    pub schema: Option<TableSchema>,
    #[serde(default)]
    pub rows: Vec<TableRow>,
    pub page_token: Option<String>,
}

impl QueryResponse {
    /// "If rows or totalRows are present, this will always be true."
    pub fn is_complete(&self) -> bool {
        self.job_complete
            .unwrap_or(self.schema.is_some() || !self.rows.is_empty())
    }

    /// The token of the next page; an empty token means none.
    pub fn next_page(&self) -> Option<&str> {
        self.page_token.as_deref().filter(|t| !t.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobReference {
    pub project_id: Option<String>,
    pub job_id: String,
    pub location: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TableSchema {
    #[serde(default)]
    pub fields: Vec<TableFieldSchema>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TableFieldSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    /// `NULLABLE` (default), `REQUIRED` or `REPEATED`.
    pub mode: Option<String>,
    #[serde(default)]
    pub fields: Vec<TableFieldSchema>,
    /// Parameterized NUMERIC(P, S); int64 strings.
    pub precision: Option<String>,
    pub scale: Option<String>,
}

impl TableFieldSchema {
    pub fn is_repeated(&self) -> bool {
        self.mode.as_deref() == Some("REPEATED")
    }

    pub fn is_required(&self) -> bool {
        self.mode.as_deref() == Some("REQUIRED")
    }
}

/// `{"f": [{"v": ...}, ...]}`
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TableRow {
    #[serde(default)]
    pub f: Vec<TableCell>,
}

/// `{"v": ...}`: a string, null, a list of cells (REPEATED) or a row (RECORD).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TableCell {
    #[serde(default)]
    pub v: serde_json::Value,
}

/// `jobs.get` answer (the fields polling needs).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Job {
    pub status: Option<JobStatus>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobStatus {
    /// `PENDING`, `RUNNING` or `DONE`.
    pub state: String,
    pub error_result: Option<ErrorProto>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorProto {
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// `{"error": {"code", "message", "errors": [ErrorProto], "status"}}`
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<ErrorProto>,
}
