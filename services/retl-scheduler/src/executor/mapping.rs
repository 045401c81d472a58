//! From an extracted row to what a destination receives: the key object (primary-key
//! columns by source name) and the fields object (the sync's field mapping: a column or
//! a constant per destination field, with a null policy per field), as JSON.
//!
//! Arrow values become JSON as a destination expects them, never silently lossy:
//! booleans, 64-bit integers and floats as numbers (a NaN or infinity as null), decimals
//! as their exact text (`"10.25"`), text as strings, JSON-logical text parsed, dates as
//! `YYYY-MM-DD`, timestamps as ISO 8601 (`…Z` when the column has a time zone), times as
//! `HH:MM:SS[.ffffff]`, binary as lower-case hex. Pure; the pipeline calls it only for
//! rows the diff picked.

use crate::diff::encode::LOGICAL_TYPE_KEY;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::format::{Item, StrftimeItems};
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// What to do with a NULL in a mapped column (the wire `NullPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NullPolicy {
    #[default]
    SendNull,
    OmitField,
    RejectRecord,
}

impl NullPolicy {
    pub fn from_wire(value: i32) -> Self {
        use backflow_proto::retl::v1::NullPolicy as Wire;
        match Wire::try_from(value) {
            Ok(Wire::OmitField) => Self::OmitField,
            Ok(Wire::RejectRecord) => Self::RejectRecord,
            _ => Self::SendNull,
        }
    }
}

/// One destination field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    Column(String),
    /// Sent as a JSON string.
    Constant(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub destination_field: String,
    pub source: FieldSource,
    pub null_policy: NullPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("the model has no column {0:?} (mapped or part of the primary key)")]
    MissingColumn(String),
    #[error("column {column:?} has type {data_type}, which cannot be sent")]
    UnsupportedType { column: String, data_type: String },
}

/// A row refused by the mapping (null policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
}

/// Maps rows of batches with one schema.
#[derive(Debug, Clone)]
pub struct RecordMapper {
    keys: Vec<(String, usize)>,
    fields: Vec<(FieldSpec, Option<usize>)>,
}

impl RecordMapper {
    /// Resolves columns against `schema`; refuses unknown columns and types.
    pub fn new(
        schema: &Schema,
        key_columns: &[String],
        fields: &[FieldSpec],
    ) -> Result<Self, MapError> {
        let index = |name: &str| -> Result<usize, MapError> {
            let at = schema
                .index_of(name)
                .map_err(|_| MapError::MissingColumn(name.to_string()))?;
            check_type(schema.field(at))?;
            Ok(at)
        };
        let keys = key_columns
            .iter()
            .map(|name| Ok((name.clone(), index(name)?)))
            .collect::<Result<Vec<_>, MapError>>()?;
        let fields = fields
            .iter()
            .map(|spec| {
                let at = match &spec.source {
                    FieldSource::Column(name) => Some(index(name)?),
                    FieldSource::Constant(_) => None,
                };
                Ok((spec.clone(), at))
            })
            .collect::<Result<Vec<_>, MapError>>()?;
        Ok(Self { keys, fields })
    }

    /// The key object of `row`.
    pub fn key(&self, batch: &RecordBatch, row: usize) -> Map<String, Value> {
        let schema = batch.schema();
        self.keys
            .iter()
            .map(|(name, at)| {
                (
                    name.clone(),
                    cell(schema.field(*at), batch.column(*at).as_ref(), row),
                )
            })
            .collect()
    }

    /// The fields object of `row`, or why the row may not be sent.
    pub fn fields(&self, batch: &RecordBatch, row: usize) -> Result<Map<String, Value>, Refusal> {
        let schema = batch.schema();
        let mut out = Map::new();
        for (spec, at) in &self.fields {
            let value = match (&spec.source, at) {
                (FieldSource::Constant(text), _) => Value::String(text.clone()),
                (FieldSource::Column(_), Some(at)) => {
                    cell(schema.field(*at), batch.column(*at).as_ref(), row)
                }
                (FieldSource::Column(name), None) => {
                    return Err(Refusal {
                        reason: format!("column {name:?} is missing"),
                    })
                }
            };
            if value.is_null() {
                match spec.null_policy {
                    NullPolicy::SendNull => {}
                    NullPolicy::OmitField => continue,
                    NullPolicy::RejectRecord => {
                        let column = match &spec.source {
                            FieldSource::Column(name) => name.as_str(),
                            FieldSource::Constant(_) => "",
                        };
                        return Err(Refusal {
                            reason: format!(
                                "column {column:?} (field {:?}) is null and its null policy rejects the record",
                                spec.destination_field
                            ),
                        });
                    }
                }
            }
            out.insert(spec.destination_field.clone(), value);
        }
        Ok(out)
    }
}

fn check_type(field: &Field) -> Result<(), MapError> {
    match field.data_type() {
        DataType::Boolean
        | DataType::Int64
        | DataType::Float64
        | DataType::Decimal128(..)
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Date32
        | DataType::Timestamp(..)
        | DataType::Time64(_)
        | DataType::Binary
        | DataType::LargeBinary => Ok(()),
        other => Err(MapError::UnsupportedType {
            column: field.name().clone(),
            data_type: other.to_string(),
        }),
    }
}

/// `%Y-%m-%d`, parsed once (parsing a strftime string per cell was a tenth of a full
/// sync's CPU in the sync bench's profile).
fn date_items() -> &'static [Item<'static>] {
    static ITEMS: OnceLock<Vec<Item<'static>>> = OnceLock::new();
    ITEMS.get_or_init(|| StrftimeItems::new("%Y-%m-%d").collect())
}

/// `%Y-%m-%dT%H:%M:%S%.f` (fraction: none, 3, 6 or 9 digits), parsed once.
fn timestamp_items() -> &'static [Item<'static>] {
    static ITEMS: OnceLock<Vec<Item<'static>>> = OnceLock::new();
    ITEMS.get_or_init(|| StrftimeItems::new("%Y-%m-%dT%H:%M:%S%.f").collect())
}

/// `at` in `items`, then `suffix`, in one allocation.
fn formatted(at: chrono::NaiveDateTime, items: &[Item<'static>], suffix: &str) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(32);
    let _ = write!(text, "{}", at.format_with_items(items.iter()));
    text.push_str(suffix);
    text
}

/// One cell as JSON (types were checked when the mapper was built; anything else is null).
pub fn cell(field: &Field, array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => {
            serde_json::Number::from_f64(array.as_primitive::<Float64Type>().value(row))
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
        DataType::Decimal128(_, scale) => Value::String(decimal_text(
            array.as_primitive::<Decimal128Type>().value(row),
            *scale,
        )),
        DataType::Utf8 | DataType::LargeUtf8 => {
            let text = if matches!(array.data_type(), DataType::Utf8) {
                array.as_string::<i32>().value(row)
            } else {
                array.as_string::<i64>().value(row)
            };
            let json = field
                .metadata()
                .get(LOGICAL_TYPE_KEY)
                .is_some_and(|logical| logical == "json");
            if json {
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
            } else {
                Value::String(text.to_string())
            }
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
                .map(|at| Value::String(formatted(at.naive_utc(), date_items(), "")))
                .unwrap_or(Value::Null)
        }
        DataType::Timestamp(unit, tz) => {
            let micros = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(row)
                    .saturating_mul(1_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(row)
                    .saturating_mul(1_000),
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => array
                    .as_primitive::<TimestampNanosecondType>()
                    .value(row)
                    .div_euclid(1_000),
            };
            chrono::DateTime::from_timestamp_micros(micros)
                .map(|at| {
                    let zone = if tz.is_some() { "Z" } else { "" };
                    Value::String(formatted(at.naive_utc(), timestamp_items(), zone))
                })
                .unwrap_or(Value::Null)
        }
        DataType::Time64(unit) => {
            let micros = match unit {
                TimeUnit::Nanosecond => {
                    array.as_primitive::<Time64NanosecondType>().value(row) / 1_000
                }
                _ => array.as_primitive::<Time64MicrosecondType>().value(row),
            };
            let seconds = micros.div_euclid(1_000_000);
            let fraction = micros.rem_euclid(1_000_000);
            let (h, m, s) = (seconds / 3600, (seconds / 60) % 60, seconds % 60);
            Value::String(if fraction == 0 {
                format!("{h:02}:{m:02}:{s:02}")
            } else {
                format!("{h:02}:{m:02}:{s:02}.{fraction:06}")
            })
        }
        DataType::Binary => Value::String(hex(array.as_binary::<i32>().value(row))),
        DataType::LargeBinary => Value::String(hex(array.as_binary::<i64>().value(row))),
        _ => Value::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The exact decimal text of an unscaled value at `scale`.
pub fn decimal_text(unscaled: i128, scale: i8) -> String {
    if scale <= 0 {
        let zeros = "0".repeat(usize::from(scale.unsigned_abs()));
        return if unscaled == 0 {
            "0".into()
        } else {
            format!("{unscaled}{zeros}")
        };
    }
    let scale = usize::from(scale.unsigned_abs());
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale - digits.len() + 1))
    } else {
        digits
    };
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{}{whole}.{fraction}", if negative { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
        StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
    };
    use std::collections::HashMap;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let json_field =
            Field::new("attrs", DataType::Utf8, true).with_metadata(HashMap::from([(
                LOGICAL_TYPE_KEY.to_string(),
                "json".to_string(),
            )]));
        let columns: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new("id", DataType::Int64, true),
                Arc::new(Int64Array::from(vec![Some(1), Some(2)])),
            ),
            (
                Field::new("email", DataType::Utf8, true),
                Arc::new(StringArray::from(vec![Some("a@x"), None])),
            ),
            (
                Field::new("score", DataType::Decimal128(6, 2), true),
                Arc::new(
                    Decimal128Array::from(vec![Some(-5), Some(1025)])
                        .with_precision_and_scale(6, 2)
                        .expect("decimal"),
                ),
            ),
            (
                Field::new("ok", DataType::Boolean, true),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false)])),
            ),
            (
                Field::new("ratio", DataType::Float64, true),
                Arc::new(Float64Array::from(vec![Some(0.5), Some(f64::NAN)])),
            ),
            (
                Field::new("day", DataType::Date32, true),
                Arc::new(Date32Array::from(vec![Some(19_723), Some(0)])),
            ),
            (
                Field::new(
                    "at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    true,
                ),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_500_000), Some(0)])
                        .with_timezone("UTC"),
                ),
            ),
            (
                Field::new("t", DataType::Time64(TimeUnit::Microsecond), true),
                Arc::new(Time64MicrosecondArray::from(vec![
                    Some(3_723_000_001),
                    Some(0),
                ])),
            ),
            (
                json_field,
                Arc::new(StringArray::from(vec![
                    Some("{\"a\":[1,2]}"),
                    Some("not json"),
                ])),
            ),
        ];
        let schema = Arc::new(Schema::new(
            columns.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>(),
        ));
        RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect()).expect("batch")
    }

    fn field(name: &str, column: &str, policy: NullPolicy) -> FieldSpec {
        FieldSpec {
            destination_field: name.into(),
            source: FieldSource::Column(column.into()),
            null_policy: policy,
        }
    }

    #[test]
    fn values_become_the_json_a_destination_expects() {
        let batch = batch();
        let names = ["email", "score", "ok", "ratio", "day", "at", "t", "attrs"];
        let mut specs: Vec<FieldSpec> = names
            .iter()
            .map(|n| field(n, n, NullPolicy::SendNull))
            .collect();
        specs.push(FieldSpec {
            destination_field: "source".into(),
            source: FieldSource::Constant("backflow".into()),
            null_policy: NullPolicy::SendNull,
        });
        let mapper = RecordMapper::new(&batch.schema(), &["id".into()], &specs).expect("mapper");
        assert_eq!(
            Value::Object(mapper.key(&batch, 0)),
            serde_json::json!({"id": 1})
        );
        let first = mapper.fields(&batch, 0).expect("fields");
        assert_eq!(
            Value::Object(first),
            serde_json::json!({
                "email": "a@x", "score": "-0.05", "ok": true, "ratio": 0.5, "day": "2024-01-01",
                "at": "1970-01-01T00:00:01.500Z", "t": "01:02:03.000001", "attrs": {"a": [1, 2]},
                "source": "backflow"
            })
        );
        let second = mapper.fields(&batch, 1).expect("fields");
        assert_eq!(second["email"], Value::Null);
        assert_eq!(second["score"], "10.25");
        assert_eq!(second["ratio"], Value::Null);
        assert_eq!(second["at"], "1970-01-01T00:00:00Z");
        assert_eq!(second["t"], "00:00:00");
        assert_eq!(second["attrs"], "not json");
    }

    #[test]
    fn null_policies_send_omit_or_reject() {
        let batch = batch();
        let omit = RecordMapper::new(
            &batch.schema(),
            &["id".into()],
            &[field("e", "email", NullPolicy::OmitField)],
        )
        .expect("mapper");
        assert!(omit.fields(&batch, 1).expect("fields").is_empty());
        assert_eq!(omit.fields(&batch, 0).expect("fields")["e"], "a@x");
        let reject = RecordMapper::new(
            &batch.schema(),
            &["id".into()],
            &[field("e", "email", NullPolicy::RejectRecord)],
        )
        .expect("mapper");
        let refused = reject.fields(&batch, 1).unwrap_err();
        assert!(refused.reason.contains("\"email\""), "{refused:?}");
    }

    #[test]
    fn unknown_columns_are_refused_by_name() {
        let batch = batch();
        let missing = RecordMapper::new(&batch.schema(), &["nope".into()], &[]).unwrap_err();
        assert_eq!(missing, MapError::MissingColumn("nope".into()));
    }

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(decimal_text(150, 2), "1.50");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(0, 2), "0.00");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(decimal_text(7, -2), "700");
    }
}
