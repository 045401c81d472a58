//! From an extracted row to what a destination receives: the key object (primary-key
//! columns by source name, in key order) and the fields object (the sync's field mapping:
//! a column or a constant per destination field, in mapping order, with a null policy per
//! field), as JSON text written straight from the batch's columns (`cells`).
//!
//! Arrow values become JSON as a destination expects them, never silently lossy:
//! booleans, 64-bit integers and floats as numbers (a NaN or infinity as null), decimals
//! as their exact text (`"10.25"`), text as strings, JSON-logical text parsed, dates as
//! `YYYY-MM-DD`, timestamps as ISO 8601 (`…Z` when the column has a time zone), times as
//! `HH:MM:SS[.ffffff]`, binary as lower-case hex. Pure; the pipeline calls it only for
//! rows the diff picked.

mod cells;

use crate::destinations::JsonObject;
use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema};
use cells::CellColumn;

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

/// One member of an output object: its `"name":` prefix, ready to copy.
#[derive(Debug, Clone)]
struct Member {
    prefix: Vec<u8>,
    source: Source,
    null_policy: NullPolicy,
    /// Why a NULL is refused (RejectRecord), worded once.
    refusal: String,
}

#[derive(Debug, Clone)]
enum Source {
    Column(usize),
    /// The constant as a JSON string literal.
    Constant(Vec<u8>),
}

fn member_prefix(name: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(name.len() + 3);
    cells::push_str(&mut prefix, name);
    prefix.push(b':');
    prefix
}

/// Maps rows of batches with one schema.
#[derive(Debug, Clone)]
pub struct RecordMapper {
    keys: Vec<Member>,
    fields: Vec<Member>,
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
            .map(|name| {
                Ok(Member {
                    prefix: member_prefix(name),
                    source: Source::Column(index(name)?),
                    null_policy: NullPolicy::SendNull,
                    refusal: String::new(),
                })
            })
            .collect::<Result<Vec<_>, MapError>>()?;
        let mut members: Vec<Member> = Vec::with_capacity(fields.len());
        for (at, spec) in fields.iter().enumerate() {
            // A field mapped twice (refused when syncs are saved) keeps its last mapping.
            if fields[at + 1..]
                .iter()
                .any(|later| later.destination_field == spec.destination_field)
            {
                continue;
            }
            let (source, column) = match &spec.source {
                FieldSource::Column(name) => (Source::Column(index(name)?), name.as_str()),
                FieldSource::Constant(text) => {
                    let mut literal = Vec::with_capacity(text.len() + 2);
                    cells::push_str(&mut literal, text);
                    (Source::Constant(literal), "")
                }
            };
            members.push(Member {
                prefix: member_prefix(&spec.destination_field),
                source,
                null_policy: spec.null_policy,
                refusal: format!(
                    "column {column:?} (field {:?}) is null and its null policy rejects the record",
                    spec.destination_field
                ),
            });
        }
        Ok(Self {
            keys,
            fields: members,
        })
    }

    /// The columns of `batch` this mapper reads, downcast once for all its rows.
    pub fn rows<'a>(&'a self, batch: &'a RecordBatch) -> MappedRows<'a> {
        let schema = batch.schema_ref();
        let column = |member: &Member| match member.source {
            Source::Column(at) => {
                Some(CellColumn::new(schema.field(at), batch.column(at).as_ref()))
            }
            Source::Constant(_) => None,
        };
        MappedRows {
            keys: self.keys.iter().map(column).collect(),
            fields: self.fields.iter().map(column).collect(),
            mapper: self,
        }
    }

    /// The key object of `row`.
    pub fn key(&self, batch: &RecordBatch, row: usize) -> JsonObject {
        let mut out = Vec::with_capacity(32);
        self.rows(batch).key_into(row, &mut out);
        encoded(out)
    }

    /// The fields object of `row`, or why the row may not be sent.
    pub fn fields(&self, batch: &RecordBatch, row: usize) -> Result<JsonObject, Refusal> {
        let mut out = Vec::with_capacity(256);
        self.rows(batch).fields_into(row, &mut out)?;
        Ok(encoded(out))
    }
}

/// Text the mapping wrote (always UTF-8: serde_json strings and ASCII).
fn encoded(bytes: Vec<u8>) -> JsonObject {
    String::from_utf8(bytes)
        .map(|text| JsonObject::from_encoded(text.into_boxed_str()))
        .unwrap_or_default()
}

/// One batch's columns, as the mapper reads them.
pub struct MappedRows<'a> {
    mapper: &'a RecordMapper,
    keys: Vec<Option<CellColumn<'a>>>,
    fields: Vec<Option<CellColumn<'a>>>,
}

impl MappedRows<'_> {
    /// Appends the key object of `row` to `out`.
    pub fn key_into(&self, row: usize, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (member, column)) in self.mapper.keys.iter().zip(&self.keys).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&member.prefix);
            match column {
                Some(column) => {
                    column.write(row, out);
                }
                None => out.extend_from_slice(b"null"),
            }
        }
        out.push(b'}');
    }

    /// Appends the fields object of `row` to `out`, or says why the row may not be sent
    /// (`out` then holds a partial object: the caller discards it).
    pub fn fields_into(&self, row: usize, out: &mut Vec<u8>) -> Result<(), Refusal> {
        out.push(b'{');
        let mut first = true;
        for (member, column) in self.mapper.fields.iter().zip(&self.fields) {
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(&member.prefix);
            let null = match (&member.source, column) {
                (Source::Constant(literal), _) => {
                    out.extend_from_slice(literal);
                    false
                }
                (Source::Column(_), Some(column)) => column.write(row, out),
                (Source::Column(_), None) => {
                    out.extend_from_slice(b"null");
                    true
                }
            };
            if null {
                match member.null_policy {
                    NullPolicy::SendNull => {}
                    NullPolicy::OmitField => {
                        out.truncate(mark);
                        continue;
                    }
                    NullPolicy::RejectRecord => {
                        return Err(Refusal {
                            reason: member.refusal.clone(),
                        })
                    }
                }
            }
            first = false;
        }
        out.push(b'}');
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::encode::LOGICAL_TYPE_KEY;
    use arrow_array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
        StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
    };
    use arrow_schema::TimeUnit;
    use serde_json::Value;
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
        assert_eq!(mapper.key(&batch, 0).as_str(), r#"{"id":1}"#);
        let first = mapper.fields(&batch, 0).expect("fields");
        assert!(
            first
                .as_str()
                .starts_with(r#"{"email":"a@x","score":"-0.05","#),
            "{first:?}"
        );
        assert_eq!(
            Value::Object(first.to_map()),
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
    fn json_null_and_nan_follow_the_null_policy() {
        let batch = batch();
        let reject = RecordMapper::new(
            &batch.schema(),
            &["id".into()],
            &[field("r", "ratio", NullPolicy::RejectRecord)],
        )
        .expect("mapper");
        assert!(reject.fields(&batch, 0).is_ok());
        assert!(reject.fields(&batch, 1).is_err());
        let omit = RecordMapper::new(
            &batch.schema(),
            &["id".into()],
            &[
                field("a", "email", NullPolicy::OmitField),
                field("b", "ok", NullPolicy::SendNull),
                field("c", "email", NullPolicy::OmitField),
            ],
        )
        .expect("mapper");
        assert_eq!(
            omit.fields(&batch, 1).expect("fields").as_str(),
            r#"{"b":false}"#
        );
        assert_eq!(
            omit.fields(&batch, 0).expect("fields").as_str(),
            r#"{"a":"a@x","b":true,"c":"a@x"}"#
        );
    }
}
