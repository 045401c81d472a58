//! One Arrow cell as JSON text, written straight into a byte buffer: the column is
//! downcast once per batch ([`CellColumn::new`]), then each cell appends its JSON without
//! an intermediate `serde_json::Value` (building and dropping a `Value` tree per record and
//! serialising it again was most of a full sync's CPU). Numbers and strings go through
//! serde_json's own serializer, so the text is byte-for-byte what serde_json would print;
//! dates and timestamps in years 1000–9999 are formatted by hand, exactly as chrono's
//! `%Y-%m-%d` / `%Y-%m-%dT%H:%M:%S%.f` print them (other years go through chrono).

use crate::diff::encode::LOGICAL_TYPE_KEY;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, BooleanArray, GenericBinaryArray, GenericStringArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, TimeUnit};
use chrono::format::{Item, StrftimeItems};
use std::cell::Cell;
use std::io::Write as _;
use std::sync::OnceLock;

/// Microseconds from a stored time value.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl Unit {
    fn micros(self, value: i64) -> i64 {
        match self {
            Unit::Seconds => value.saturating_mul(1_000_000),
            Unit::Millis => value.saturating_mul(1_000),
            Unit::Micros => value,
            Unit::Nanos => value.div_euclid(1_000),
        }
    }
}

enum Cells<'a> {
    Bool(&'a BooleanArray),
    Int(&'a [i64]),
    Float(&'a [f64]),
    Decimal(&'a [i128], i8),
    Text(&'a GenericStringArray<i32>, bool),
    LargeText(&'a GenericStringArray<i64>, bool),
    Date(&'a [i32]),
    Timestamp(&'a [i64], Unit, bool),
    Time(&'a [i64], Unit),
    Binary(&'a GenericBinaryArray<i32>),
    LargeBinary(&'a GenericBinaryArray<i64>),
    Unsupported,
}

/// One column of a batch, ready to write cells of.
pub struct CellColumn<'a> {
    cells: Cells<'a>,
    nulls: Option<&'a NullBuffer>,
    /// The day last written by a date or timestamp cell and its `YYYY-MM-DD`: rows of a
    /// column mostly fall on the day of the row before, and the calendar arithmetic was
    /// the costliest part of a timestamp.
    last_day: Cell<(i64, [u8; 10])>,
}

impl<'a> CellColumn<'a> {
    /// Types the mapper did not accept write `null`.
    pub fn new(field: &Field, array: &'a dyn Array) -> Self {
        let json = field
            .metadata()
            .get(LOGICAL_TYPE_KEY)
            .is_some_and(|logical| logical == "json");
        let cells = match array.data_type() {
            DataType::Boolean => Cells::Bool(array.as_boolean()),
            DataType::Int64 => Cells::Int(array.as_primitive::<Int64Type>().values()),
            DataType::Float64 => Cells::Float(array.as_primitive::<Float64Type>().values()),
            DataType::Decimal128(_, scale) => {
                Cells::Decimal(array.as_primitive::<Decimal128Type>().values(), *scale)
            }
            DataType::Utf8 => Cells::Text(array.as_string::<i32>(), json),
            DataType::LargeUtf8 => Cells::LargeText(array.as_string::<i64>(), json),
            DataType::Date32 => Cells::Date(array.as_primitive::<Date32Type>().values()),
            DataType::Timestamp(unit, tz) => {
                let (values, unit) = match unit {
                    TimeUnit::Second => (
                        array.as_primitive::<TimestampSecondType>().values(),
                        Unit::Seconds,
                    ),
                    TimeUnit::Millisecond => (
                        array.as_primitive::<TimestampMillisecondType>().values(),
                        Unit::Millis,
                    ),
                    TimeUnit::Microsecond => (
                        array.as_primitive::<TimestampMicrosecondType>().values(),
                        Unit::Micros,
                    ),
                    TimeUnit::Nanosecond => (
                        array.as_primitive::<TimestampNanosecondType>().values(),
                        Unit::Nanos,
                    ),
                };
                Cells::Timestamp(values, unit, tz.is_some())
            }
            DataType::Time64(TimeUnit::Nanosecond) => Cells::Time(
                array.as_primitive::<Time64NanosecondType>().values(),
                Unit::Nanos,
            ),
            DataType::Time64(_) => Cells::Time(
                array.as_primitive::<Time64MicrosecondType>().values(),
                Unit::Micros,
            ),
            DataType::Binary => Cells::Binary(array.as_binary::<i32>()),
            DataType::LargeBinary => Cells::LargeBinary(array.as_binary::<i64>()),
            _ => Cells::Unsupported,
        };
        Self {
            cells,
            nulls: array.nulls(),
            last_day: Cell::new((i64::MIN, [0; 10])),
        }
    }

    /// `YYYY-MM-DD` of `days` when its year has four digits (the last one remembered).
    #[inline]
    fn day(&self, days: i64) -> Option<[u8; 10]> {
        let (last, text) = self.last_day.get();
        if last == days {
            return Some(text);
        }
        let text = day_text(days)?;
        self.last_day.set((days, text));
        Some(text)
    }

    /// Appends the cell of `row` as JSON; `true` when that is `null` (a NULL, a NaN or
    /// infinite float, a date out of range, JSON text `null`).
    #[inline]
    pub fn write(&self, row: usize, out: &mut Vec<u8>) -> bool {
        if self.nulls.is_some_and(|nulls| nulls.is_null(row)) {
            return null(out);
        }
        match &self.cells {
            Cells::Bool(values) => {
                out.extend_from_slice(if values.value(row) { b"true" } else { b"false" });
            }
            Cells::Int(values) => {
                let _ = serde::Serializer::serialize_i64(
                    &mut serde_json::Serializer::new(&mut *out),
                    values[row],
                );
            }
            Cells::Float(values) => {
                let value = values[row];
                if !value.is_finite() {
                    return null(out);
                }
                let _ = serde::Serializer::serialize_f64(
                    &mut serde_json::Serializer::new(&mut *out),
                    value,
                );
            }
            Cells::Decimal(values, scale) => {
                out.push(b'"');
                push_decimal(out, values[row], *scale);
                out.push(b'"');
            }
            Cells::Text(values, is_json) => return text(values.value(row), *is_json, out),
            Cells::LargeText(values, is_json) => return text(values.value(row), *is_json, out),
            Cells::Date(values) => return self.date(values[row], out),
            Cells::Timestamp(values, unit, zoned) => {
                return self.timestamp(unit.micros(values[row]), *zoned, out)
            }
            Cells::Time(values, unit) => time(unit.micros(values[row]), out),
            Cells::Binary(values) => push_hex(out, values.value(row)),
            Cells::LargeBinary(values) => push_hex(out, values.value(row)),
            Cells::Unsupported => return null(out),
        }
        false
    }
}

fn null(out: &mut Vec<u8>) -> bool {
    out.extend_from_slice(b"null");
    true
}

/// A JSON string literal, escaped as serde_json escapes.
#[inline]
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        let _ = serde::Serializer::serialize_str(&mut serde_json::Serializer::new(&mut *out), text);
        return;
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// Whether JSON needs any byte of `bytes` escaped (a quote, a backslash, a control
/// character): most text needs none, and is then copied whole. No early exit, so the
/// loop runs over whole vectors.
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

fn text(value: &str, is_json: bool, out: &mut Vec<u8>) -> bool {
    if !is_json {
        push_str(out, value);
        return false;
    }
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Null) => null(out),
        Ok(parsed) => {
            let _ = serde_json::to_writer(&mut *out, &parsed);
            false
        }
        Err(_) => {
            push_str(out, value);
            false
        }
    }
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DD` when the year has four digits.
fn day_text(days: i64) -> Option<[u8; 10]> {
    let (year, month, day) = civil(days);
    if !(1000..=9999).contains(&year) {
        return None;
    }
    let year = year as u32;
    let mut text = [0u8; 10];
    put2(&mut text[0..2], year / 100);
    put2(&mut text[2..4], year % 100);
    text[4] = b'-';
    put2(&mut text[5..7], month);
    text[7] = b'-';
    put2(&mut text[8..10], day);
    Some(text)
}

#[inline]
fn put2(out: &mut [u8], value: u32) {
    out[0] = b'0' + (value / 10 % 10) as u8;
    out[1] = b'0' + (value % 10) as u8;
}

impl CellColumn<'_> {
    fn date(&self, days: i32, out: &mut Vec<u8>) -> bool {
        if let Some(day) = self.day(i64::from(days)) {
            out.push(b'"');
            out.extend_from_slice(&day);
            out.push(b'"');
            return false;
        }
        match chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0) {
            Some(at) => {
                push_str(out, &formatted(at.naive_utc(), date_items(), ""));
                false
            }
            None => null(out),
        }
    }

    fn timestamp(&self, micros: i64, zoned: bool, out: &mut Vec<u8>) -> bool {
        if let Some(day) = self.day(micros.div_euclid(MICROS_PER_DAY)) {
            // `"YYYY-MM-DDTHH:MM:SS.ffffffZ"`: at most 29 bytes, written once
            let mut text = [0u8; 32];
            text[0] = b'"';
            text[1..11].copy_from_slice(&day);
            let of_day = micros.rem_euclid(MICROS_PER_DAY);
            let seconds = (of_day / 1_000_000) as u32;
            let fraction = (of_day % 1_000_000) as u32;
            text[11] = b'T';
            put2(&mut text[12..14], seconds / 3600);
            text[14] = b':';
            put2(&mut text[15..17], seconds / 60 % 60);
            text[17] = b':';
            put2(&mut text[18..20], seconds % 60);
            let mut len = 20;
            // chrono's `%.f`: nothing, 3 or 6 digits (microseconds have no finer part)
            if fraction != 0 {
                let (mut value, digits) = if fraction.is_multiple_of(1000) {
                    (fraction / 1000, 3)
                } else {
                    (fraction, 6)
                };
                text[len] = b'.';
                for at in (len + 1..=len + digits).rev() {
                    text[at] = b'0' + (value % 10) as u8;
                    value /= 10;
                }
                len += 1 + digits;
            }
            if zoned {
                text[len] = b'Z';
                len += 1;
            }
            text[len] = b'"';
            out.extend_from_slice(&text[..=len]);
            return false;
        }
        let zone = if zoned { "Z" } else { "" };
        match chrono::DateTime::from_timestamp_micros(micros) {
            Some(at) => {
                push_str(out, &formatted(at.naive_utc(), timestamp_items(), zone));
                false
            }
            None => null(out),
        }
    }
}

fn time(micros: i64, out: &mut Vec<u8>) {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let (h, m, s) = (seconds / 3600, (seconds / 60) % 60, seconds % 60);
    let _ = if fraction == 0 {
        write!(out, "\"{h:02}:{m:02}:{s:02}\"")
    } else {
        write!(out, "\"{h:02}:{m:02}:{s:02}.{fraction:06}\"")
    };
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2 + 2);
    out.push(b'"');
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0xf)]);
    }
    out.push(b'"');
}

/// The exact decimal text of an unscaled value at `scale` (no quotes).
pub fn push_decimal(out: &mut Vec<u8>, unscaled: i128, scale: i8) {
    let mut digits = [0u8; 40];
    let mut at = digits.len();
    let mut rest = unscaled.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let digits = &digits[at..];
    if unscaled < 0 {
        out.push(b'-');
    }
    if scale <= 0 {
        out.extend_from_slice(digits);
        if unscaled != 0 {
            out.extend(std::iter::repeat_n(b'0', usize::from(scale.unsigned_abs())));
        }
        return;
    }
    let scale = usize::from(scale.unsigned_abs());
    if digits.len() <= scale {
        out.push(b'0');
        out.push(b'.');
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits);
    } else {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(whole);
        out.push(b'.');
        out.extend_from_slice(fraction);
    }
}

/// `%Y-%m-%d`, parsed once.
fn date_items() -> &'static [Item<'static>] {
    static ITEMS: OnceLock<Vec<Item<'static>>> = OnceLock::new();
    ITEMS.get_or_init(|| StrftimeItems::new("%Y-%m-%d").collect())
}

/// `%Y-%m-%dT%H:%M:%S%.f`, parsed once.
fn timestamp_items() -> &'static [Item<'static>] {
    static ITEMS: OnceLock<Vec<Item<'static>>> = OnceLock::new();
    ITEMS.get_or_init(|| StrftimeItems::new("%Y-%m-%dT%H:%M:%S%.f").collect())
}

fn formatted(at: chrono::NaiveDateTime, items: &[Item<'static>], suffix: &str) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(32);
    let _ = write!(text, "{}", at.format_with_items(items.iter()));
    text.push_str(suffix);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_timestamp(micros: i64, zone: &str) -> String {
        let at = chrono::DateTime::from_timestamp_micros(micros).unwrap();
        format!("\"{}\"", formatted(at.naive_utc(), timestamp_items(), zone))
    }

    #[test]
    fn hand_formatted_times_are_chronos() {
        let samples = [
            0i64,
            1_500_000,
            -1,
            -86_400_000_000,
            1_704_067_200_000_123,
            1_704_067_200_120_000,
            253_402_300_799_999_999,
            -30_610_224_000_000_000,
            951_782_400_000_000,
            4_107_542_400_000_001,
        ];
        // each sample twice in a row, then all again (the remembered day is hit and
        // missed both ways)
        let rows: Vec<i64> = samples
            .iter()
            .flat_map(|&micros| [micros, micros])
            .chain(samples)
            .collect();
        for (zone, tz) in [("Z", Some("UTC")), ("", None)] {
            let array = arrow_array::TimestampMicrosecondArray::from(rows.clone())
                .with_timezone_opt(tz.map(str::to_string));
            let field = Field::new("at", array.data_type().clone(), true);
            let column = CellColumn::new(&field, &array);
            for (row, &micros) in rows.iter().enumerate() {
                let mut out = Vec::new();
                assert!(!column.write(row, &mut out));
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    chrono_timestamp(micros, zone)
                );
            }
        }
        let days = [
            -719_162, -1, 0, 0, 19_723, 19_723, 2_932_896, 11_016, -354_285, -1,
        ];
        let array = arrow_array::Date32Array::from(days.to_vec());
        let field = Field::new("on", DataType::Date32, true);
        let column = CellColumn::new(&field, &array);
        for (row, &days) in days.iter().enumerate() {
            let mut out = Vec::new();
            assert!(!column.write(row, &mut out));
            let at = chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0).unwrap();
            let want = format!("\"{}\"", formatted(at.naive_utc(), date_items(), ""));
            assert_eq!(String::from_utf8(out).unwrap(), want, "day {days}");
        }
        let array = arrow_array::Date32Array::from(vec![i32::MAX]);
        let mut out = Vec::new();
        assert!(CellColumn::new(&field, &array).write(0, &mut out));
        assert_eq!(out, b"null");
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for text in [
            "",
            "plain",
            "a\"quote",
            "back\\slash",
            "tab\tnew\nline",
            "\u{1}",
            "ünïcödé €",
            "end\u{1f}",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, text);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(text).unwrap()
            );
        }
    }

    #[test]
    fn decimals_keep_every_digit() {
        let text = |unscaled: i128, scale: i8| {
            let mut out = Vec::new();
            push_decimal(&mut out, unscaled, scale);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(text(150, 2), "1.50");
        assert_eq!(text(-5, 2), "-0.05");
        assert_eq!(text(0, 2), "0.00");
        assert_eq!(text(7, 0), "7");
        assert_eq!(text(7, -2), "700");
        assert_eq!(text(0, -2), "0");
        assert_eq!(
            text(i128::MIN, 3),
            format!("-{}", "170141183460469231731687303715884105.728")
        );
    }
}
