//! Columns and rows as every connector hands them out.
//!
//! Rows are Apache Arrow record batches. Each warehouse type maps to exactly one Arrow
//! type, so the sync engine can hash, diff and encode column by column without knowing
//! where the rows came from:
//!
//! | warehouse type (examples) | Arrow type |
//! |---|---|
//! | boolean | `Boolean` |
//! | smallint, integer, bigint, INT64, Databricks TINYINT..BIGINT | `Int64` |
//! | real, double precision, FLOAT64, Snowflake FLOAT | `Float64` |
//! | numeric(p,s) / NUMBER(p,s) / NUMERIC / DECIMAL(p,s) with p ≤ 38 | `Decimal128(p, s)` |
//! | numeric without precision, BIGNUMERIC, p > 38 | `Utf8` (exact decimal text) |
//! | text, varchar, char, STRING, uuid, interval | `Utf8` |
//! | json, jsonb, VARIANT, OBJECT, ARRAY, STRUCT, RECORD, MAP, GEOGRAPHY, SUPER | `Utf8` holding JSON, field metadata `backflow.logical = json` |
//! | date | `Date32` |
//! | timestamp without time zone, DATETIME, TIMESTAMP_NTZ | `Timestamp(Microsecond, None)` |
//! | timestamp with time zone, BigQuery TIMESTAMP, TIMESTAMP_TZ/LTZ, Databricks TIMESTAMP | `Timestamp(Microsecond, Some("UTC"))` |
//! | time | `Time64(Microsecond)` |
//! | bytea, BINARY, BYTES, VARBINARY | `Binary` |
//!
//! Connectors fill this table in per warehouse in their module docs; a type outside it
//! is [`crate::WarehouseError::UnsupportedType`], never a silent cast.

use std::pin::Pin;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use futures::Stream;

use crate::WarehouseError;

/// Field metadata key naming a logical type carried in a physical one (`json`).
pub const LOGICAL_TYPE_KEY: &str = "backflow.logical";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The warehouse's own type name, as it reports it (`character varying(20)`, `NUMBER(38,0)`).
    pub warehouse_type: String,
    pub data_type: DataType,
    pub nullable: bool,
}

/// What a successful connection test saw.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestReport {
    pub server_version: Option<String>,
}

/// Batches of one query; `schema` is known before the first batch arrives.
pub struct RowStream {
    pub schema: SchemaRef,
    pub batches: Pin<Box<dyn Stream<Item = Result<RecordBatch, WarehouseError>> + Send>>,
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Whether the warehouse proved that no two rows of a streamed result share a key value
/// (NULLs aside), before any row was read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KeyProof {
    /// Nothing is known: keys may repeat (the default of every connector).
    #[default]
    Unproven,
    /// The result is one scan of `relation`, whose unique `index` covers the key
    /// (PostgreSQL; see `postgres::unique`).
    UniqueIndex { relation: String, index: String },
}

impl KeyProof {
    pub fn is_proven(&self) -> bool {
        !matches!(self, KeyProof::Unproven)
    }
}
