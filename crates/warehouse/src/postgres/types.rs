//! PostgreSQL (and Redshift) types → the canonical Arrow types, and how each column is
//! read: decoded from the binary wire format as is, or cast to text (or JSON) in the
//! wrapping `select` when Arrow has no better home for it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::types::LOGICAL_TYPE_KEY;
use crate::Column;

/// Type OIDs that are decoded from their binary form.
pub(crate) mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
    /// Redshift's SUPER.
    pub const REDSHIFT_SUPER: u32 = 4000;
}

/// How one binary value becomes an Arrow value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoder {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    /// numeric(p,s), p ≤ 38 → Decimal128(p, s).
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// numeric without a usable precision → its exact decimal text.
    NumericText,
    /// UTF-8 bytes: text, varchar, char, name, json, and every column cast to text.
    Text,
    Jsonb,
    Uuid,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Bytea,
}

/// What the wrapping `select` does to a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Select {
    AsIs,
    /// `col::text` (Postgres) / `col::varchar(max)` (Redshift).
    Text,
    /// `to_json(col)::text` (Postgres arrays and composites).
    ToJson,
    /// `json_serialize(col)` (Redshift SUPER).
    JsonSerialize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnPlan {
    pub column: Column,
    pub decoder: Decoder,
    pub select: Select,
    pub json: bool,
    /// The PostgreSQL type OID.
    pub oid: u32,
    /// The table column a query column reads as is (table OID, attribute number), as the
    /// server's `RowDescription` says; `None` for relations and computed columns.
    pub origin: Option<(u32, i16)>,
}

/// What the catalog says about a column's type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TypeFacts<'a> {
    pub oid: u32,
    /// -1 when unknown.
    pub typmod: i32,
    /// `pg_type.typname` (or sqlx's name for it), lower case.
    pub name: &'a str,
    pub is_array: bool,
    pub is_composite: bool,
}

pub(crate) fn plan_column(
    name: &str,
    warehouse_type: String,
    nullable: bool,
    facts: TypeFacts<'_>,
) -> ColumnPlan {
    let (decoder, select, json) = classify(facts);
    let data_type = data_type(decoder);
    ColumnPlan {
        column: Column {
            name: name.to_string(),
            warehouse_type,
            data_type,
            nullable,
        },
        decoder,
        select,
        json,
        oid: facts.oid,
        origin: None,
    }
}

fn classify(f: TypeFacts<'_>) -> (Decoder, Select, bool) {
    use Decoder as D;
    let plain = |d| (d, Select::AsIs, false);
    match f.oid {
        oid::BOOL => plain(D::Bool),
        oid::INT2 => plain(D::Int2),
        oid::INT4 => plain(D::Int4),
        oid::INT8 => plain(D::Int8),
        oid::OID => plain(D::Oid),
        oid::FLOAT4 => plain(D::Float4),
        oid::FLOAT8 => plain(D::Float8),
        oid::NUMERIC => plain(numeric_decoder(f.typmod)),
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::CHAR | oid::UNKNOWN => {
            plain(D::Text)
        }
        oid::UUID => plain(D::Uuid),
        oid::JSON => (D::Text, Select::AsIs, true),
        oid::JSONB => (D::Jsonb, Select::AsIs, true),
        oid::DATE => plain(D::Date),
        oid::TIMESTAMP => plain(D::Timestamp),
        oid::TIMESTAMPTZ => plain(D::TimestampTz),
        oid::TIME => plain(D::Time),
        oid::BYTEA => plain(D::Bytea),
        oid::REDSHIFT_SUPER => (D::Text, Select::JsonSerialize, true),
        _ if f.name == "super" => (D::Text, Select::JsonSerialize, true),
        _ if f.is_array || f.is_composite => (D::Text, Select::ToJson, true),
        _ => (D::Text, Select::Text, false),
    }
}

/// numeric's typmod is `((precision << 16) | scale) + 4`; the scale is an 11-bit signed
/// number since PostgreSQL 15.
pub(crate) fn numeric_decoder(typmod: i32) -> Decoder {
    if typmod < 4 {
        return Decoder::NumericText;
    }
    let t = typmod - 4;
    let precision = (t >> 16) & 0xffff;
    let scale = ((t & 0x7ff) ^ 1024) - 1024;
    decimal_or_text(precision, scale)
}

pub(crate) fn decimal_or_text(precision: i32, scale: i32) -> Decoder {
    if (1..=38).contains(&precision) && (0..=precision).contains(&scale) {
        Decoder::Decimal {
            precision: precision as u8,
            scale: scale as i8,
        }
    } else {
        Decoder::NumericText
    }
}

pub(crate) fn data_type(decoder: Decoder) -> DataType {
    use Decoder as D;
    match decoder {
        D::Bool => DataType::Boolean,
        D::Int2 | D::Int4 | D::Int8 | D::Oid => DataType::Int64,
        D::Float4 | D::Float8 => DataType::Float64,
        D::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
        D::NumericText | D::Text | D::Jsonb | D::Uuid => DataType::Utf8,
        D::Date => DataType::Date32,
        D::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        D::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        D::Time => DataType::Time64(TimeUnit::Microsecond),
        D::Bytea => DataType::Binary,
    }
}

/// The Arrow schema of a plan (JSON columns carry `backflow.logical = json`).
pub(crate) fn schema(plans: &[ColumnPlan]) -> SchemaRef {
    let fields: Vec<Field> = plans
        .iter()
        .map(|p| {
            let field = Field::new(
                &p.column.name,
                p.column.data_type.clone(),
                p.column.nullable,
            );
            if p.json {
                field.with_metadata(HashMap::from([(
                    LOGICAL_TYPE_KEY.to_string(),
                    "json".to_string(),
                )]))
            } else {
                field
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(oid: u32, typmod: i32) -> TypeFacts<'static> {
        TypeFacts {
            oid,
            typmod,
            name: "",
            is_array: false,
            is_composite: false,
        }
    }

    #[test]
    fn numeric_typmods_decide_decimal_or_text() {
        // numeric(12,2)
        assert_eq!(
            numeric_decoder((12 << 16 | 2) + 4),
            Decoder::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(numeric_decoder(-1), Decoder::NumericText);
        assert_eq!(numeric_decoder((39 << 16) + 4), Decoder::NumericText);
        // numeric(5,-2) (PostgreSQL 15): the scale is negative
        assert_eq!(
            numeric_decoder((5 << 16 | (0x7ff & -2)) + 4),
            Decoder::NumericText
        );
    }

    #[test]
    fn types_without_a_binary_decoder_are_cast() {
        let p = plan_column("i", "interval".into(), true, facts(1186, -1));
        assert_eq!(
            (p.decoder, p.select, p.column.data_type),
            (Decoder::Text, Select::Text, DataType::Utf8)
        );
        let mut f = facts(1007, -1);
        f.is_array = true;
        let p = plan_column("a", "integer[]".into(), true, f);
        assert_eq!((p.select, p.json), (Select::ToJson, true));
        let p = plan_column("s", "super".into(), true, facts(oid::REDSHIFT_SUPER, -1));
        assert_eq!((p.select, p.json), (Select::JsonSerialize, true));
    }

    #[test]
    fn json_fields_carry_the_logical_type() {
        let p = plan_column("j", "jsonb".into(), true, facts(oid::JSONB, -1));
        let s = schema(&[p]);
        assert_eq!(
            s.field(0)
                .metadata()
                .get(LOGICAL_TYPE_KEY)
                .map(String::as_str),
            Some("json")
        );
    }
}
