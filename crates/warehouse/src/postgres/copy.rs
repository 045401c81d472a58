//! The framing of `COPY ... TO STDOUT (FORMAT binary)`: an 11-byte signature, flags and a
//! header extension, then tuples (`i16` field count, each field an `i32` length, -1 for
//! NULL, and its bytes), then a `-1` trailer. Chunks arrive with arbitrary boundaries;
//! whole tuples are decoded straight from each chunk and only a split tuple is carried
//! over to the next one.

use arrow_array::RecordBatch;

use super::decode::BatchBuilder;
use crate::WarehouseError;

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

#[derive(Default)]
pub(crate) struct CopyParser {
    carry: Vec<u8>,
    header_done: bool,
    trailer_seen: bool,
}

impl CopyParser {
    pub fn is_complete(&self) -> bool {
        self.trailer_seen
    }

    /// Decodes every whole tuple in `chunk` (after what was carried over) into `rows`;
    /// each time `rows` reaches `batch_rows` the batch is pushed onto `ready`.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        rows: &mut BatchBuilder,
        batch_rows: usize,
        ready: &mut Vec<RecordBatch>,
    ) -> Result<(), WarehouseError> {
        if self.carry.is_empty() {
            let used = self.consume(chunk, rows, batch_rows, ready)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            let mut carry = std::mem::take(&mut self.carry);
            carry.extend_from_slice(chunk);
            let used = self.consume(&carry, rows, batch_rows, ready)?;
            carry.drain(..used);
            self.carry = carry;
        }
        Ok(())
    }

    /// Bytes of `data` consumed (whole header and tuples).
    fn consume(
        &mut self,
        data: &[u8],
        rows: &mut BatchBuilder,
        batch_rows: usize,
        ready: &mut Vec<RecordBatch>,
    ) -> Result<usize, WarehouseError> {
        let mut pos = 0;
        if !self.header_done {
            match header_len(data)? {
                Some(n) => {
                    pos = n;
                    self.header_done = true;
                }
                None => return Ok(0),
            }
        }
        while !self.trailer_seen {
            let rest = &data[pos..];
            let Some(len) = tuple_len(rest, rows.width())? else {
                break;
            };
            if len == 2 {
                self.trailer_seen = true;
            } else {
                decode_tuple(rest, rows)?;
                if rows.rows() >= batch_rows {
                    ready.push(rows.finish()?);
                }
            }
            pos += len;
        }
        if self.trailer_seen {
            return Ok(data.len());
        }
        Ok(pos)
    }
}

fn protocol(detail: &str) -> WarehouseError {
    WarehouseError::Protocol {
        detail: format!("binary copy: {detail}"),
    }
}

fn header_len(data: &[u8]) -> Result<Option<usize>, WarehouseError> {
    if data.len() < 19 {
        return Ok(None);
    }
    if &data[..11] != SIGNATURE {
        return Err(protocol("bad signature"));
    }
    let ext = u32::from_be_bytes([data[15], data[16], data[17], data[18]]) as usize;
    Ok((data.len() >= 19 + ext).then_some(19 + ext))
}

/// Length of the tuple (or the 2-byte trailer) at the start of `data`, if it is whole.
#[inline]
fn tuple_len(data: &[u8], width: usize) -> Result<Option<usize>, WarehouseError> {
    if data.len() < 2 {
        return Ok(None);
    }
    let count = i16::from_be_bytes([data[0], data[1]]);
    if count == -1 {
        return Ok(Some(2));
    }
    if count as usize != width {
        return Err(protocol(&format!(
            "tuple has {count} fields, expected {width}"
        )));
    }
    let mut pos = 2;
    for _ in 0..width {
        if data.len() < pos + 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        pos += 4;
        if len > 0 {
            pos += len as usize;
        } else if len < -1 {
            return Err(protocol("negative field length"));
        }
    }
    Ok((data.len() >= pos).then_some(pos))
}

/// Decodes a tuple [`tuple_len`] found whole.
#[inline]
fn decode_tuple(data: &[u8], rows: &mut BatchBuilder) -> Result<(), WarehouseError> {
    let mut pos = 2;
    for i in 0..rows.width() {
        let len = i32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        pos += 4;
        if len < 0 {
            rows.append(i, None)?;
        } else {
            let end = pos + len as usize;
            rows.append(i, Some(&data[pos..end]))?;
            pos = end;
        }
    }
    rows.end_row();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::types::{plan_column, schema, TypeFacts};
    use arrow_array::{Array, Int64Array, StringArray};

    fn plans() -> Vec<crate::postgres::types::ColumnPlan> {
        let f = |oid| TypeFacts {
            oid,
            typmod: -1,
            name: "",
            is_array: false,
            is_composite: false,
        };
        vec![
            plan_column("id", "bigint".into(), false, f(20)),
            plan_column("name", "text".into(), true, f(25)),
        ]
    }

    fn stream_bytes(rows: &[(i64, Option<&str>)]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.extend(0u32.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        for (id, name) in rows {
            v.extend(2i16.to_be_bytes());
            v.extend(8i32.to_be_bytes());
            v.extend(id.to_be_bytes());
            match name {
                Some(s) => {
                    v.extend((s.len() as i32).to_be_bytes());
                    v.extend(s.as_bytes());
                }
                None => v.extend((-1i32).to_be_bytes()),
            }
        }
        v.extend((-1i16).to_be_bytes());
        v
    }

    #[test]
    fn any_chunking_gives_the_same_batches() {
        let rows: Vec<(i64, Option<&str>)> = (0..7)
            .map(|i| (i, if i % 3 == 0 { None } else { Some("héllo") }))
            .collect();
        let bytes = stream_bytes(&rows);
        for chunk in [1, 2, 3, 5, 11, 19, 64, bytes.len()] {
            let plans = plans();
            let mut b = BatchBuilder::new(&plans, schema(&plans), 3);
            let mut parser = CopyParser::default();
            let mut ready = Vec::new();
            for c in bytes.chunks(chunk) {
                parser.feed(c, &mut b, 3, &mut ready).unwrap();
            }
            assert!(parser.is_complete(), "chunk {chunk}");
            ready.push(b.finish().unwrap());
            let sizes: Vec<usize> = ready.iter().map(|b| b.num_rows()).collect();
            assert_eq!(sizes, vec![3, 3, 1], "chunk {chunk}");
            let ids = ready[1]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            assert_eq!(ids.values(), &[3, 4, 5]);
            let names = ready[1]
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            assert!(names.is_null(0));
            assert_eq!(names.value(1), "héllo");
        }
    }

    #[test]
    fn a_wrong_field_count_is_a_protocol_error() {
        let mut bytes = stream_bytes(&[]);
        bytes.truncate(19);
        bytes.extend(3i16.to_be_bytes());
        let plans = plans();
        let mut b = BatchBuilder::new(&plans, schema(&plans), 3);
        let err = CopyParser::default()
            .feed(&bytes, &mut b, 3, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, WarehouseError::Protocol { .. }), "{err:?}");
    }
}
