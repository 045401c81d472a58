//! BigQuery `TableCell`s → text cells, one row at a time, ready for the shared
//! string-cell builders ([`crate::cells`]).
//!
//! Every scalar arrives as a JSON string (or `null`) and is passed on untouched. A RECORD
//! (`{"v":{"f":[{"v":…}]}}`) or REPEATED (`{"v":[{"v":…}]}`) value becomes JSON text:
//! a RECORD is an object keyed by the sub-field names in schema order, a REPEATED value an
//! array. Inside that JSON, INT64, NUMERIC and BIGNUMERIC stay strings (JSON numbers
//! would lose digits), BOOL is a JSON boolean, a finite FLOAT64 a JSON number, TIMESTAMP an
//! RFC 3339 UTC string with microseconds, a JSON-typed value is embedded, and everything
//! else (STRING, BYTES as base64, DATE, DATETIME, TIME, GEOGRAPHY) is the string BigQuery sent.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};

use super::schema::{is_record, ResultColumn};
use super::wire::{TableFieldSchema, TableRow};
use crate::cells::parse;
use crate::WarehouseError;

/// The text cells of one row.
pub(crate) fn row_cells(
    row: TableRow,
    columns: &[ResultColumn],
) -> Result<Vec<Option<String>>, WarehouseError> {
    if row.f.len() != columns.len() {
        return Err(WarehouseError::Protocol {
            detail: format!(
                "a row has {} cells, the schema {} fields",
                row.f.len(),
                columns.len()
            ),
        });
    }
    row.f
        .into_iter()
        .zip(columns)
        .map(|(cell, column)| top_level(cell.v, column))
        .collect()
}

fn top_level(v: Value, column: &ResultColumn) -> Result<Option<String>, WarehouseError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if !column.is_nested() => Ok(Some(s)),
        other if column.field.is_repeated() => {
            Ok(Some(repeated(other, &column.field)?.to_string()))
        }
        other if is_record(&column.field) => {
            Ok(Some(record(other, &column.field.fields)?.to_string()))
        }
        _ => Err(shape_error(&column.column.name)),
    }
}

/// `[{"v": …}, …]` → a JSON array of the elements.
fn repeated(v: Value, field: &TableFieldSchema) -> Result<Value, WarehouseError> {
    let Value::Array(items) = v else {
        return Err(shape_error(&field.name));
    };
    items
        .into_iter()
        .map(|item| element(unwrap_v(item, &field.name)?, field))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// One non-repeated value of `field` (a record or a scalar), as JSON.
fn element(v: Value, field: &TableFieldSchema) -> Result<Value, WarehouseError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    if is_record(field) {
        record(v, &field.fields)
    } else {
        scalar(v, field)
    }
}

/// `{"f": [{"v": …}, …]}` → a JSON object keyed by the sub-field names.
fn record(v: Value, fields: &[TableFieldSchema]) -> Result<Value, WarehouseError> {
    let cells = match v {
        Value::Object(mut obj) => obj.remove("f"),
        _ => None,
    };
    let Some(Value::Array(cells)) = cells else {
        return Err(shape_error("record"));
    };
    if cells.len() != fields.len() {
        return Err(WarehouseError::Protocol {
            detail: format!(
                "a record has {} cells, its schema {} fields",
                cells.len(),
                fields.len()
            ),
        });
    }
    let mut object = Map::with_capacity(fields.len());
    for (cell, field) in cells.into_iter().zip(fields) {
        let v = unwrap_v(cell, &field.name)?;
        let value = if field.is_repeated() {
            if v.is_null() {
                Value::Array(vec![])
            } else {
                repeated(v, field)?
            }
        } else {
            element(v, field)?
        };
        object.insert(field.name.clone(), value);
    }
    Ok(Value::Object(object))
}

/// A nested scalar (a string) rendered as JSON per the module doc.
fn scalar(v: Value, field: &TableFieldSchema) -> Result<Value, WarehouseError> {
    let text = string_of(v, &field.name)?;
    Ok(match field.field_type.as_str() {
        "BOOL" | "BOOLEAN" => match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(shape_error(&field.name)),
        },
        "FLOAT64" | "FLOAT" => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(text)),
        "TIMESTAMP" => {
            Value::String(timestamp_text(&text).ok_or_else(|| shape_error(&field.name))?)
        }
        "JSON" => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        _ => Value::String(text),
    })
}

/// A TIMESTAMP cell as RFC 3339 UTC: int64 microseconds (what we ask for with
/// `useInt64Timestamp`) or float seconds (the API's default).
fn timestamp_text(text: &str) -> Option<String> {
    let micros = if text.contains(['.', 'e', 'E']) {
        parse::seconds_micros(text)?
    } else {
        parse::int(text)?
    };
    DateTime::from_timestamp_micros(micros).map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

fn unwrap_v(cell: Value, name: &str) -> Result<Value, WarehouseError> {
    match cell {
        Value::Object(mut obj) => obj.remove("v").ok_or_else(|| shape_error(name)),
        _ => Err(shape_error(name)),
    }
}

fn string_of(v: Value, name: &str) -> Result<String, WarehouseError> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(shape_error(name)),
    }
}

fn shape_error(name: &str) -> WarehouseError {
    WarehouseError::Protocol {
        detail: format!("a cell of {name:?} does not have the shape its schema says"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bigquery::schema::result_columns;
    use crate::bigquery::wire::TableSchema;

    #[test]
    fn nested_records_and_arrays_become_json_text() {
        let schema: TableSchema = serde_json::from_value(serde_json::json!({"fields": [
            {"name": "people", "type": "RECORD", "mode": "REPEATED", "fields": [
                {"name": "name", "type": "STRING"},
                {"name": "age", "type": "INT64"},
                {"name": "score", "type": "FLOAT64"},
                {"name": "ok", "type": "BOOL"},
                {"name": "seen", "type": "TIMESTAMP"},
                {"name": "nicks", "type": "STRING", "mode": "REPEATED"}
            ]}
        ]}))
        .unwrap();
        let rows: Vec<TableRow> = serde_json::from_value(serde_json::json!([
            {"f": [{"v": [
                {"v": {"f": [{"v": "ann"}, {"v": "9007199254740993"}, {"v": "1.5"}, {"v": "true"},
                             {"v": "1706704496789000"}, {"v": [{"v": "a"}]}]}},
                {"v": {"f": [{"v": null}, {"v": null}, {"v": null}, {"v": null}, {"v": null}, {"v": []}]}}
            ]}]}
        ]))
        .unwrap();
        let columns = result_columns(&schema.fields).unwrap();
        let row = rows.into_iter().next().unwrap();
        let text = row_cells(row, &columns).unwrap()[0].clone().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            serde_json::json!([
                {"name": "ann", "age": "9007199254740993", "score": 1.5, "ok": true,
                 "seen": "2024-01-31T12:34:56.789000Z", "nicks": ["a"]},
                {"name": null, "age": null, "score": null, "ok": null, "seen": null, "nicks": []}
            ])
        );
    }

    #[test]
    fn a_row_with_too_few_cells_is_a_protocol_error() {
        let schema: TableSchema =
            serde_json::from_value(serde_json::json!({"fields": [{"name": "a", "type": "STRING"}, {"name": "b", "type": "STRING"}]}))
                .unwrap();
        let rows: Vec<TableRow> =
            serde_json::from_value(serde_json::json!([{"f": [{"v": "x"}]}])).unwrap();
        let columns = result_columns(&schema.fields).unwrap();
        let row = rows.into_iter().next().unwrap();
        assert!(matches!(
            row_cells(row, &columns),
            Err(WarehouseError::Protocol { .. })
        ));
    }
}
