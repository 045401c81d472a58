//! BigQuery `TableSchema` → [`Column`]s and the [`CellFormat`] each column's cells are
//! spelled in, following the table in the module doc of [`super`]. A REPEATED field of any
//! type, and a RECORD, is one JSON text column (`backflow.logical = json`).

use arrow_schema::{DataType, TimeUnit};

use super::wire::TableFieldSchema;
use crate::cells::CellFormat;
use crate::{Column, WarehouseError};

/// BigQuery's NUMERIC without parameters: NUMERIC(38, 9).
const NUMERIC_DEFAULT: (u8, i8) = (38, 9);

/// One result column: what callers see, how its cells are spelled, and the field as
/// BigQuery described it (nested values are read with it).
#[derive(Debug, Clone)]
pub(crate) struct ResultColumn {
    pub column: Column,
    pub format: CellFormat,
    pub field: TableFieldSchema,
}

impl ResultColumn {
    /// RECORD or REPEATED: the cell is nested and becomes JSON text.
    pub fn is_nested(&self) -> bool {
        self.field.is_repeated() || is_record(&self.field)
    }
}

pub(crate) fn is_record(field: &TableFieldSchema) -> bool {
    matches!(field.field_type.as_str(), "RECORD" | "STRUCT")
}

/// The columns of a result or table, in order.
pub(crate) fn result_columns(
    fields: &[TableFieldSchema],
) -> Result<Vec<ResultColumn>, WarehouseError> {
    fields.iter().map(result_column).collect()
}

fn result_column(field: &TableFieldSchema) -> Result<ResultColumn, WarehouseError> {
    let (data_type, format) = if field.is_repeated() {
        // Still check the element type is one we know.
        scalar_type(field)?;
        (DataType::Utf8, CellFormat::Json)
    } else {
        scalar_type(field)?
    };
    let warehouse_type = if field.is_repeated() {
        format!("ARRAY<{}>", field.field_type)
    } else {
        field.field_type.clone()
    };
    Ok(ResultColumn {
        column: Column {
            name: field.name.clone(),
            warehouse_type,
            data_type,
            nullable: !field.is_required(),
        },
        format,
        field: field.clone(),
    })
}

/// The Arrow type and cell spelling of a non-repeated field.
fn scalar_type(field: &TableFieldSchema) -> Result<(DataType, CellFormat), WarehouseError> {
    Ok(match field.field_type.as_str() {
        "BOOL" | "BOOLEAN" => (DataType::Boolean, CellFormat::Bool),
        "INT64" | "INTEGER" => (DataType::Int64, CellFormat::Int),
        "FLOAT64" | "FLOAT" => (DataType::Float64, CellFormat::Float),
        "NUMERIC" => (numeric(field)?, CellFormat::Decimal),
        // BIGNUMERIC is up to 76 digits: exact decimal text. INTERVAL and RANGE are text.
        // GEOGRAPHY arrives as WKT text, not JSON, so it carries no json marker.
        "BIGNUMERIC" | "STRING" | "GEOGRAPHY" | "INTERVAL" | "RANGE" => {
            (DataType::Utf8, CellFormat::Text)
        }
        "JSON" | "RECORD" | "STRUCT" => (DataType::Utf8, CellFormat::Json),
        "BYTES" => (DataType::Binary, CellFormat::BinaryBase64),
        "DATE" => (DataType::Date32, CellFormat::DateIso),
        "DATETIME" => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            CellFormat::TimestampIso,
        ),
        // We ask for `formatOptions.useInt64Timestamp`: int64 microseconds.
        "TIMESTAMP" => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            CellFormat::EpochMicros,
        ),
        "TIME" => (DataType::Time64(TimeUnit::Microsecond), CellFormat::TimeIso),
        other => {
            return Err(WarehouseError::UnsupportedType {
                column: field.name.clone(),
                warehouse_type: other.to_string(),
            })
        }
    })
}

fn numeric(field: &TableFieldSchema) -> Result<DataType, WarehouseError> {
    let parse = |v: &Option<String>| v.as_deref().map(|s| s.trim().parse::<u8>());
    let (precision, scale) = match (parse(&field.precision), parse(&field.scale)) {
        (None, None) => NUMERIC_DEFAULT,
        (Some(Ok(p)), None) => (p, 0),
        (Some(Ok(p)), Some(Ok(s))) if s <= p => (p, s as i8),
        _ => {
            return Err(WarehouseError::Protocol {
                detail: format!(
                    "column {:?} has an unreadable NUMERIC precision",
                    field.name
                ),
            })
        }
    };
    if precision == 0 || precision > 38 {
        return Err(WarehouseError::UnsupportedType {
            column: field.name.clone(),
            warehouse_type: format!("NUMERIC({precision})"),
        });
    }
    Ok(DataType::Decimal128(precision, scale))
}

/// `(Column, CellFormat)` pairs for [`crate::cells::CellBatchBuilder`].
pub(crate) fn builder_spec(columns: &[ResultColumn]) -> Vec<(Column, CellFormat)> {
    columns
        .iter()
        .map(|c| (c.column.clone(), c.format))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, ty: &str, mode: &str) -> TableFieldSchema {
        TableFieldSchema {
            name: name.into(),
            field_type: ty.into(),
            mode: Some(mode.into()),
            fields: vec![],
            precision: None,
            scale: None,
        }
    }

    #[test]
    fn numeric_defaults_to_38_9_and_honours_parameters() {
        let cols = result_columns(&[field("n", "NUMERIC", "NULLABLE")]).unwrap();
        assert_eq!(cols[0].column.data_type, DataType::Decimal128(38, 9));
        let mut f = field("m", "NUMERIC", "REQUIRED");
        f.precision = Some("10".into());
        f.scale = Some("2".into());
        let cols = result_columns(&[f]).unwrap();
        assert_eq!(cols[0].column.data_type, DataType::Decimal128(10, 2));
        assert!(!cols[0].column.nullable);
    }

    #[test]
    fn repeated_is_json_and_unknown_types_are_refused() {
        let cols = result_columns(&[field("tags", "STRING", "REPEATED")]).unwrap();
        assert_eq!(cols[0].format, CellFormat::Json);
        assert_eq!(cols[0].column.warehouse_type, "ARRAY<STRING>");
        let err = result_columns(&[field("x", "WIDGET", "NULLABLE")]).unwrap_err();
        assert!(matches!(err, WarehouseError::UnsupportedType { .. }));
    }
}
