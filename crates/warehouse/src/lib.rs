//! Warehouse connectors: the one place Backflow talks to a customer's warehouse.
//!
//! The catalog (preview, describe, key checks) and the sync engine (extract) both need
//! the same four things from five very different warehouses — test a connection,
//! describe columns, stream one read-only query as Apache Arrow record batches, and run a
//! small scalar query — so they are one trait, [`Connector`], with one implementation per
//! [`WarehouseKind`]. Callers never see a driver or a wire format: rows arrive as Arrow
//! batches whose types follow the table in [`types`], and every failure is a
//! [`WarehouseError`] that says what is wrong in words a user can act on.
//!
//! Secrets are not settings: [`connect`] takes them as [`SecretMaterial`], resolved from
//! the credentials service by the caller just before connecting, and never logged.

pub mod cells;
pub mod error;
pub mod http;
pub mod query;
pub mod source;
pub mod types;
pub mod write;

#[cfg(feature = "test-support")]
pub mod test_support;

mod bigquery;
mod databricks;
mod deadline;
pub mod postgres;
mod redshift;
mod snowflake;

pub use error::WarehouseError;
pub use query::{QueryOptions, ReadOnlyQuery, RelationRef};
pub use source::{connect, SecretMaterial, SourceSettings, WarehouseKind};
pub use types::{Column, KeyProof, RowStream, TestReport};
pub use write::{schema_writer, Applied, Param, SchemaWriter, Statement};

/// One warehouse, connected (lazily: nothing is dialled until the first call).
///
/// Every query a connector runs is read-only (a read-only transaction, or the
/// warehouse's closest equivalent), has a statement timeout, and stops when
/// [`QueryOptions::cancel`] fires or the returned stream is dropped.
#[async_trait::async_trait]
pub trait Connector: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> WarehouseKind;

    /// Connects and authenticates, checks that the database (and for Snowflake and
    /// Databricks the warehouse) exists, and, when `schema` is given, that the user may
    /// use it. The error says which of these failed.
    async fn test(&self, schema: Option<&str>) -> Result<TestReport, WarehouseError>;

    /// The columns of a table or view, in ordinal order.
    async fn describe_relation(
        &self,
        relation: &RelationRef,
    ) -> Result<Vec<Column>, WarehouseError>;

    /// The columns a query would return, without reading its rows.
    async fn describe_query(&self, query: &ReadOnlyQuery) -> Result<Vec<Column>, WarehouseError>;

    /// Streams the rows of one read-only query as record batches of at most
    /// `options.batch_rows` rows. The schema is known before the first batch.
    async fn stream(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
    ) -> Result<RowStream, WarehouseError>;

    /// [`Connector::stream`], plus whether the warehouse proves, before any row is read,
    /// that no two rows of the result share a value of the `key` columns (named as in
    /// the result). Connectors that cannot prove it answer [`KeyProof::Unproven`].
    async fn stream_proving_key(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
        key: &[String],
    ) -> Result<(RowStream, KeyProof), WarehouseError> {
        let _ = key;
        Ok((self.stream(query, options).await?, KeyProof::Unproven))
    }

    /// The first row of a small query whose columns are all integers (counts).
    /// A NULL cell is `None`.
    async fn scalar_row(
        &self,
        query: &ReadOnlyQuery,
        options: &QueryOptions,
    ) -> Result<Vec<Option<i64>>, WarehouseError>;
}
