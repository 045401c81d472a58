//! String cells → typed Arrow arrays.
//!
//! Snowflake (jsonv2), BigQuery (`TableCell.v`) and Databricks (`JSON_ARRAY`) all send
//! every value as a JSON string (or `null`), each with its own spelling of dates,
//! timestamps and bytes. A connector describes each column once — its [`Column`] (whose
//! `data_type` is the canonical Arrow type from [`crate::types`]) and the [`CellFormat`]
//! its API documents — and pushes cells into a [`CellColumnBuilder`] (or a whole row into
//! a [`CellBatchBuilder`]). Parsing is strict: a cell that is not the documented spelling
//! is [`WarehouseError::Protocol`] naming the column and row (never the value, which is
//! customer data), not a silent NULL or a lossy cast.
//!
//! Numbers are parsed exactly: decimals never pass through `f64`; a decimal with more
//! fractional digits than the column's scale is an error unless the extra digits are
//! zeros. Timestamps and times keep microseconds; digits beyond the sixth fractional
//! digit (Snowflake sends nine) are truncated toward zero.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use base64::Engine;

use crate::types::LOGICAL_TYPE_KEY;
use crate::{Column, WarehouseError};

/// How one column's cells are spelled on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellFormat {
    /// Any text, taken as is → `Utf8`.
    Text,
    /// JSON text (VARIANT, OBJECT, STRUCT ...) → `Utf8`, field metadata `backflow.logical=json`.
    Json,
    /// `-42`; a fraction of zeros (`"1.0"`, `"7.000"`) is accepted → `Int64`.
    Int,
    /// `-123.45`, optional exponent (`1.2E3`) → `Decimal128(p, s)` of the column.
    Decimal,
    /// `1.5`, `1e-3`, `NaN`, `inf`, `-inf`, `Infinity`, `-Infinity` (any case) → `Float64`.
    Float,
    /// `true` / `false` (any case) → `Boolean`.
    Bool,
    /// Days since 1970-01-01 (`"18262"`, Snowflake DATE) → `Date32`.
    DateEpochDays,
    /// `YYYY-MM-DD` (BigQuery, Databricks) → `Date32`.
    DateIso,
    /// Seconds since the epoch with a fraction (`"1616173619.000000000"`, Snowflake
    /// TIMESTAMP_NTZ / TIMESTAMP_LTZ; also BigQuery's default float seconds, exponent
    /// allowed) → `Timestamp(µs, _)`.
    EpochSeconds,
    /// Seconds since the epoch (UTC instant), a space, then the offset in minutes + 1440
    /// (`"1616173619.000000000 1500"` is +01:00, Snowflake TIMESTAMP_TZ). The instant is
    /// kept, the offset checked and dropped → `Timestamp(µs, Some("UTC"))`.
    EpochSecondsWithOffset,
    /// Microseconds since the epoch (`"1706704496789000"`, BigQuery with
    /// `useInt64Timestamp`) → `Timestamp(µs, _)`.
    EpochMicros,
    /// `YYYY-MM-DD[T| ]HH:MM:SS[.f…]` with an optional `Z` / `±HH[:MM]` offset (converted
    /// to UTC) → `Timestamp(µs, _)`.
    TimestampIso,
    /// Seconds since midnight with a fraction (`"82919.000000000"`, Snowflake TIME)
    /// → `Time64(µs)`.
    TimeSeconds,
    /// `HH:MM:SS[.f…]` → `Time64(µs)`.
    TimeIso,
    /// Hexadecimal, either case (`"48454C4C4F"`, Snowflake BINARY) → `Binary`.
    BinaryHex,
    /// Standard base64, padded (`"aGVsbG8="`, BigQuery BYTES) → `Binary`.
    BinaryBase64,
}

impl CellFormat {
    /// The ISO / plain-text spelling for a canonical Arrow type (what BigQuery and
    /// Databricks mostly send). `Binary` defaults to base64.
    pub fn iso_for(data_type: &DataType) -> Option<Self> {
        Some(match data_type {
            DataType::Utf8 => Self::Text,
            DataType::Int64 => Self::Int,
            DataType::Decimal128(_, _) => Self::Decimal,
            DataType::Float64 => Self::Float,
            DataType::Boolean => Self::Bool,
            DataType::Date32 => Self::DateIso,
            DataType::Timestamp(TimeUnit::Microsecond, _) => Self::TimestampIso,
            DataType::Time64(TimeUnit::Microsecond) => Self::TimeIso,
            DataType::Binary => Self::BinaryBase64,
            _ => return None,
        })
    }

    fn fits(self, data_type: &DataType) -> bool {
        use CellFormat as F;
        match self {
            F::Text | F::Json => *data_type == DataType::Utf8,
            F::Int => *data_type == DataType::Int64,
            F::Decimal => matches!(data_type, DataType::Decimal128(_, _)),
            F::Float => *data_type == DataType::Float64,
            F::Bool => *data_type == DataType::Boolean,
            F::DateEpochDays | F::DateIso => *data_type == DataType::Date32,
            F::EpochSeconds | F::EpochSecondsWithOffset | F::EpochMicros | F::TimestampIso => {
                matches!(data_type, DataType::Timestamp(TimeUnit::Microsecond, _))
            }
            F::TimeSeconds | F::TimeIso => *data_type == DataType::Time64(TimeUnit::Microsecond),
            F::BinaryHex | F::BinaryBase64 => *data_type == DataType::Binary,
        }
    }

    fn describe(self) -> &'static str {
        use CellFormat as F;
        match self {
            F::Text => "text",
            F::Json => "json text",
            F::Int => "a 64-bit integer",
            F::Decimal => "a decimal number within the column's precision and scale",
            F::Float => "a floating-point number",
            F::Bool => "true or false",
            F::DateEpochDays => "days since the epoch",
            F::DateIso => "a date (yyyy-mm-dd)",
            F::EpochSeconds => "seconds since the epoch",
            F::EpochSecondsWithOffset => "seconds since the epoch and an offset",
            F::EpochMicros => "microseconds since the epoch",
            F::TimestampIso => "a timestamp (yyyy-mm-ddthh:mm:ss[.f][offset])",
            F::TimeSeconds => "seconds since midnight",
            F::TimeIso => "a time (hh:mm:ss[.f])",
            F::BinaryHex => "hexadecimal bytes",
            F::BinaryBase64 => "base64 bytes",
        }
    }
}

/// The Arrow field of a column: its name, type and nullability, plus
/// `backflow.logical=json` for [`CellFormat::Json`].
pub fn field(column: &Column, format: CellFormat) -> Field {
    let field = Field::new(&column.name, column.data_type.clone(), column.nullable);
    if format == CellFormat::Json {
        field.with_metadata(HashMap::from([(
            LOGICAL_TYPE_KEY.to_string(),
            "json".to_string(),
        )]))
    } else {
        field
    }
}

enum Inner {
    Text(StringBuilder),
    Int(Int64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
    Binary(BinaryBuilder),
}

/// Builds one Arrow array from string cells. `finish` hands out the array so far and
/// starts empty again, so one builder serves every batch of a stream.
pub struct CellColumnBuilder {
    name: String,
    format: CellFormat,
    inner: Inner,
    /// Rows pushed since creation (for error messages, across batches).
    row: u64,
}

impl std::fmt::Debug for CellColumnBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CellColumnBuilder")
            .field("name", &self.name)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl CellColumnBuilder {
    /// A builder reading the ISO / plain spelling of the column's type
    /// ([`CellFormat::iso_for`]).
    pub fn new(column: &Column) -> Result<Self, WarehouseError> {
        let format = CellFormat::iso_for(&column.data_type).ok_or_else(|| unsupported(column))?;
        Self::with_format(column, format)
    }

    /// A builder reading `format`, which must produce the column's Arrow type.
    pub fn with_format(column: &Column, format: CellFormat) -> Result<Self, WarehouseError> {
        if !format.fits(&column.data_type) {
            return Err(unsupported(column));
        }
        let dt = column.data_type.clone();
        let inner = match &dt {
            DataType::Utf8 => Inner::Text(StringBuilder::new()),
            DataType::Int64 => Inner::Int(Int64Builder::new()),
            DataType::Decimal128(p, s) => {
                Inner::Decimal(Decimal128Builder::new().with_data_type(dt.clone()), *p, *s)
            }
            DataType::Float64 => Inner::Float(Float64Builder::new()),
            DataType::Boolean => Inner::Bool(BooleanBuilder::new()),
            DataType::Date32 => Inner::Date(Date32Builder::new()),
            DataType::Timestamp(_, _) => {
                Inner::Timestamp(TimestampMicrosecondBuilder::new().with_data_type(dt.clone()))
            }
            DataType::Time64(_) => Inner::Time(Time64MicrosecondBuilder::new()),
            DataType::Binary => Inner::Binary(BinaryBuilder::new()),
            _ => return Err(unsupported(column)),
        };
        Ok(Self {
            name: column.name.clone(),
            format,
            inner,
            row: 0,
        })
    }

    /// Appends one cell (`None` is SQL NULL).
    pub fn push(&mut self, cell: Option<&str>) -> Result<(), WarehouseError> {
        let row = self.row;
        self.row += 1;
        let Some(cell) = cell else {
            self.push_null();
            return Ok(());
        };
        let parsed = self.push_value(cell);
        parsed.ok_or_else(|| WarehouseError::Protocol {
            detail: format!(
                "column {:?} row {}: the cell is not {}",
                self.name,
                row + 1,
                self.format.describe()
            ),
        })
    }

    fn push_null(&mut self) {
        match &mut self.inner {
            Inner::Text(b) => b.append_null(),
            Inner::Int(b) => b.append_null(),
            Inner::Decimal(b, _, _) => b.append_null(),
            Inner::Float(b) => b.append_null(),
            Inner::Bool(b) => b.append_null(),
            Inner::Date(b) => b.append_null(),
            Inner::Timestamp(b) => b.append_null(),
            Inner::Time(b) => b.append_null(),
            Inner::Binary(b) => b.append_null(),
        }
    }

    /// `None` when the cell does not parse (nothing appended then).
    fn push_value(&mut self, cell: &str) -> Option<()> {
        use CellFormat as F;
        match (&mut self.inner, self.format) {
            (Inner::Text(b), _) => b.append_value(cell),
            (Inner::Int(b), _) => b.append_value(parse::int(cell)?),
            (Inner::Decimal(b, p, s), _) => b.append_value(parse::decimal(cell, *p, *s)?),
            (Inner::Float(b), _) => b.append_value(parse::float(cell)?),
            (Inner::Bool(b), _) => b.append_value(parse::boolean(cell)?),
            (Inner::Date(b), F::DateEpochDays) => b.append_value(cell.parse().ok()?),
            (Inner::Date(b), _) => b.append_value(parse::iso_date(cell)?),
            (Inner::Timestamp(b), F::EpochSeconds) => b.append_value(parse::seconds_micros(cell)?),
            (Inner::Timestamp(b), F::EpochSecondsWithOffset) => {
                b.append_value(parse::seconds_with_offset_micros(cell)?)
            }
            (Inner::Timestamp(b), F::EpochMicros) => b.append_value(parse::int(cell)?),
            (Inner::Timestamp(b), _) => b.append_value(parse::iso_timestamp_micros(cell)?),
            (Inner::Time(b), F::TimeSeconds) => b.append_value(parse::time_seconds_micros(cell)?),
            (Inner::Time(b), _) => b.append_value(parse::iso_time_micros(cell)?),
            (Inner::Binary(b), F::BinaryHex) => b.append_value(hex::decode(cell).ok()?),
            (Inner::Binary(b), _) => b.append_value(
                base64::engine::general_purpose::STANDARD
                    .decode(cell)
                    .ok()?,
            ),
        }
        Some(())
    }

    /// Cells pushed since the last `finish`.
    pub fn len(&self) -> usize {
        use arrow_array::builder::ArrayBuilder;
        match &self.inner {
            Inner::Text(b) => b.len(),
            Inner::Int(b) => b.len(),
            Inner::Decimal(b, _, _) => b.len(),
            Inner::Float(b) => b.len(),
            Inner::Bool(b) => b.len(),
            Inner::Date(b) => b.len(),
            Inner::Timestamp(b) => b.len(),
            Inner::Time(b) => b.len(),
            Inner::Binary(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The array of the cells pushed since the last `finish`.
    pub fn finish(&mut self) -> ArrayRef {
        match &mut self.inner {
            Inner::Text(b) => Arc::new(b.finish()),
            Inner::Int(b) => Arc::new(b.finish()),
            Inner::Decimal(b, _, _) => Arc::new(b.finish()),
            Inner::Float(b) => Arc::new(b.finish()),
            Inner::Bool(b) => Arc::new(b.finish()),
            Inner::Date(b) => Arc::new(b.finish()),
            Inner::Timestamp(b) => Arc::new(b.finish()),
            Inner::Time(b) => Arc::new(b.finish()),
            Inner::Binary(b) => Arc::new(b.finish()),
        }
    }
}

fn unsupported(column: &Column) -> WarehouseError {
    WarehouseError::UnsupportedType {
        column: column.name.clone(),
        warehouse_type: column.warehouse_type.clone(),
    }
}

/// Rows of string cells → record batches, one [`CellColumnBuilder`] per column.
#[derive(Debug)]
pub struct CellBatchBuilder {
    schema: SchemaRef,
    columns: Vec<CellColumnBuilder>,
    rows: usize,
}

impl CellBatchBuilder {
    pub fn new(columns: &[(Column, CellFormat)]) -> Result<Self, WarehouseError> {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(c, f)| field(c, *f))
                .collect::<Vec<_>>(),
        ));
        let columns = columns
            .iter()
            .map(|(c, f)| CellColumnBuilder::with_format(c, *f))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            schema,
            columns,
            rows: 0,
        })
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Appends one row; it must have exactly one cell per column. After an error the
    /// columns may be uneven: drop the builder (the stream has failed anyway).
    pub fn push_row<S: AsRef<str>>(&mut self, row: &[Option<S>]) -> Result<(), WarehouseError> {
        if row.len() != self.columns.len() {
            return Err(WarehouseError::Protocol {
                detail: format!(
                    "a row has {} cells, the result has {} columns",
                    row.len(),
                    self.columns.len()
                ),
            });
        }
        for (builder, cell) in self.columns.iter_mut().zip(row) {
            builder.push(cell.as_ref().map(AsRef::as_ref))?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Rows pushed since the last `finish`.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch of the rows pushed since the last `finish`.
    pub fn finish(&mut self) -> Result<RecordBatch, WarehouseError> {
        let rows = std::mem::take(&mut self.rows);
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(|c| c.finish()).collect();
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options).map_err(|e| {
            WarehouseError::Protocol {
                detail: format!("cannot assemble a record batch: {e}"),
            }
        })
    }
}

/// The cell parsers, each `None` when the text is not its spelling.
pub mod parse {
    use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike};

    const MICROS_PER_DAY: i64 = 86_400_000_000;

    /// An integer, optionally with a fraction of zeros.
    pub fn int(s: &str) -> Option<i64> {
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        if !frac.bytes().all(|b| b == b'0') || whole.is_empty() || whole == "-" || whole == "+" {
            return None;
        }
        whole.parse().ok()
    }

    /// `[+-]digits[.digits][e[+-]digits]` scaled by `10^scale`. With `truncate`, digits
    /// beyond the scale are dropped (toward zero); without, they must be zeros.
    pub fn scaled(s: &str, scale: i32, truncate: bool) -> Option<i128> {
        let (mantissa, exponent) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
            None => (s, 0),
        };
        let (negative, unsigned) = match mantissa.as_bytes().first()? {
            b'-' => (true, &mantissa[1..]),
            b'+' => (false, &mantissa[1..]),
            _ => (false, mantissa),
        };
        let (whole, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        if (whole.is_empty() && frac.is_empty())
            || !whole
                .bytes()
                .chain(frac.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        // value = digits × 10^(exponent − frac.len()); we want value × 10^scale.
        let shift = scale
            .checked_add(exponent)?
            .checked_sub(i32::try_from(frac.len()).ok()?)?;
        let digits = whole.bytes().chain(frac.bytes());
        let keep = if shift >= 0 {
            whole.len() + frac.len()
        } else {
            let drop = usize::try_from(-shift).ok()?;
            let total = whole.len() + frac.len();
            if drop > total {
                // Every digit is below the scale.
                let all_zero = whole.bytes().chain(frac.bytes()).all(|b| b == b'0');
                return (truncate || all_zero).then_some(0);
            }
            let dropped = whole.bytes().chain(frac.bytes()).skip(total - drop);
            if !truncate && !dropped.clone().all(|b| b == b'0') {
                return None;
            }
            total - drop
        };
        let mut value: i128 = 0;
        for b in digits.take(keep) {
            value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        if shift > 0 {
            value = value.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?;
        }
        Some(if negative { -value } else { value })
    }

    /// A decimal of at most `precision` digits at `scale`.
    pub fn decimal(s: &str, precision: u8, scale: i8) -> Option<i128> {
        let value = scaled(s, i32::from(scale), false)?;
        let max = 10i128.checked_pow(u32::from(precision))?;
        (value.abs() < max).then_some(value)
    }

    pub fn float(s: &str) -> Option<f64> {
        // Rust accepts inf, infinity and nan in any case, with a sign.
        s.parse().ok()
    }

    pub fn boolean(s: &str) -> Option<bool> {
        if s.eq_ignore_ascii_case("true") {
            Some(true)
        } else if s.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        }
    }

    fn epoch() -> NaiveDate {
        NaiveDate::default() // 1970-01-01
    }

    /// `YYYY-MM-DD` as days since the epoch.
    pub fn iso_date(s: &str) -> Option<i32> {
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        i32::try_from(date.signed_duration_since(epoch()).num_days()).ok()
    }

    /// Seconds with a fraction as microseconds (sub-microsecond digits truncated).
    pub fn seconds_micros(s: &str) -> Option<i64> {
        i64::try_from(scaled(s, 6, true)?).ok()
    }

    /// Snowflake TIMESTAMP_TZ: `seconds offset`, offset = minutes + 1440 in 0..=2880.
    pub fn seconds_with_offset_micros(s: &str) -> Option<i64> {
        let (seconds, offset) = s.split_once(' ')?;
        let offset: u16 = offset.parse().ok()?;
        if offset > 2880 {
            return None;
        }
        seconds_micros(seconds)
    }

    /// Seconds since midnight as microseconds, within one day.
    pub fn time_seconds_micros(s: &str) -> Option<i64> {
        let micros = seconds_micros(s)?;
        (0..MICROS_PER_DAY).contains(&micros).then_some(micros)
    }

    /// ISO date-time, optional offset, as UTC microseconds since the epoch.
    pub fn iso_timestamp_micros(s: &str) -> Option<i64> {
        let (local, offset_seconds) = split_offset(s)?;
        let mut normalized = local.to_string();
        if normalized.len() > 10 && normalized.as_bytes()[10] == b' ' {
            normalized.replace_range(10..11, "T");
        }
        let dt = NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
        let micros = dt.and_utc().timestamp_micros();
        micros.checked_sub(i64::from(offset_seconds).checked_mul(1_000_000)?)
    }

    /// Splits a trailing `Z`, `+HH:MM`, `+HHMM` or `+HH` (or `-`) off a date-time.
    fn split_offset(s: &str) -> Option<(&str, i32)> {
        if let Some(local) = s.strip_suffix(['Z', 'z']) {
            return Some((local, 0));
        }
        // The sign of an offset comes after the time (past "YYYY-MM-DDTHH").
        let Some(at) = s
            .get(13..)
            .and_then(|t| t.rfind(['+', '-']))
            .map(|i| i + 13)
        else {
            return Some((s, 0));
        };
        let sign = if s.as_bytes()[at] == b'-' { -1 } else { 1 };
        let digits: String = s[at + 1..].chars().filter(|c| *c != ':').collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (hours, minutes) = match digits.len() {
            2 => (digits.parse::<i32>().ok()?, 0),
            4 => (
                digits[..2].parse::<i32>().ok()?,
                digits[2..].parse::<i32>().ok()?,
            ),
            _ => return None,
        };
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some((&s[..at], sign * (hours * 3600 + minutes * 60)))
    }

    /// `HH:MM:SS[.f]` as microseconds since midnight.
    pub fn iso_time_micros(s: &str) -> Option<i64> {
        let t = NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok()?;
        let nanos = t.nanosecond().min(999_999_999);
        Some(i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(nanos / 1000))
    }
}

#[cfg(test)]
mod tests;
