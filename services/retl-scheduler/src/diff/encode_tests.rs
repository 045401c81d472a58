//! Tests of the canonical encoding: equal values hash equally whatever the batching,
//! and the cases a sloppy encoding would merge stay apart.

use super::*;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    StringArray, Time64MicrosecondArray, TimestampMicrosecondArray, TimestampNanosecondArray,
};
use arrow_schema::Schema;
use std::collections::HashMap;
use std::sync::Arc;

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap_or_else(|e| panic!("{e}"))
}

fn spec(keys: &[&str], mapped: &[&str]) -> RowSpec {
    RowSpec {
        key_columns: keys.iter().map(|s| s.to_string()).collect(),
        mapped_columns: mapped.iter().map(|s| s.to_string()).collect(),
    }
}

fn hashes(batch: &RecordBatch, spec: RowSpec) -> BatchHashes {
    let mut hasher = RowHasher::new(spec).unwrap_or_else(|e| panic!("{e}"));
    let mut out = BatchHashes::default();
    hasher
        .hash_batch(batch, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    out
}

/// Row hash of a one-column, one-row batch.
fn one(array: ArrayRef) -> u64 {
    let b = batch(vec![
        ("k", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ("v", array),
    ]);
    hashes(&b, spec(&["k"], &["v"])).rows[0]
}

fn encoded(array: ArrayRef) -> Vec<u8> {
    let b = batch(vec![("v", array)]);
    let mut encoder = RowEncoder::default();
    encoder.encode(&b, &[0]).unwrap_or_else(|e| panic!("{e}"));
    encoder.row(0).to_vec()
}

fn wide_batch(range: std::ops::Range<i64>) -> RecordBatch {
    let ids: Vec<i64> = range.clone().collect();
    batch(vec![
        ("id", Arc::new(Int64Array::from(ids.clone())) as ArrayRef),
        (
            "email",
            Arc::new(StringArray::from_iter(
                ids.iter()
                    .map(|i| (i % 7 != 0).then(|| format!("user{i}@example.com"))),
            )),
        ),
        (
            "score",
            Arc::new(Float64Array::from_iter(
                ids.iter().map(|i| (i % 5 != 0).then_some(*i as f64 / 3.0)),
            )),
        ),
        (
            "amount",
            Arc::new(
                Decimal128Array::from_iter(
                    ids.iter()
                        .map(|i| (i % 3 != 0).then_some(i128::from(*i) * 101)),
                )
                .with_precision_and_scale(12, 2)
                .unwrap_or_else(|e| panic!("{e}")),
            ),
        ),
        (
            "seen_at",
            Arc::new(
                TimestampMicrosecondArray::from(
                    ids.iter().map(|i| i * 1_000_003).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        ),
        (
            "active",
            Arc::new(BooleanArray::from_iter(
                ids.iter().map(|i| Some(i % 2 == 0)),
            )),
        ),
    ])
}

#[test]
fn hashes_do_not_depend_on_batch_boundaries_or_sizes() {
    let spec = spec(&["id"], &["email", "score", "amount", "seen_at", "active"]);
    let whole = hashes(&wide_batch(0..1000), spec.clone());
    let mut by_key: HashMap<u64, u64> = HashMap::new();
    for (key, row) in whole.keys.iter().zip(&whole.rows) {
        by_key.insert(*key, *row);
    }
    assert_eq!(by_key.len(), 1000, "key hashes are distinct");
    for size in [1i64, 7, 333, 1000] {
        let mut hasher = RowHasher::new(spec.clone()).unwrap_or_else(|e| panic!("{e}"));
        let mut out = BatchHashes::default();
        let mut start = 0;
        while start < 1000 {
            let end = (start + size).min(1000);
            // Slices as well as fresh batches: offsets into shared buffers must not matter.
            let fresh = wide_batch(start..end);
            let sliced = wide_batch(0..1000).slice(start as usize, (end - start) as usize);
            for part in [fresh, sliced] {
                hasher
                    .hash_batch(&part, &mut out)
                    .unwrap_or_else(|e| panic!("{e}"));
                for (key, row) in out.keys.iter().zip(&out.rows) {
                    assert_eq!(by_key.get(key), Some(row), "size {size}");
                }
            }
            start = end;
        }
    }
}

#[test]
fn null_differs_from_empty_string_and_zero() {
    let null = one(Arc::new(StringArray::from(vec![None::<&str>])));
    let empty = one(Arc::new(StringArray::from(vec![Some("")])));
    let zero = one(Arc::new(Int64Array::from(vec![0])));
    assert_ne!(null, empty);
    assert_ne!(null, zero);
    assert_eq!(
        encoded(Arc::new(StringArray::from(vec![None::<&str>]))),
        vec![TAG_NULL]
    );
    assert_eq!(
        encoded(Arc::new(StringArray::from(vec![Some("")]))),
        vec![TAG_TEXT, 0, 0, 0, 0]
    );
}

#[test]
fn the_type_is_part_of_the_value() {
    let int = one(Arc::new(Int64Array::from(vec![1])));
    let float = one(Arc::new(Float64Array::from(vec![1.0])));
    let text = one(Arc::new(StringArray::from(vec!["1"])));
    let decimal = one(Arc::new(
        Decimal128Array::from(vec![1])
            .with_precision_and_scale(10, 0)
            .unwrap_or_else(|e| panic!("{e}")),
    ));
    let all = [int, float, text, decimal];
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }
    let json_field = Field::new("v", DataType::Utf8, true).with_metadata(HashMap::from([(
        LOGICAL_TYPE_KEY.to_string(),
        "json".to_string(),
    )]));
    let json_batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![json_field])),
        vec![Arc::new(StringArray::from(vec!["1"])) as ArrayRef],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut encoder = RowEncoder::default();
    encoder
        .encode(&json_batch, &[0])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(encoder.row(0), &[TAG_JSON, 1, 0, 0, 0, b'1']);
}

#[test]
fn floats_are_canonical() {
    let zero = one(Arc::new(Float64Array::from(vec![0.0])));
    let negative_zero = one(Arc::new(Float64Array::from(vec![-0.0])));
    assert_eq!(zero, negative_zero);
    let nan = one(Arc::new(Float64Array::from(vec![f64::NAN])));
    let other_nan = one(Arc::new(Float64Array::from(vec![f64::from_bits(
        0xfff8_0000_0000_0001,
    )])));
    assert_eq!(nan, other_nan);
    assert_ne!(nan, zero);
}

#[test]
fn decimals_hash_by_value_and_scale_not_precision() {
    let dec = |value: i128, p: u8, s: i8| {
        one(Arc::new(
            Decimal128Array::from(vec![value])
                .with_precision_and_scale(p, s)
                .unwrap_or_else(|e| panic!("{e}")),
        ))
    };
    assert_eq!(dec(150, 10, 2), dec(150, 12, 2));
    assert_ne!(dec(150, 10, 2), dec(15, 10, 1));
    assert_ne!(dec(150, 10, 2), dec(150, 10, 3));
}

#[test]
fn timestamps_are_microseconds_and_keep_the_zone_kind() {
    let micros = one(Arc::new(TimestampMicrosecondArray::from(vec![1_500_000])));
    let nanos = one(Arc::new(TimestampNanosecondArray::from(vec![
        1_500_000_999,
    ])));
    assert_eq!(micros, nanos, "nanoseconds floor to microseconds");
    let utc = one(Arc::new(
        TimestampMicrosecondArray::from(vec![1_500_000]).with_timezone("UTC"),
    ));
    let paris = one(Arc::new(
        TimestampMicrosecondArray::from(vec![1_500_000]).with_timezone("Europe/Paris"),
    ));
    assert_eq!(utc, paris, "an instant is an instant");
    assert_ne!(utc, micros, "local and zoned timestamps differ");
    let time = one(Arc::new(Time64MicrosecondArray::from(vec![1_500_000])));
    assert_ne!(time, micros);
    let date = one(Arc::new(Date32Array::from(vec![3])));
    assert_ne!(date, one(Arc::new(Int64Array::from(vec![3]))));
    let bytes = one(Arc::new(BinaryArray::from(vec![&b"1"[..]])));
    assert_ne!(bytes, one(Arc::new(StringArray::from(vec!["1"]))));
}

#[test]
fn mapping_order_and_value_boundaries_matter() {
    let b = batch(vec![
        ("k", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ("a", Arc::new(StringArray::from(vec!["ab"]))),
        ("b", Arc::new(StringArray::from(vec!["c"]))),
        ("c", Arc::new(StringArray::from(vec!["a"]))),
        ("d", Arc::new(StringArray::from(vec!["bc"]))),
    ]);
    let ab = hashes(&b, spec(&["k"], &["a", "b"])).rows[0];
    let ba = hashes(&b, spec(&["k"], &["b", "a"])).rows[0];
    let cd = hashes(&b, spec(&["k"], &["c", "d"])).rows[0];
    assert_ne!(ab, ba, "column order of the mapping");
    assert_ne!(ab, cd, "\"ab\",\"c\" is not \"a\",\"bc\"");
}

#[test]
fn null_keys_are_reported_with_their_column() {
    let b = batch(vec![
        (
            "a",
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None])) as ArrayRef,
        ),
        (
            "b",
            Arc::new(StringArray::from(vec![Some("x"), None, None])),
        ),
    ]);
    let out = hashes(&b, spec(&["a", "b"], &["a"]));
    assert_eq!(
        out.null_keys,
        vec![
            NullKey {
                row: 1,
                key_column: 1
            },
            NullKey {
                row: 2,
                key_column: 0
            }
        ]
    );
    assert_eq!(out.keys[1], 0);
    assert_ne!(out.keys[0], 0);
}

#[test]
fn unknown_columns_and_types_are_errors() {
    let b = batch(vec![
        ("k", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ("small", Arc::new(arrow_array::Int32Array::from(vec![1]))),
    ]);
    let mut hasher = RowHasher::new(spec(&["k"], &["small"])).unwrap_or_else(|e| panic!("{e}"));
    let mut out = BatchHashes::default();
    assert!(matches!(
        hasher.hash_batch(&b, &mut out),
        Err(DiffError::UnsupportedType { column, .. }) if column == "small"
    ));
    let mut hasher = RowHasher::new(spec(&["k"], &["nope"])).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(hasher.hash_batch(&b, &mut out), Err(DiffError::MissingColumn(c)) if c == "nope")
    );
    assert!(matches!(
        RowHasher::new(spec(&[], &["k"])),
        Err(DiffError::NoKeyColumns)
    ));
}
