//! Amazon Redshift over the PostgreSQL wire protocol: the Postgres connector with
//! Redshift's differences (`../shared/fixtures/wire/redshift-postgres-wire.md`).
//!
//! - No `COPY ... TO STDOUT`: rows are read with `DECLARE backflow_c CURSOR FOR <query>`
//!   and `FETCH FORWARD 1000` (the single-node limit) inside `BEGIN READ ONLY`, decoded
//!   from the binary values the extended protocol returns; batches are assembled to
//!   `batch_rows` from several fetches. (Redshift materialises a cursor's result on the
//!   leader node; only one cursor is open per session, and each operation has its own.)
//! - `SET LOCAL statement_timeout` (counts WLM queueing too). A timeout and a user cancel
//!   share one message on Redshift, so `57014` is `Cancelled` only when Backflow cancelled.
//! - Relations are described from `svv_columns` (local, external and late-binding
//!   objects; `pg_table_def` only sees schemas on the search path).
//! - Column names come back lower case.
//!
//! | Redshift type | Arrow type | read as |
//! |---|---|---|
//! | BOOLEAN | `Boolean` | binary |
//! | SMALLINT, INTEGER, BIGINT | `Int64` | binary |
//! | REAL, DOUBLE PRECISION | `Float64` | binary |
//! | DECIMAL(p,s) | `Decimal128(p, s)` (p ≤ 38, which is Redshift's maximum) | binary |
//! | CHAR(n), VARCHAR(n) | `Utf8` | binary |
//! | SUPER | `Utf8` JSON, `backflow.logical = json` | `json_serialize(col)` |
//! | DATE | `Date32` | binary |
//! | TIMESTAMP | `Timestamp(µs, None)` | binary |
//! | TIMESTAMPTZ | `Timestamp(µs, "UTC")` | binary |
//! | TIME | `Time64(µs)` | binary |
//! | TIMETZ, GEOMETRY, GEOGRAPHY, HLLSKETCH, VARBYTE, intervals | `Utf8` | `col::varchar(max)` |
//!
//! Unverified against a real cluster (the wire doc lists no source): that Redshift
//! returns binary-format values for every type above when the extended protocol asks for
//! them, and that it accepts column alias lists on a subquery (`as backflow_q(a, b)`,
//! used only when a column is cast).

use std::sync::Arc;

use crate::postgres::{connect_with, DescribeSource, StreamMode};
use crate::{Connector, SecretMaterial, SourceSettings, WarehouseError, WarehouseKind};

/// Rows per `FETCH FORWARD` (single-node clusters allow at most 1000).
pub const FETCH_ROWS: usize = 1000;

pub(crate) fn connect(
    settings: &SourceSettings,
    secret: SecretMaterial,
) -> Result<Arc<dyn Connector>, WarehouseError> {
    connect_with(
        WarehouseKind::Redshift,
        settings,
        secret,
        DescribeSource::ColumnsView("svv_columns"),
        StreamMode::Cursor {
            fetch_rows: FETCH_ROWS,
        },
    )
}
