//! The Databricks SQL Statement Execution API 2.0 bodies this connector sends and reads,
//! named after the SDK's dataclasses (`ExecuteStatementRequest`, `StatementResponse`,
//! `StatementStatus`, `ServiceError`, `ResultManifest`, `ColumnInfo`, `ResultData`).
//! Only the fields the connector uses are declared.

use serde::{Deserialize, Serialize};

/// `POST /api/2.0/sql/statements`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ExecuteRequest {
    pub statement: String,
    pub warehouse_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// `"0s"` or `"5s"`..`"50s"`.
    pub wait_timeout: String,
    pub on_wait_timeout: &'static str,
    pub disposition: &'static str,
    pub format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_limit: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct StatementResponse {
    pub statement_id: Option<String>,
    pub status: Option<StatementStatus>,
    pub manifest: Option<ResultManifest>,
    pub result: Option<ResultData>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct StatementStatus {
    /// PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, CLOSED.
    pub state: String,
    pub error: Option<ServiceError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ServiceError {
    pub error_code: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ResultManifest {
    pub schema: Option<ResultSchema>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ResultSchema {
    #[serde(default)]
    pub columns: Vec<ColumnInfo>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ColumnInfo {
    pub name: String,
    pub position: Option<u32>,
    pub type_name: Option<String>,
    pub type_text: Option<String>,
    pub type_precision: Option<u8>,
    pub type_scale: Option<i8>,
}

/// One chunk (inline): `data_array` rows of string-or-null cells, and the link to the
/// next chunk, absent on the last.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ResultData {
    pub data_array: Option<Vec<Vec<Option<String>>>>,
    pub external_links: Option<Vec<serde_json::Value>>,
    pub next_chunk_internal_link: Option<String>,
}

/// A non-200 body: `{"error_code", "message", "details"}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorBody {
    pub error_code: Option<String>,
    #[serde(default)]
    pub message: String,
}
