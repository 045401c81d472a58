//! `rowType` → [`Column`] + [`CellFormat`]: the Snowflake half of the type table in the
//! module doc. Type names are matched case-insensitively (live responses say `fixed`,
//! the spec `FIXED`).

use arrow_schema::{DataType, TimeUnit};

use super::wire::RowType;
use crate::cells::CellFormat;
use crate::{Column, WarehouseError};

/// The column and cell spelling of one `rowType` entry.
pub(crate) fn column(row_type: &RowType) -> Result<(Column, CellFormat), WarehouseError> {
    let kind = row_type.kind.to_ascii_lowercase();
    let scale = row_type.scale.unwrap_or(0);
    let precision = row_type.precision.unwrap_or(38);
    let utc = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let (warehouse_type, data_type, format) = match kind.as_str() {
        "fixed" => {
            let p = u8::try_from(precision)
                .ok()
                .filter(|p| (1..=38).contains(p));
            let s = i8::try_from(scale).ok().filter(|s| (0..=38).contains(s));
            let name = format!("NUMBER({precision},{scale})");
            match (p, s) {
                (Some(p), Some(s)) if i16::from(s) <= i16::from(p) => {
                    (name, DataType::Decimal128(p, s), CellFormat::Decimal)
                }
                _ => (name, DataType::Utf8, CellFormat::Text),
            }
        }
        "real" => ("FLOAT".into(), DataType::Float64, CellFormat::Float),
        "decfloat" => ("DECFLOAT".into(), DataType::Utf8, CellFormat::Text),
        "text" => (
            sized("VARCHAR", row_type.length),
            DataType::Utf8,
            CellFormat::Text,
        ),
        "binary" => (
            sized("BINARY", row_type.length),
            DataType::Binary,
            CellFormat::BinaryHex,
        ),
        "boolean" => ("BOOLEAN".into(), DataType::Boolean, CellFormat::Bool),
        "date" => ("DATE".into(), DataType::Date32, CellFormat::DateEpochDays),
        "time" => (
            with_scale("TIME", row_type.scale),
            DataType::Time64(TimeUnit::Microsecond),
            CellFormat::TimeSeconds,
        ),
        "timestamp_ntz" => (
            with_scale("TIMESTAMP_NTZ", row_type.scale),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            CellFormat::EpochSeconds,
        ),
        "timestamp_ltz" => (
            with_scale("TIMESTAMP_LTZ", row_type.scale),
            utc(),
            CellFormat::EpochSeconds,
        ),
        "timestamp_tz" => (
            with_scale("TIMESTAMP_TZ", row_type.scale),
            utc(),
            CellFormat::EpochSecondsWithOffset,
        ),
        "variant" | "object" | "array" | "map" | "geography" | "geometry" => {
            (kind.to_uppercase(), DataType::Utf8, CellFormat::Json)
        }
        _ => {
            return Err(WarehouseError::UnsupportedType {
                column: row_type.name.clone(),
                warehouse_type: row_type.kind.to_uppercase(),
            })
        }
    };
    Ok((
        Column {
            name: row_type.name.clone(),
            warehouse_type,
            data_type,
            nullable: row_type.nullable.unwrap_or(true),
        },
        format,
    ))
}

pub(crate) fn columns(row_types: &[RowType]) -> Result<Vec<(Column, CellFormat)>, WarehouseError> {
    row_types.iter().map(column).collect()
}

fn sized(name: &str, length: Option<u64>) -> String {
    match length {
        Some(n) => format!("{name}({n})"),
        None => name.to_string(),
    }
}

fn with_scale(name: &str, scale: Option<i64>) -> String {
    match scale {
        Some(s) => format!("{name}({s})"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(kind: &str, precision: Option<u64>, scale: Option<i64>) -> RowType {
        RowType {
            name: "C".into(),
            kind: kind.into(),
            length: None,
            precision,
            scale,
            nullable: Some(false),
        }
    }

    #[test]
    fn table() {
        let cases = [
            (
                rt("fixed", Some(38), Some(0)),
                DataType::Decimal128(38, 0),
                CellFormat::Decimal,
                "NUMBER(38,0)",
            ),
            (
                rt("FIXED", Some(10), Some(2)),
                DataType::Decimal128(10, 2),
                CellFormat::Decimal,
                "NUMBER(10,2)",
            ),
            (
                rt("real", None, None),
                DataType::Float64,
                CellFormat::Float,
                "FLOAT",
            ),
            (
                rt("text", None, None),
                DataType::Utf8,
                CellFormat::Text,
                "VARCHAR",
            ),
            (
                rt("BINARY", None, None),
                DataType::Binary,
                CellFormat::BinaryHex,
                "BINARY",
            ),
            (
                rt("boolean", None, None),
                DataType::Boolean,
                CellFormat::Bool,
                "BOOLEAN",
            ),
            (
                rt("date", None, None),
                DataType::Date32,
                CellFormat::DateEpochDays,
                "DATE",
            ),
            (
                rt("time", None, Some(9)),
                DataType::Time64(TimeUnit::Microsecond),
                CellFormat::TimeSeconds,
                "TIME(9)",
            ),
            (
                rt("TIMESTAMP_NTZ", None, Some(9)),
                DataType::Timestamp(TimeUnit::Microsecond, None),
                CellFormat::EpochSeconds,
                "TIMESTAMP_NTZ(9)",
            ),
            (
                rt("timestamp_ltz", None, Some(9)),
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                CellFormat::EpochSeconds,
                "TIMESTAMP_LTZ(9)",
            ),
            (
                rt("timestamp_tz", None, Some(9)),
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                CellFormat::EpochSecondsWithOffset,
                "TIMESTAMP_TZ(9)",
            ),
            (
                rt("variant", None, None),
                DataType::Utf8,
                CellFormat::Json,
                "VARIANT",
            ),
            (
                rt("OBJECT", None, None),
                DataType::Utf8,
                CellFormat::Json,
                "OBJECT",
            ),
            (
                rt("array", None, None),
                DataType::Utf8,
                CellFormat::Json,
                "ARRAY",
            ),
            (
                rt("decfloat", None, None),
                DataType::Utf8,
                CellFormat::Text,
                "DECFLOAT",
            ),
        ];
        for (row_type, data_type, format, name) in cases {
            let (c, f) = column(&row_type).unwrap();
            assert_eq!(
                (c.data_type, f, c.warehouse_type.as_str()),
                (data_type, format, name),
                "{row_type:?}"
            );
            assert!(!c.nullable);
        }
        let e = column(&rt("vector", None, None)).unwrap_err();
        assert!(
            matches!(e, WarehouseError::UnsupportedType { ref warehouse_type, .. } if warehouse_type == "VECTOR")
        );
    }
}
