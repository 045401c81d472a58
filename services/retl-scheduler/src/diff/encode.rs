//! The canonical, typed byte encoding of a row's columns, and the XXH3 hashes over it.
//!
//! A sync decides what changed by comparing hashes, so the same value must always encode
//! to the same bytes (whatever the batch size, batch boundaries or warehouse), and values
//! that a destination would see differently must encode differently. Each value is one
//! type tag byte followed by its payload; the code is prefix-free, so the concatenation of
//! a row's values (in the order of the columns given) is injective and decodable:
//!
//! | Arrow type (see `backflow_warehouse::types`) | tag | payload |
//! |---|---|---|
//! | any type, NULL | `0x00` | none (a NULL is a NULL whatever the column type) |
//! | `Boolean` | `0x01` | 1 byte, 0 or 1 |
//! | `Int64` | `0x02` | 8 bytes, i64 little-endian |
//! | `Float64` | `0x03` | 8 bytes, IEEE-754 bits little-endian; `-0.0` as `+0.0`, every NaN as `0x7ff8000000000000` |
//! | `Decimal128(p, s)` | `0x04` | 16 bytes unscaled i128 little-endian, 1 byte scale `s` (precision is not encoded: `numeric(10,2)` and `numeric(12,2)` holding 1.50 are equal; `1.5` at scale 1 and `1.50` at scale 2 differ) |
//! | `Utf8` / `LargeUtf8` | `0x05` | u32 little-endian byte length, UTF-8 bytes (empty string: `05 00000000`, distinct from NULL) |
//! | `Utf8` with field metadata `backflow.logical = json` | `0x06` | as text (JSON text is not re-normalised) |
//! | `Date32` | `0x07` | 4 bytes, days since 1970-01-01, i32 little-endian |
//! | `Timestamp(unit, None)` | `0x08` | 8 bytes, microseconds, i64 little-endian (other units converted: s, ms multiplied; ns floored) |
//! | `Timestamp(unit, Some(tz))` | `0x09` | 8 bytes, microseconds since the epoch in UTC (Arrow stores instants in UTC whatever `tz` says) |
//! | `Time64(µs | ns)` | `0x0a` | 8 bytes, microseconds since midnight |
//! | `Binary` / `LargeBinary` | `0x0b` | u32 little-endian byte length, bytes |
//!
//! Because the type is in the tag, `1` (Int64) and `1.0` (Float64) differ, as do text and
//! JSON holding the same characters. The key hash is `xxh3_64` over the key columns'
//! encoding; the row hash is `xxh3_64` over the mapped columns' encoding, in mapping order,
//! with its top bit cleared (the state keeps a flag there, see [`super::state`]). Any other
//! Arrow type is [`DiffError::UnsupportedType`], never a silent cast.
//!
//! Encoding works column by column: one pass adds up each row's encoded length, a second
//! writes every column's values into one buffer for the whole batch, then each row's slice
//! is hashed in one shot.

use super::error::DiffError;
use super::state::ROW_HASH_MASK;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, TimeUnit};
use xxhash_rust::xxh3::xxh3_64;

pub const TAG_NULL: u8 = 0x00;
pub const TAG_BOOL: u8 = 0x01;
pub const TAG_INT: u8 = 0x02;
pub const TAG_FLOAT: u8 = 0x03;
pub const TAG_DECIMAL: u8 = 0x04;
pub const TAG_TEXT: u8 = 0x05;
pub const TAG_JSON: u8 = 0x06;
pub const TAG_DATE: u8 = 0x07;
pub const TAG_TIMESTAMP: u8 = 0x08;
pub const TAG_TIMESTAMP_UTC: u8 = 0x09;
pub const TAG_TIME: u8 = 0x0a;
pub const TAG_BINARY: u8 = 0x0b;

/// Field metadata key naming a logical type carried in a physical one (same key as the
/// warehouse crate's `LOGICAL_TYPE_KEY`; this crate does not depend on it).
pub const LOGICAL_TYPE_KEY: &str = "backflow.logical";

/// The bit pattern every NaN encodes as.
const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// How a microsecond count is derived from a stored time value.
#[derive(Debug, Clone, Copy)]
enum ToMicros {
    Mul(i64),
    Same,
    Div(i64),
}

impl ToMicros {
    fn apply(self, value: i64) -> i64 {
        match self {
            ToMicros::Mul(factor) => value.saturating_mul(factor),
            ToMicros::Same => value,
            ToMicros::Div(divisor) => value.div_euclid(divisor),
        }
    }
}

/// One column of a batch, downcast once, ready to encode.
enum View<'a> {
    Bool(&'a arrow_array::BooleanArray),
    Int(&'a [i64]),
    Float(&'a [f64]),
    Decimal(&'a [i128], i8),
    Text(&'a [i32], &'a [u8], u8),
    LargeText(&'a [i64], &'a [u8], u8),
    Date(&'a [i32]),
    Micros(&'a [i64], ToMicros, u8),
    Binary(&'a [i32], &'a [u8]),
    LargeBinary(&'a [i64], &'a [u8]),
}

struct Column<'a> {
    view: View<'a>,
    nulls: Option<&'a NullBuffer>,
}

impl<'a> Column<'a> {
    fn new(field: &Field, array: &'a dyn Array) -> Result<Self, DiffError> {
        let unsupported = || DiffError::UnsupportedType {
            column: field.name().clone(),
            data_type: field.data_type().to_string(),
        };
        let text_tag = match field.metadata().get(LOGICAL_TYPE_KEY) {
            Some(logical) if logical == "json" => TAG_JSON,
            _ => TAG_TEXT,
        };
        let view = match array.data_type() {
            DataType::Boolean => View::Bool(array.as_boolean()),
            DataType::Int64 => View::Int(array.as_primitive::<Int64Type>().values()),
            DataType::Float64 => View::Float(array.as_primitive::<Float64Type>().values()),
            DataType::Decimal128(_, scale) => {
                View::Decimal(array.as_primitive::<Decimal128Type>().values(), *scale)
            }
            DataType::Utf8 => {
                let strings = array.as_string::<i32>();
                View::Text(strings.value_offsets(), strings.value_data(), text_tag)
            }
            DataType::LargeUtf8 => {
                let strings = array.as_string::<i64>();
                View::LargeText(strings.value_offsets(), strings.value_data(), text_tag)
            }
            DataType::Date32 => View::Date(array.as_primitive::<Date32Type>().values()),
            DataType::Timestamp(unit, tz) => {
                let tag = if tz.is_some() {
                    TAG_TIMESTAMP_UTC
                } else {
                    TAG_TIMESTAMP
                };
                let (values, scale) = match unit {
                    TimeUnit::Second => (
                        array.as_primitive::<TimestampSecondType>().values(),
                        ToMicros::Mul(1_000_000),
                    ),
                    TimeUnit::Millisecond => (
                        array.as_primitive::<TimestampMillisecondType>().values(),
                        ToMicros::Mul(1_000),
                    ),
                    TimeUnit::Microsecond => (
                        array.as_primitive::<TimestampMicrosecondType>().values(),
                        ToMicros::Same,
                    ),
                    TimeUnit::Nanosecond => (
                        array.as_primitive::<TimestampNanosecondType>().values(),
                        ToMicros::Div(1_000),
                    ),
                };
                View::Micros(values, scale, tag)
            }
            DataType::Time64(TimeUnit::Microsecond) => View::Micros(
                array.as_primitive::<Time64MicrosecondType>().values(),
                ToMicros::Same,
                TAG_TIME,
            ),
            DataType::Time64(TimeUnit::Nanosecond) => View::Micros(
                array.as_primitive::<Time64NanosecondType>().values(),
                ToMicros::Div(1_000),
                TAG_TIME,
            ),
            DataType::Binary => {
                let bytes = array.as_binary::<i32>();
                View::Binary(bytes.value_offsets(), bytes.value_data())
            }
            DataType::LargeBinary => {
                let bytes = array.as_binary::<i64>();
                View::LargeBinary(bytes.value_offsets(), bytes.value_data())
            }
            _ => return Err(unsupported()),
        };
        if let View::LargeText(offsets, ..) | View::LargeBinary(offsets, _) = &view {
            check_lengths(field, offsets.windows(2).map(|w| w[1] - w[0]))?;
        }
        Ok(Self {
            view,
            nulls: array.nulls(),
        })
    }

    fn is_null(&self, row: usize) -> bool {
        self.nulls.is_some_and(|nulls| nulls.is_null(row))
    }

    /// Payload length (after the tag) of a non-null value.
    fn payload_len(&self, row: usize) -> usize {
        match &self.view {
            View::Bool(_) => 1,
            View::Int(_) | View::Float(_) | View::Micros(..) => 8,
            View::Decimal(..) => 17,
            View::Date(_) => 4,
            View::Text(offsets, ..) | View::Binary(offsets, _) => {
                4 + (offsets[row + 1] - offsets[row]) as usize
            }
            View::LargeText(offsets, ..) | View::LargeBinary(offsets, _) => {
                4 + (offsets[row + 1] - offsets[row]) as usize
            }
        }
    }

    /// Writes the value of `row` (tag and payload) at the start of `out`; returns its length.
    fn write(&self, row: usize, out: &mut [u8]) -> usize {
        if self.is_null(row) {
            out[0] = TAG_NULL;
            return 1;
        }
        match &self.view {
            View::Bool(values) => {
                out[0] = TAG_BOOL;
                out[1] = u8::from(values.value(row));
                2
            }
            View::Int(values) => put_fixed(out, TAG_INT, &values[row].to_le_bytes()),
            View::Float(values) => {
                put_fixed(out, TAG_FLOAT, &canonical_float(values[row]).to_le_bytes())
            }
            View::Decimal(values, scale) => {
                out[0] = TAG_DECIMAL;
                out[1..17].copy_from_slice(&values[row].to_le_bytes());
                out[17] = scale.to_le_bytes()[0];
                18
            }
            View::Date(values) => put_fixed(out, TAG_DATE, &values[row].to_le_bytes()),
            View::Micros(values, scale, tag) => {
                put_fixed(out, *tag, &scale.apply(values[row]).to_le_bytes())
            }
            View::Text(offsets, data, tag) => put_var(
                out,
                *tag,
                &data[offsets[row] as usize..offsets[row + 1] as usize],
            ),
            View::LargeText(offsets, data, tag) => put_var(
                out,
                *tag,
                &data[offsets[row] as usize..offsets[row + 1] as usize],
            ),
            View::Binary(offsets, data) => put_var(
                out,
                TAG_BINARY,
                &data[offsets[row] as usize..offsets[row + 1] as usize],
            ),
            View::LargeBinary(offsets, data) => put_var(
                out,
                TAG_BINARY,
                &data[offsets[row] as usize..offsets[row + 1] as usize],
            ),
        }
    }
}

/// A value longer than u32 bytes cannot be length-prefixed; no warehouse sends one in a row.
fn check_lengths(field: &Field, mut lengths: impl Iterator<Item = i64>) -> Result<(), DiffError> {
    if lengths.any(|len| len > i64::from(u32::MAX)) {
        return Err(DiffError::ValueTooLong {
            column: field.name().clone(),
        });
    }
    Ok(())
}

fn canonical_float(value: f64) -> u64 {
    if value.is_nan() {
        CANONICAL_NAN
    } else if value == 0.0 {
        0
    } else {
        value.to_bits()
    }
}

fn put_fixed(out: &mut [u8], tag: u8, payload: &[u8]) -> usize {
    out[0] = tag;
    out[1..=payload.len()].copy_from_slice(payload);
    1 + payload.len()
}

fn put_var(out: &mut [u8], tag: u8, payload: &[u8]) -> usize {
    out[0] = tag;
    // Lengths were checked to fit in u32 when the column was opened.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out[1..5].copy_from_slice(&len.to_le_bytes());
    out[5..5 + payload.len()].copy_from_slice(payload);
    5 + payload.len()
}

/// Encodes chosen columns of whole batches into one reusable buffer, row after row.
#[derive(Debug, Default)]
pub struct RowEncoder {
    buf: Vec<u8>,
    /// `starts[r]..starts[r + 1]` is row `r`'s encoding.
    starts: Vec<usize>,
}

impl RowEncoder {
    /// Encodes `columns` (indices into `batch`, in this order) of every row of `batch`.
    pub fn encode(&mut self, batch: &RecordBatch, columns: &[usize]) -> Result<(), DiffError> {
        let rows = batch.num_rows();
        let schema = batch.schema();
        let views = columns
            .iter()
            .map(|&index| Column::new(schema.field(index), batch.column(index).as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.starts.clear();
        self.starts.resize(rows + 1, 0);
        for column in &views {
            let sizes = &mut self.starts[1..];
            match column.view {
                View::Text(..) | View::LargeText(..) | View::Binary(..) | View::LargeBinary(..) => {
                    for (row, size) in sizes.iter_mut().enumerate() {
                        *size += 1 + if column.is_null(row) {
                            0
                        } else {
                            column.payload_len(row)
                        };
                    }
                }
                _ => {
                    let width = if rows == 0 { 0 } else { column.payload_len(0) };
                    for (row, size) in sizes.iter_mut().enumerate() {
                        *size += 1 + if column.is_null(row) { 0 } else { width };
                    }
                }
            }
        }
        for row in 0..rows {
            self.starts[row + 1] += self.starts[row];
        }
        self.buf.clear();
        self.buf.resize(self.starts[rows], 0);
        let mut cursors: Vec<usize> = self.starts[..rows].to_vec();
        for column in &views {
            for (row, cursor) in cursors.iter_mut().enumerate() {
                *cursor += column.write(row, &mut self.buf[*cursor..]);
            }
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// The encoding of row `row` of the last batch encoded.
    pub fn row(&self, row: usize) -> &[u8] {
        &self.buf[self.starts[row]..self.starts[row + 1]]
    }
}

/// Which columns identify a row and which are sent, by name, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSpec {
    pub key_columns: Vec<String>,
    pub mapped_columns: Vec<String>,
}

/// A row whose key cannot identify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NullKey {
    pub row: usize,
    /// Index into [`RowSpec::key_columns`] of the first NULL key column.
    pub key_column: usize,
}

/// The hashes of one batch, row by row.
#[derive(Debug, Default)]
pub struct BatchHashes {
    /// Key hash per row (0 where the key has a NULL; those rows are in `null_keys`).
    pub keys: Vec<u64>,
    /// Row hash per row (63 bits, see [`ROW_HASH_MASK`]).
    pub rows: Vec<u64>,
    pub null_keys: Vec<NullKey>,
}

/// Hashes keys and mapped columns of batches, reusing its buffers.
#[derive(Debug)]
pub struct RowHasher {
    spec: RowSpec,
    encoder: RowEncoder,
}

impl RowHasher {
    pub fn new(spec: RowSpec) -> Result<Self, DiffError> {
        if spec.key_columns.is_empty() {
            return Err(DiffError::NoKeyColumns);
        }
        Ok(Self {
            spec,
            encoder: RowEncoder::default(),
        })
    }

    pub fn spec(&self) -> &RowSpec {
        &self.spec
    }

    /// Key hashes and NULL keys only (what selecting rows for delivery needs again).
    pub fn hash_keys(
        &mut self,
        batch: &RecordBatch,
        out: &mut BatchHashes,
    ) -> Result<(), DiffError> {
        let key_indices = resolve(batch, &self.spec.key_columns)?;
        out.keys.clear();
        out.null_keys.clear();
        for (row, key_column) in null_key_rows(batch, &key_indices) {
            out.null_keys.push(NullKey { row, key_column });
        }
        self.encoder.encode(batch, &key_indices)?;
        out.keys
            .extend((0..batch.num_rows()).map(|row| xxh3_64(self.encoder.row(row))));
        for null in &out.null_keys {
            out.keys[null.row] = 0;
        }
        Ok(())
    }

    /// Key hash, row hash and NULL keys of every row of `batch`.
    pub fn hash_batch(
        &mut self,
        batch: &RecordBatch,
        out: &mut BatchHashes,
    ) -> Result<(), DiffError> {
        self.hash_keys(batch, out)?;
        let mapped = resolve(batch, &self.spec.mapped_columns)?;
        self.encoder.encode(batch, &mapped)?;
        out.rows.clear();
        out.rows.extend(
            (0..batch.num_rows()).map(|row| xxh3_64(self.encoder.row(row)) & ROW_HASH_MASK),
        );
        Ok(())
    }
}

fn resolve(batch: &RecordBatch, names: &[String]) -> Result<Vec<usize>, DiffError> {
    let schema = batch.schema();
    names
        .iter()
        .map(|name| {
            schema
                .index_of(name)
                .map_err(|_| DiffError::MissingColumn(name.clone()))
        })
        .collect()
}

/// Rows with a NULL in any key column, with the first such column.
fn null_key_rows(batch: &RecordBatch, key_indices: &[usize]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let columns: Vec<_> = key_indices
        .iter()
        .map(|&index| batch.column(index).logical_nulls())
        .collect();
    if columns.iter().all(Option::is_none) {
        return found;
    }
    for row in 0..batch.num_rows() {
        let first_null = columns
            .iter()
            .position(|nulls| nulls.as_ref().is_some_and(|n| n.is_null(row)));
        if let Some(key_column) = first_null {
            found.push((row, key_column));
        }
    }
    found
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;
