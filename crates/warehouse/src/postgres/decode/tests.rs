use super::*;

/// Binary numeric from (weight, sign, dscale, digits).
fn num(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend((digits.len() as u16).to_be_bytes());
    v.extend(weight.to_be_bytes());
    v.extend(sign.to_be_bytes());
    v.extend(dscale.to_be_bytes());
    for d in digits {
        v.extend(d.to_be_bytes());
    }
    v
}

#[test]
fn numeric_to_decimal_and_text() {
    // 12345.67 = [1, 2345, 6700] weight 1, dscale 2
    let v = num(1, 0, 2, &[1, 2345, 6700]);
    assert_eq!(numeric::to_i128(&v, 2).unwrap(), 1_234_567);
    assert_eq!(numeric::to_i128(&v, 4).unwrap(), 123_456_700);
    assert_eq!(numeric::to_text(&v).unwrap(), "12345.67");
    // -0.0001 = [1] weight -1, dscale 4
    let v = num(-1, 0x4000, 4, &[1]);
    assert_eq!(numeric::to_i128(&v, 4).unwrap(), -1);
    assert_eq!(numeric::to_text(&v).unwrap(), "-0.0001");
    // 20000 = [2] weight 1 (trailing zero groups are dropped on the wire)
    let v = num(1, 0, 0, &[2]);
    assert_eq!(numeric::to_i128(&v, 0).unwrap(), 20_000);
    assert_eq!(numeric::to_text(&v).unwrap(), "20000");
    // zero
    let v = num(0, 0, 3, &[]);
    assert_eq!(numeric::to_i128(&v, 3).unwrap(), 0);
    assert_eq!(numeric::to_text(&v).unwrap(), "0.000");
    // rounding would be needed
    assert!(numeric::to_i128(&num(-1, 0, 4, &[1]), 2).is_err());
    assert!(numeric::to_i128(&num(0, 0xC000, 0, &[]), 2).is_err());
    assert_eq!(numeric::to_text(&num(0, 0xC000, 0, &[])).unwrap(), "NaN");
    // inner and leading groups with zeros, a fraction ending mid-group
    assert_eq!(
        numeric::to_text(&num(2, 0, 5, &[7, 0, 30, 1200, 4])).unwrap(),
        "700000030.12000"
    );
    assert_eq!(
        numeric::to_text(&num(0, 0x4000, 2, &[9999, 5000])).unwrap(),
        "-9999.50"
    );
    assert_eq!(
        numeric::to_text(&num(-2, 0, 8, &[12])).unwrap(),
        "0.00000012"
    );
    assert!(numeric::to_text(&num(0, 0, 0, &[10000])).is_err());
}

#[test]
fn uuid_is_hyphenated_lower_hex() {
    let b: [u8; 16] = [
        0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a,
        0x11,
    ];
    assert_eq!(uuid_text(b), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
}

#[test]
fn wrong_widths_are_errors_naming_the_column() {
    use super::super::types::{plan_column, schema, TypeFacts};
    let plan = plan_column(
        "n",
        "integer".into(),
        true,
        TypeFacts {
            oid: 23,
            typmod: -1,
            name: "int4",
            is_array: false,
            is_composite: false,
        },
    );
    let plans = vec![plan];
    let mut b = BatchBuilder::new(&plans, schema(&plans), 4);
    let err = b.append(0, Some(&[0, 1])).unwrap_err();
    assert_eq!(
        err,
        WarehouseError::QueryFailed {
            code: None,
            message: "column \"n\": expected 4 bytes, got 2".into()
        }
    );
    b.append(0, Some(&7i32.to_be_bytes())).unwrap();
    b.end_row();
    b.append(0, None).unwrap();
    b.end_row();
    let batch = b.finish().unwrap();
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(b.rows(), 0);
}
