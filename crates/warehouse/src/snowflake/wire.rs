//! The SQL API v2 bodies the connector sends and reads, as fixtures/wire/snowflake-sql-api.md
//! documents them (spec `sqlapi.yaml`; docs examples). Only the fields the connector uses
//! are declared; unknown fields are ignored, missing optional ones are `None`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /api/v2/statements` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubmitRequest {
    pub statement: String,
    /// Seconds; `0` would mean the maximum, so the connector always sends ≥ 1.
    pub timeout: u64,
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub warehouse: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bindings: BTreeMap<String, Binding>,
    /// `MULTI_STATEMENT_COUNT` = `"1"` (upper case, string, as the docs examples send it).
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "resultSetMetaData", skip_serializing_if = "Option::is_none")]
    pub result_set_meta_data: Option<FormatRequest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Binding {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FormatRequest {
    pub format: String,
}

/// 200 ResultSet (from the POST or a status GET for partition 0).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResultSet {
    #[serde(rename = "statementHandle")]
    pub statement_handle: String,
    #[serde(rename = "resultSetMetaData")]
    pub meta: ResultSetMetaData,
    #[serde(default)]
    pub data: Vec<Vec<Option<String>>>,
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResultSetMetaData {
    #[serde(rename = "numRows", default)]
    pub num_rows: Option<u64>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(rename = "rowType")]
    pub row_type: Vec<RowType>,
    #[serde(rename = "partitionInfo", default)]
    pub partition_info: Vec<PartitionInfo>,
}

/// One column of `resultSetMetaData.rowType`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct RowType {
    pub name: String,
    /// `fixed`, `text`, `timestamp_ntz`... (lower case live, upper case in the spec).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub length: Option<u64>,
    #[serde(default)]
    pub precision: Option<u64>,
    #[serde(default)]
    pub scale: Option<i64>,
    #[serde(default)]
    pub nullable: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct PartitionInfo {
    #[serde(rename = "rowCount")]
    pub row_count: u64,
    #[serde(rename = "uncompressedSize", default)]
    pub uncompressed_size: Option<u64>,
    #[serde(
        rename = "compressedSize",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub compressed_size: Option<u64>,
}

/// `GET ...?partition=N` (N ≥ 1): `data` only.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PartitionData {
    pub data: Vec<Vec<Option<String>>>,
}

/// 202 / 408 QueryStatus, 422 QueryFailureStatus, CancelStatus and the bare
/// `{code, message}` error bodies: all optional but `message` in practice.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StatusBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(rename = "sqlState", default)]
    pub sql_state: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(rename = "statementHandle", default)]
    pub statement_handle: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../fixtures/wire/snowflake/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(path).unwrap()
    }

    #[test]
    fn fixtures_parse() {
        let r: ResultSet =
            serde_json::from_slice(&fixture("post-statements-200-multi-partition.json")).unwrap();
        assert_eq!(r.meta.partition_info.len(), 2);
        assert_eq!(r.meta.row_type[0].kind, "fixed");
        assert_eq!(r.meta.row_type[1].length, Some(16_777_216));
        assert_eq!(r.data[1], [Some("98".into()), Some("ZugTcURrcy".into())]);
        let p: PartitionData =
            serde_json::from_slice(&fixture("get-statement-partition-1.json")).unwrap();
        assert_eq!(p.data.len(), 3);
        let s: StatusBody =
            serde_json::from_slice(&fixture("post-statements-202-async.json")).unwrap();
        assert_eq!(s.code.as_deref(), Some("333334"));
        let s: StatusBody =
            serde_json::from_slice(&fixture("post-statements-422-compile-error.json")).unwrap();
        assert_eq!(s.sql_state.as_deref(), Some("42000"));
        let req: SubmitRequest =
            serde_json::from_slice(&fixture("post-statements-request.json")).unwrap();
        assert_eq!(req.bindings["1"].kind, "FIXED");
    }
}
