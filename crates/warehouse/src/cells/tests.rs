//! Cell parsing per format, with the fixtures' examples
//! (fixtures/wire/snowflake/jsonv2-cell-encoding.json, bigquery cell examples).

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, Time64MicrosecondType,
    TimestampMicrosecondType,
};
use arrow_array::Array;
use arrow_schema::{DataType, TimeUnit};

use super::*;

fn col(name: &str, data_type: DataType) -> Column {
    Column {
        name: name.into(),
        warehouse_type: format!("{data_type}"),
        data_type,
        nullable: true,
    }
}

fn build(data_type: DataType, format: CellFormat, cells: &[Option<&str>]) -> ArrayRef {
    let mut b = CellColumnBuilder::with_format(&col("c", data_type), format).unwrap();
    for c in cells {
        b.push(*c).unwrap();
    }
    b.finish()
}

fn rejects(data_type: DataType, format: CellFormat, cell: &str) {
    let mut b = CellColumnBuilder::with_format(&col("c", data_type), format).unwrap();
    let e = b.push(Some(cell)).unwrap_err();
    assert!(
        matches!(e, WarehouseError::Protocol { ref detail } if detail.starts_with("column \"c\" row 1:") && (cell.len() < 3 || !detail.contains(cell))),
        "{cell:?}: {e:?}"
    );
}

/// The example cell of `type_prefix` in the Snowflake jsonv2 fixture.
fn snowflake_example(type_prefix: &str) -> String {
    let text = include_str!("../../../../fixtures/wire/snowflake/jsonv2-cell-encoding.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    doc["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"].as_str().unwrap().starts_with(type_prefix))
        .unwrap()["example"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn ints() {
    let a = build(
        DataType::Int64,
        CellFormat::Int,
        &[
            Some("42"),
            Some("-7"),
            Some("+3"),
            Some("1.0"),
            None,
            Some("9223372036854775807"),
        ],
    );
    let a = a.as_primitive::<Int64Type>();
    assert_eq!(a.value(0), 42);
    assert_eq!(a.value(1), -7);
    assert_eq!(a.value(2), 3);
    assert_eq!(a.value(3), 1);
    assert!(a.is_null(4));
    assert_eq!(a.value(5), i64::MAX);
    for bad in ["1.5", "", "-", "x", "9223372036854775808", " 1"] {
        rejects(DataType::Int64, CellFormat::Int, bad);
    }
}

#[test]
fn decimals_keep_the_column_scale() {
    // Snowflake FIXED example "1.0", BigQuery NUMERIC "123.450000000".
    let fixed = snowflake_example("FIXED");
    let a = build(
        DataType::Decimal128(38, 2),
        CellFormat::Decimal,
        &[
            Some(&fixed),
            Some("123.45"),
            Some("-0.5"),
            Some("7"),
            Some("1.2E1"),
            None,
        ],
    );
    let a = a.as_primitive::<Decimal128Type>();
    assert_eq!(a.data_type(), &DataType::Decimal128(38, 2));
    let values: Vec<_> = (0..5).map(|i| a.value(i)).collect();
    assert_eq!(values, [100, 12345, -50, 700, 1200]);
    assert!(a.is_null(5));
    let a = build(
        DataType::Decimal128(38, 9),
        CellFormat::Decimal,
        &[Some("123.450000000")],
    );
    assert_eq!(a.as_primitive::<Decimal128Type>().value(0), 123_450_000_000);
    // Scale 0 accepts a zero fraction (NUMBER(38,0) cells).
    let a = build(
        DataType::Decimal128(38, 0),
        CellFormat::Decimal,
        &[Some("12.000")],
    );
    assert_eq!(a.as_primitive::<Decimal128Type>().value(0), 12);
    // Losing digits or precision is an error, never a rounding.
    rejects(DataType::Decimal128(38, 2), CellFormat::Decimal, "1.234");
    rejects(DataType::Decimal128(3, 2), CellFormat::Decimal, "10.00");
    rejects(DataType::Decimal128(38, 2), CellFormat::Decimal, "1,5");
    rejects(DataType::Decimal128(38, 2), CellFormat::Decimal, ".");
}

#[test]
fn floats_with_special_spellings() {
    let real = snowflake_example("REAL");
    let a = build(
        DataType::Float64,
        CellFormat::Float,
        &[
            Some(&real),
            Some("1"),
            Some("-2.5e-3"),
            Some("NaN"),
            Some("inf"),
            Some("-inf"),
            Some("Infinity"),
            Some("-Infinity"),
        ],
    );
    let a = a.as_primitive::<Float64Type>();
    assert_eq!(a.value(0), 1.5);
    assert_eq!(a.value(1), 1.0);
    assert_eq!(a.value(2), -0.0025);
    assert!(a.value(3).is_nan());
    assert_eq!(a.value(4), f64::INFINITY);
    assert_eq!(a.value(5), f64::NEG_INFINITY);
    assert_eq!(a.value(6), f64::INFINITY);
    assert_eq!(a.value(7), f64::NEG_INFINITY);
    rejects(DataType::Float64, CellFormat::Float, "one");
}

#[test]
fn bools() {
    let t = snowflake_example("BOOLEAN");
    let a = build(
        DataType::Boolean,
        CellFormat::Bool,
        &[Some(&t), Some("false"), Some("TRUE"), None],
    );
    let a = a.as_boolean();
    assert!(a.value(0) && !a.value(1) && a.value(2) && a.is_null(3));
    rejects(DataType::Boolean, CellFormat::Bool, "1");
    rejects(DataType::Boolean, CellFormat::Bool, "yes");
}

#[test]
fn dates() {
    // Snowflake: days since the epoch; "18262" is 2020-01-01.
    let days = snowflake_example("DATE");
    let a = build(
        DataType::Date32,
        CellFormat::DateEpochDays,
        &[Some(&days), Some("-1")],
    );
    let a = a.as_primitive::<Date32Type>();
    assert_eq!(a.value(0), 18262);
    assert_eq!(a.value(1), -1);
    let a = build(
        DataType::Date32,
        CellFormat::DateIso,
        &[Some("2020-01-01"), Some("2024-01-31"), Some("1969-12-31")],
    );
    let a = a.as_primitive::<Date32Type>();
    assert_eq!(a.value(0), 18262);
    assert_eq!(a.value(1), 19753);
    assert_eq!(a.value(2), -1);
    rejects(DataType::Date32, CellFormat::DateIso, "2024-02-30");
    rejects(DataType::Date32, CellFormat::DateEpochDays, "2020-01-01");
}

fn ts(tz: Option<&str>) -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, tz.map(Into::into))
}

#[test]
fn snowflake_timestamps() {
    // NTZ / LTZ: seconds with nine decimals.
    let ntz = snowflake_example("TIME / TIMESTAMP_LTZ");
    let a = build(
        ts(None),
        CellFormat::EpochSeconds,
        &[
            Some(&ntz),
            Some("1616173619.123456789"),
            Some("-1.500000000"),
            Some("0"),
        ],
    );
    let a = a.as_primitive::<TimestampMicrosecondType>();
    assert_eq!(a.value(0), 82_919_000_000);
    assert_eq!(a.value(1), 1_616_173_619_123_456);
    assert_eq!(a.value(2), -1_500_000);
    assert_eq!(a.value(3), 0);
    // TZ: the instant is kept; "1500" is +01:00 (1500 - 1440 = 60 minutes).
    let tz = snowflake_example("TIMESTAMP_TZ");
    let a = build(
        ts(Some("UTC")),
        CellFormat::EpochSecondsWithOffset,
        &[Some(&tz), Some("1616173619.000000000 0")],
    );
    assert_eq!(a.data_type(), &ts(Some("UTC")));
    let a = a.as_primitive::<TimestampMicrosecondType>();
    assert_eq!(a.value(0), 1_616_173_619_000_000);
    assert_eq!(a.value(1), 1_616_173_619_000_000);
    rejects(
        ts(Some("UTC")),
        CellFormat::EpochSecondsWithOffset,
        "1616173619.0 2881",
    );
    rejects(
        ts(Some("UTC")),
        CellFormat::EpochSecondsWithOffset,
        "1616173619.0",
    );
    rejects(ts(None), CellFormat::EpochSeconds, "2021-03-19 17:06:59");
}

#[test]
fn iso_and_micros_timestamps() {
    let a = build(
        ts(None),
        CellFormat::TimestampIso,
        &[
            Some("2024-01-31T12:34:56.789000"),
            Some("2024-01-31 12:34:56"),
            Some("2024-01-31T12:34:56.789123456Z"),
            Some("2024-01-31T13:34:56.789+01:00"),
            Some("2024-01-31T11:34:56.789-0100"),
            Some("2024-01-31T14:34:56.789+02"),
        ],
    );
    let a = a.as_primitive::<TimestampMicrosecondType>();
    let base = 1_706_704_496_000_000;
    assert_eq!(a.value(0), base + 789_000);
    assert_eq!(a.value(1), base);
    assert_eq!(a.value(2), base + 789_123);
    for i in 3..6 {
        assert_eq!(a.value(i), base + 789_000, "row {i}");
    }
    // BigQuery TIMESTAMP with useInt64Timestamp; and its default float seconds.
    let a = build(
        ts(Some("UTC")),
        CellFormat::EpochMicros,
        &[Some("1706704496789000")],
    );
    assert_eq!(
        a.as_primitive::<TimestampMicrosecondType>().value(0),
        base + 789_000
    );
    let a = build(
        ts(Some("UTC")),
        CellFormat::EpochSeconds,
        &[Some("1.706704496789E9")],
    );
    assert_eq!(
        a.as_primitive::<TimestampMicrosecondType>().value(0),
        base + 789_000
    );
    rejects(
        ts(None),
        CellFormat::TimestampIso,
        "2024-01-31T12:34:56+25:00",
    );
    rejects(ts(None), CellFormat::TimestampIso, "yesterday");
}

#[test]
fn times() {
    let a = build(
        DataType::Time64(TimeUnit::Microsecond),
        CellFormat::TimeSeconds,
        &[Some(&snowflake_example("TIME")), Some("0.000001000")],
    );
    let a = a.as_primitive::<Time64MicrosecondType>();
    assert_eq!(a.value(0), 82_919_000_000); // 23:01:59
    assert_eq!(a.value(1), 1);
    rejects(
        DataType::Time64(TimeUnit::Microsecond),
        CellFormat::TimeSeconds,
        "86400.0",
    );
    let a = build(
        DataType::Time64(TimeUnit::Microsecond),
        CellFormat::TimeIso,
        &[Some("23:01:59"), Some("00:00:01.5")],
    );
    let a = a.as_primitive::<Time64MicrosecondType>();
    assert_eq!(a.value(0), 82_919_000_000);
    assert_eq!(a.value(1), 1_500_000);
}

#[test]
fn binary() {
    let hex = snowflake_example("BINARY");
    let a = build(
        DataType::Binary,
        CellFormat::BinaryHex,
        &[Some(&hex), Some("00ff")],
    );
    let a = a.as_binary::<i32>();
    assert_eq!(a.value(0), b"HELLO");
    assert_eq!(a.value(1), [0u8, 255]);
    let a = build(
        DataType::Binary,
        CellFormat::BinaryBase64,
        &[Some("aGVsbG8=")],
    );
    assert_eq!(a.as_binary::<i32>().value(0), b"hello");
    rejects(DataType::Binary, CellFormat::BinaryHex, "xyz");
    rejects(DataType::Binary, CellFormat::BinaryBase64, "***");
}

#[test]
fn text_and_json() {
    let text = snowflake_example("TEXT");
    let a = build(DataType::Utf8, CellFormat::Text, &[Some(&text), None]);
    let a = a.as_string::<i32>();
    assert_eq!(a.value(0), "customer1");
    assert!(a.is_null(1));
    let c = col("v", DataType::Utf8);
    let f = field(&c, CellFormat::Json);
    assert_eq!(
        f.metadata().get(LOGICAL_TYPE_KEY).map(String::as_str),
        Some("json")
    );
    assert!(field(&c, CellFormat::Text).metadata().is_empty());
}

#[test]
fn format_must_fit_the_type() {
    let e = CellColumnBuilder::with_format(&col("c", DataType::Int64), CellFormat::DateIso)
        .unwrap_err();
    assert!(matches!(e, WarehouseError::UnsupportedType { ref column, .. } if column == "c"));
    let e = CellColumnBuilder::new(&col("c", DataType::Int8)).unwrap_err();
    assert!(matches!(e, WarehouseError::UnsupportedType { .. }));
    // new() picks the ISO spelling.
    let mut b = CellColumnBuilder::new(&col("c", DataType::Date32)).unwrap();
    b.push(Some("2020-01-01")).unwrap();
    assert_eq!(b.finish().as_primitive::<Date32Type>().value(0), 18262);
}

#[test]
fn batches_reuse_builders_and_count_rows_across_batches() {
    let cols = [
        (col("id", DataType::Decimal128(38, 0)), CellFormat::Decimal),
        (col("doc", DataType::Utf8), CellFormat::Json),
    ];
    let mut b = CellBatchBuilder::new(&cols).unwrap();
    b.push_row(&[Some("1"), Some("{\"a\":1}")]).unwrap();
    b.push_row(&[Some("2"), None::<&str>]).unwrap();
    let first = b.finish().unwrap();
    assert_eq!(first.num_rows(), 2);
    assert_eq!(
        first
            .schema()
            .field(1)
            .metadata()
            .get(LOGICAL_TYPE_KEY)
            .map(String::as_str),
        Some("json")
    );
    assert!(b.is_empty());
    b.push_row(&[Some("3"), Some("[]")]).unwrap();
    let second = b.finish().unwrap();
    assert_eq!(second.num_rows(), 1);
    assert_eq!(
        second.column(0).as_primitive::<Decimal128Type>().value(0),
        3
    );
    // Row numbers continue across batches.
    let e = b.push_row(&[Some("x"), None::<&str>]).unwrap_err();
    assert!(matches!(e, WarehouseError::Protocol { ref detail } if detail.contains("row 4")));
    let e = b.push_row(&[Some("1")]).unwrap_err();
    assert!(matches!(e, WarehouseError::Protocol { .. }));
    // Zero columns still give a batch with the row count.
    let mut empty = CellBatchBuilder::new(&[]).unwrap();
    empty.push_row::<&str>(&[]).unwrap();
    assert_eq!(empty.finish().unwrap().num_rows(), 1);
}
