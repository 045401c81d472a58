//! Databricks `manifest.schema.columns[]` → [`Column`]s and the [`CellFormat`] of their
//! `data_array` cells, following the table in the module doc of [`super`].

use arrow_schema::{DataType, TimeUnit};

use super::wire::ColumnInfo;
use crate::cells::CellFormat;
use crate::{Column, WarehouseError};

/// Databricks' DECIMAL without parameters is DECIMAL(10, 0).
const DECIMAL_DEFAULT: (u8, i8) = (10, 0);

/// The columns of a result, in `position` order.
pub(crate) fn result_columns(
    columns: &[ColumnInfo],
) -> Result<Vec<(Column, CellFormat)>, WarehouseError> {
    let mut sorted: Vec<&ColumnInfo> = columns.iter().collect();
    sorted.sort_by_key(|c| c.position.unwrap_or(u32::MAX));
    sorted.into_iter().map(column).collect()
}

fn column(info: &ColumnInfo) -> Result<(Column, CellFormat), WarehouseError> {
    let text = info.type_text.clone().unwrap_or_default();
    let name = match info.type_name.as_deref() {
        Some(n) if !n.is_empty() => n.to_string(),
        // Fall back to the first word of the type text (`DECIMAL(10,2)` → `DECIMAL`).
        _ => text
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase(),
    };
    let ntz = text.to_ascii_uppercase().starts_with("TIMESTAMP_NTZ");
    let (data_type, format) = match name.as_str() {
        "BOOLEAN" => (DataType::Boolean, CellFormat::Bool),
        "BYTE" | "SHORT" | "INT" | "LONG" | "TINYINT" | "SMALLINT" | "BIGINT" => {
            (DataType::Int64, CellFormat::Int)
        }
        "FLOAT" | "DOUBLE" => (DataType::Float64, CellFormat::Float),
        "DECIMAL" => (decimal(info)?, CellFormat::Decimal),
        "STRING" | "CHAR" | "VARCHAR" | "INTERVAL" | "NULL" | "VOID" => {
            (DataType::Utf8, CellFormat::Text)
        }
        "DATE" => (DataType::Date32, CellFormat::DateIso),
        "TIMESTAMP_NTZ" => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            CellFormat::TimestampIso,
        ),
        "TIMESTAMP" if ntz => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            CellFormat::TimestampIso,
        ),
        "TIMESTAMP" => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            CellFormat::TimestampIso,
        ),
        "BINARY" => (DataType::Binary, CellFormat::BinaryBase64),
        "ARRAY" | "MAP" | "STRUCT" => (DataType::Utf8, CellFormat::Json),
        _ => {
            return Err(WarehouseError::UnsupportedType {
                column: info.name.clone(),
                warehouse_type: if text.is_empty() { name } else { text },
            })
        }
    };
    let warehouse_type = if text.is_empty() { name } else { text };
    Ok((
        Column {
            name: info.name.clone(),
            warehouse_type,
            data_type,
            // The manifest does not say; results are always nullable.
            nullable: true,
        },
        format,
    ))
}

fn decimal(info: &ColumnInfo) -> Result<DataType, WarehouseError> {
    let (p, s) = match (info.type_precision, info.type_scale) {
        (Some(p), s) => (p, s.unwrap_or(0)),
        (None, _) => DECIMAL_DEFAULT,
    };
    if p == 0 || p > 38 || s < 0 || s as u8 > p {
        return Err(WarehouseError::UnsupportedType {
            column: info.name.clone(),
            warehouse_type: format!("DECIMAL({p},{s})"),
        });
    }
    Ok(DataType::Decimal128(p, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, type_name: &str, type_text: &str, pos: u32) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            position: Some(pos),
            type_name: Some(type_name.into()),
            type_text: Some(type_text.into()),
            type_precision: None,
            type_scale: None,
        }
    }

    #[test]
    fn columns_are_ordered_by_position_and_typed() {
        let cols = result_columns(&[
            info("b", "TIMESTAMP", "TIMESTAMP_NTZ", 1),
            info("a", "LONG", "BIGINT", 0),
            info("c", "USER_DEFINED_TYPE", "", 2),
        ]);
        assert!(
            matches!(cols, Err(WarehouseError::UnsupportedType { ref column, .. }) if column == "c")
        );
        let cols = result_columns(&[
            info("b", "TIMESTAMP", "TIMESTAMP_NTZ", 1),
            info("a", "LONG", "BIGINT", 0),
        ])
        .unwrap();
        assert_eq!(cols[0].0.name, "a");
        assert_eq!(cols[0].0.warehouse_type, "BIGINT");
        assert_eq!(
            cols[1].0.data_type,
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
    }
}
