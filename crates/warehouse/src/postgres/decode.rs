//! Binary PostgreSQL values → Arrow builders, one batch at a time.
//!
//! Both streaming paths (binary `COPY` and cursor `FETCH` over the extended protocol)
//! deliver each value in PostgreSQL's binary send format, so one decoder per column
//! appends straight into a typed Arrow builder: no intermediate rows, no text parsing.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

use super::types::{ColumnPlan, Decoder};
use crate::WarehouseError;

/// Days from 1970-01-01 to PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

enum Builder {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Decimal(Decimal128Builder),
    Text(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
}

struct ColumnBuilder {
    decoder: Decoder,
    builder: Builder,
}

/// Accumulates rows of one query into record batches of the plan's schema.
pub(crate) struct BatchBuilder {
    schema: SchemaRef,
    names: Vec<String>,
    columns: Vec<ColumnBuilder>,
    rows: usize,
    capacity: usize,
}

impl BatchBuilder {
    pub fn new(plans: &[ColumnPlan], schema: SchemaRef, capacity: usize) -> Self {
        let columns = plans
            .iter()
            .map(|p| ColumnBuilder {
                decoder: p.decoder,
                builder: new_builder(p.decoder, capacity),
            })
            .collect();
        Self {
            schema,
            names: plans.iter().map(|p| p.column.name.clone()).collect(),
            columns,
            rows: 0,
            capacity,
        }
    }

    pub fn width(&self) -> usize {
        self.columns.len()
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends column `i` of the current row (`None` is NULL). Call for every column,
    /// then [`Self::end_row`].
    #[inline]
    pub fn append(&mut self, i: usize, value: Option<&[u8]>) -> Result<(), WarehouseError> {
        let col = &mut self.columns[i];
        match value {
            None => {
                append_null(&mut col.builder);
                Ok(())
            }
            Some(bytes) => append_value(col.decoder, &mut col.builder, bytes)
                .map_err(|reason| bad_value(&self.names[i], reason)),
        }
    }

    pub fn end_row(&mut self) {
        self.rows += 1;
    }

    /// The rows so far as one batch; the builder starts empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, WarehouseError> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| finish_builder(&mut c.builder, c.decoder))
            .collect();
        let batch = if arrays.is_empty() {
            RecordBatch::try_new_with_options(
                self.schema.clone(),
                arrays,
                &arrow_array::RecordBatchOptions::new().with_row_count(Some(self.rows)),
            )
        } else {
            RecordBatch::try_new(self.schema.clone(), arrays)
        }
        .map_err(|e| WarehouseError::Protocol {
            detail: format!("building a record batch: {e}"),
        })?;
        self.rows = 0;
        for c in &mut self.columns {
            c.builder = new_builder(c.decoder, self.capacity);
        }
        Ok(batch)
    }
}

fn bad_value(column: &str, reason: String) -> WarehouseError {
    WarehouseError::QueryFailed {
        code: None,
        message: format!("column {column:?}: {reason}"),
    }
}

fn new_builder(d: Decoder, n: usize) -> Builder {
    use Decoder as D;
    match d {
        D::Bool => Builder::Bool(BooleanBuilder::with_capacity(n)),
        D::Int2 | D::Int4 | D::Int8 | D::Oid => Builder::Int(Int64Builder::with_capacity(n)),
        D::Float4 | D::Float8 => Builder::Float(Float64Builder::with_capacity(n)),
        D::Decimal { .. } => Builder::Decimal(Decimal128Builder::with_capacity(n)),
        D::NumericText | D::Text | D::Jsonb | D::Uuid => {
            Builder::Text(StringBuilder::with_capacity(n, n * 16))
        }
        D::Date => Builder::Date(Date32Builder::with_capacity(n)),
        D::Timestamp | D::TimestampTz => {
            Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(n))
        }
        D::Time => Builder::Time(Time64MicrosecondBuilder::with_capacity(n)),
        D::Bytea => Builder::Binary(BinaryBuilder::with_capacity(n, n * 16)),
    }
}

fn finish_builder(b: &mut Builder, d: Decoder) -> ArrayRef {
    match b {
        Builder::Bool(b) => Arc::new(b.finish()),
        Builder::Int(b) => Arc::new(b.finish()),
        Builder::Float(b) => Arc::new(b.finish()),
        Builder::Decimal(b) => {
            let array = b.finish();
            match d {
                Decoder::Decimal { precision, scale } => Arc::new(
                    array
                        .clone()
                        .with_precision_and_scale(precision, scale)
                        .unwrap_or(array),
                ),
                _ => Arc::new(array),
            }
        }
        Builder::Text(b) => Arc::new(b.finish()),
        Builder::Binary(b) => Arc::new(b.finish()),
        Builder::Date(b) => Arc::new(b.finish()),
        Builder::Timestamp(b) => {
            let array = b.finish();
            match d {
                Decoder::TimestampTz => Arc::new(array.with_timezone("UTC")),
                _ => Arc::new(array),
            }
        }
        Builder::Time(b) => Arc::new(b.finish()),
    }
}

fn append_null(b: &mut Builder) {
    match b {
        Builder::Bool(b) => b.append_null(),
        Builder::Int(b) => b.append_null(),
        Builder::Float(b) => b.append_null(),
        Builder::Decimal(b) => b.append_null(),
        Builder::Text(b) => b.append_null(),
        Builder::Binary(b) => b.append_null(),
        Builder::Date(b) => b.append_null(),
        Builder::Timestamp(b) => b.append_null(),
        Builder::Time(b) => b.append_null(),
    }
}

#[inline]
fn append_value(d: Decoder, b: &mut Builder, v: &[u8]) -> Result<(), String> {
    use Decoder as D;
    match (d, b) {
        (D::Bool, Builder::Bool(b)) => b.append_value(fixed::<1>(v)?[0] != 0),
        (D::Int2, Builder::Int(b)) => b.append_value(i16::from_be_bytes(fixed(v)?).into()),
        (D::Int4, Builder::Int(b)) => b.append_value(i32::from_be_bytes(fixed(v)?).into()),
        (D::Int8, Builder::Int(b)) => b.append_value(i64::from_be_bytes(fixed(v)?)),
        (D::Oid, Builder::Int(b)) => b.append_value(u32::from_be_bytes(fixed(v)?).into()),
        (D::Float4, Builder::Float(b)) => b.append_value(f32::from_be_bytes(fixed(v)?).into()),
        (D::Float8, Builder::Float(b)) => b.append_value(f64::from_be_bytes(fixed(v)?)),
        (D::Decimal { scale, .. }, Builder::Decimal(b)) => {
            b.append_value(numeric::to_i128(v, scale)?)
        }
        (D::NumericText, Builder::Text(b)) => b.append_value(numeric::to_text(v)?),
        (D::Text, Builder::Text(b)) => b.append_value(utf8(v)?),
        (D::Jsonb, Builder::Text(b)) => match v.split_first() {
            Some((1, rest)) => b.append_value(utf8(rest)?),
            _ => return Err("unknown jsonb binary version".into()),
        },
        (D::Uuid, Builder::Text(b)) => b.append_value(uuid_text(fixed::<16>(v)?)),
        (D::Date, Builder::Date(b)) => {
            let days = i32::from_be_bytes(fixed(v)?);
            let days = days
                .checked_add(PG_EPOCH_DAYS)
                .filter(|_| days != i32::MAX && days != i32::MIN)
                .ok_or("date infinity cannot be represented")?;
            b.append_value(days)
        }
        (D::Timestamp | D::TimestampTz, Builder::Timestamp(b)) => {
            let micros = i64::from_be_bytes(fixed(v)?);
            let micros = micros
                .checked_add(PG_EPOCH_MICROS)
                .filter(|_| micros != i64::MAX && micros != i64::MIN)
                .ok_or("timestamp infinity cannot be represented")?;
            b.append_value(micros)
        }
        (D::Time, Builder::Time(b)) => b.append_value(i64::from_be_bytes(fixed(v)?)),
        (D::Bytea, Builder::Binary(b)) => b.append_value(v),
        (d, _) => return Err(format!("no builder for {d:?}")),
    }
    Ok(())
}

#[inline]
fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

#[inline]
fn utf8(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|e| format!("invalid utf-8: {e}"))
}

fn uuid_text(b: [u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Decodes one integer value (`int2`, `int4`, `int8`, `oid`, or a numeric without a
/// fraction), for scalar rows.
pub(crate) fn decode_i64(d: Decoder, v: &[u8]) -> Result<i64, String> {
    match d {
        Decoder::Int2 => Ok(i16::from_be_bytes(fixed(v)?).into()),
        Decoder::Int4 => Ok(i32::from_be_bytes(fixed(v)?).into()),
        Decoder::Int8 => Ok(i64::from_be_bytes(fixed(v)?)),
        Decoder::Oid => Ok(u32::from_be_bytes(fixed(v)?).into()),
        Decoder::Decimal { .. } | Decoder::NumericText => {
            let n = numeric::to_i128(v, 0)?;
            i64::try_from(n).map_err(|_| "integer out of range".into())
        }
        other => Err(format!("{other:?} is not an integer type")),
    }
}

pub(crate) mod numeric {
    //! PostgreSQL's binary `numeric`: ndigits, weight, sign, dscale (all i16), then
    //! base-10000 digits, the first worth 10000^weight.

    const POS: u16 = 0x0000;
    const NEG: u16 = 0x4000;
    const NAN: u16 = 0xC000;
    const PINF: u16 = 0xD000;
    const NINF: u16 = 0xF000;

    struct Parts<'a> {
        weight: i32,
        sign: u16,
        dscale: i32,
        digits: &'a [u8],
    }

    fn parts(v: &[u8]) -> Result<Parts<'_>, String> {
        if v.len() < 8 {
            return Err("numeric value too short".into());
        }
        let ndigits = u16::from_be_bytes([v[0], v[1]]) as usize;
        let weight = i16::from_be_bytes([v[2], v[3]]) as i32;
        let sign = u16::from_be_bytes([v[4], v[5]]);
        let dscale = u16::from_be_bytes([v[6], v[7]]) as i32;
        let digits = &v[8..];
        if digits.len() != ndigits * 2 {
            return Err("numeric digit count does not match".into());
        }
        Ok(Parts {
            weight,
            sign,
            dscale,
            digits,
        })
    }

    fn digit(d: &[u8], i: usize) -> i128 {
        i128::from(u16::from_be_bytes([d[2 * i], d[2 * i + 1]]))
    }

    /// The value times 10^scale, exactly (refuses values that need rounding or overflow).
    pub fn to_i128(v: &[u8], scale: i8) -> Result<i128, String> {
        let p = parts(v)?;
        match p.sign {
            POS | NEG => {}
            NAN => return Err("NaN cannot be represented as a decimal".into()),
            PINF | NINF => return Err("infinity cannot be represented as a decimal".into()),
            s => return Err(format!("unknown numeric sign {s:#x}")),
        }
        let n = p.digits.len() / 2;
        let mut acc: i128 = 0;
        let overflow = || "decimal out of range".to_string();
        for i in 0..n {
            acc = acc
                .checked_mul(10_000)
                .and_then(|a| a.checked_add(digit(p.digits, i)))
                .ok_or_else(overflow)?;
        }
        // acc is worth 10000^(weight - n + 1); bring it to 10^-scale units
        let exp10 = 4 * (p.weight - n as i32 + 1) + i32::from(scale);
        if exp10 >= 0 {
            for _ in 0..exp10 {
                acc = acc.checked_mul(10).ok_or_else(overflow)?;
            }
        } else {
            for _ in 0..(-exp10) {
                if acc % 10 != 0 {
                    return Err(format!("value has more than {scale} decimal places"));
                }
                acc /= 10;
            }
        }
        Ok(if p.sign == NEG { -acc } else { acc })
    }

    /// Exact decimal text with `dscale` digits after the point (`NaN`, `Infinity`).
    pub fn to_text(v: &[u8]) -> Result<String, String> {
        let p = parts(v)?;
        match p.sign {
            NAN => return Ok("NaN".into()),
            PINF => return Ok("Infinity".into()),
            NINF => return Ok("-Infinity".into()),
            POS | NEG => {}
            s => return Err(format!("unknown numeric sign {s:#x}")),
        }
        let n = (p.digits.len() / 2) as i32;
        let group = |e: i32| -> i128 {
            let i = p.weight - e;
            if (0..n).contains(&i) {
                digit(p.digits, i as usize)
            } else {
                0
            }
        };
        if (0..p.digits.len() / 2).any(|i| digit(p.digits, i) > 9999) {
            return Err("numeric digit out of range".into());
        }
        // digits are written by hand: this runs once per numeric cell of an extract
        let mut out =
            String::with_capacity(4 * (p.weight.max(0) as usize + 1) + p.dscale as usize + 2);
        if p.sign == NEG {
            out.push('-');
        }
        if p.weight < 0 {
            out.push('0');
        } else {
            let first = group(p.weight);
            let mut started = false;
            for divisor in [1000, 100, 10, 1] {
                let d = (first / divisor) % 10;
                if d != 0 || started || divisor == 1 {
                    started = true;
                    out.push(char::from(b'0' + d as u8));
                }
            }
            for e in (0..p.weight).rev() {
                push4(&mut out, group(e));
            }
        }
        if p.dscale > 0 {
            out.push('.');
            let end = out.len() + p.dscale as usize;
            let mut e = -1;
            while out.len() < end {
                push4(&mut out, group(e));
                e -= 1;
            }
            out.truncate(end);
        }
        Ok(out)
    }

    /// A base-10000 digit group as exactly four decimal digits.
    fn push4(out: &mut String, group: i128) {
        for divisor in [1000, 100, 10, 1] {
            out.push(char::from(b'0' + ((group / divisor) % 10) as u8));
        }
    }
}

#[cfg(test)]
mod tests;
