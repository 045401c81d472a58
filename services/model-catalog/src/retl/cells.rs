//! Preview cells as text: each Arrow value of the canonical types (see
//! `backflow_warehouse::types`) rendered the way a SQL client would show it, so the
//! preview reads the same whatever warehouse the rows came from. NULL is not text:
//! the caller marks it separately.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};

/// The text of row `row` of `array`, or `None` when it is NULL.
pub fn cell_text(array: &ArrayRef, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).to_string(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::Float32 => array.as_primitive::<Float32Type>().value(row).to_string(),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row).to_string(),
        DataType::Decimal128(_, scale) => {
            decimal(array.as_primitive::<Decimal128Type>().value(row), *scale)
        }
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).to_string(),
        DataType::Date32 => date(i64::from(array.as_primitive::<Date32Type>().value(row))),
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            let text = timestamp(micros);
            match zone {
                Some(_) => format!("{text}+00:00"),
                None => text,
            }
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            time_of_day(array.as_primitive::<Time64MicrosecondType>().value(row))
        }
        DataType::Binary => hex(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => hex(array.as_binary::<i64>().value(row)),
        other => format!("<{other:?}>"),
    })
}

/// The Arrow type's name as the API reports it (`Int64`, `Timestamp(Microsecond, Some("UTC"))`).
pub fn arrow_type_name(data_type: &DataType) -> String {
    format!("{data_type:?}")
}

fn decimal(value: i128, scale: i8) -> String {
    if scale <= 0 {
        let factor = 10_i128.checked_pow(u32::from(scale.unsigned_abs()));
        return factor
            .and_then(|f| value.checked_mul(f))
            .map_or_else(|| value.to_string(), |v| v.to_string());
    }
    let digits = value.unsigned_abs().to_string();
    let scale = usize::from(scale.unsigned_abs());
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    let sign = if value < 0 { "-" } else { "" };
    format!("{sign}{whole}.{fraction}")
}

/// Civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
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

fn date(days: i64) -> String {
    let (year, month, day) = civil(days);
    format!("{year:04}-{month:02}-{day:02}")
}

fn time_of_day(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let text = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    );
    if fraction == 0 {
        text
    } else {
        format!("{text}.{fraction:06}")
    }
}

fn timestamp(micros: i64) -> String {
    let day_micros = 86_400_000_000_i64;
    let days = micros.div_euclid(day_micros);
    let within = micros.rem_euclid(day_micros);
    format!("{} {}", date(days), time_of_day(within))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("\\x");
    for byte in bytes {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
        StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
    };
    use std::sync::Arc;

    fn text(array: ArrayRef) -> Vec<Option<String>> {
        (0..array.len()).map(|row| cell_text(&array, row)).collect()
    }

    #[test]
    fn canonical_types_render_like_a_sql_client() {
        assert_eq!(
            text(Arc::new(Int64Array::from(vec![Some(-3), None]))),
            vec![Some("-3".to_string()), None]
        );
        assert_eq!(
            text(Arc::new(BooleanArray::from(vec![true]))),
            vec![Some("true".to_string())]
        );
        assert_eq!(
            text(Arc::new(Float64Array::from(vec![1.5]))),
            vec![Some("1.5".to_string())]
        );
        let decimals = Decimal128Array::from(vec![12345_i128, -5, 0])
            .with_precision_and_scale(10, 2)
            .unwrap();
        assert_eq!(
            text(Arc::new(decimals)),
            vec![
                Some("123.45".to_string()),
                Some("-0.05".to_string()),
                Some("0.00".to_string())
            ]
        );
        assert_eq!(
            text(Arc::new(StringArray::from(vec!["a@x"]))),
            vec![Some("a@x".to_string())]
        );
        assert_eq!(
            text(Arc::new(Date32Array::from(vec![0, 19_723, -1]))),
            vec![
                Some("1970-01-01".to_string()),
                Some("2024-01-01".to_string()),
                Some("1969-12-31".to_string())
            ]
        );
        let utc = TimestampMicrosecondArray::from(vec![1_704_067_200_000_000 + 1_500_000])
            .with_timezone("UTC");
        assert_eq!(
            text(Arc::new(utc)),
            vec![Some("2024-01-01 00:00:01.500000+00:00".to_string())]
        );
        let naive = TimestampMicrosecondArray::from(vec![3_600_000_000]);
        assert_eq!(
            text(Arc::new(naive)),
            vec![Some("1970-01-01 01:00:00".to_string())]
        );
        assert_eq!(
            text(Arc::new(Time64MicrosecondArray::from(vec![45_296_000_001]))),
            vec![Some("12:34:56.000001".to_string())]
        );
        assert_eq!(
            text(Arc::new(BinaryArray::from(vec![&b"\x01\xff"[..]]))),
            vec![Some("\\x01ff".to_string())]
        );
    }

    #[test]
    fn arrow_type_names_are_debug_names() {
        assert_eq!(arrow_type_name(&DataType::Int64), "Int64");
        assert_eq!(
            arrow_type_name(&DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into())
            )),
            "Timestamp(Microsecond, Some(\"UTC\"))"
        );
    }
}
