//! The rows a run may deliver, written to an anonymous temporary file as the extract
//! streams by, and read back once the diff has settled duplicates. Only candidates are
//! written, so a run where little changed writes little, and the extract is never held in
//! memory.
//!
//! Each record is a 25-byte header — key hash and row hash (u64 LE), a flag byte (bit 0:
//! added, bit 1: refused by the mapping), the key's and the payload's byte lengths (u32
//! LE) — then the key object's JSON text and the payload: the fields object's JSON text,
//! or the reason the mapping refused the record. The JSON is the text the mapping wrote
//! once; it goes into request bodies as is, never parsed on the way.

use crate::destinations::JsonObject;
use crate::diff::Change;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::Path;

const HEADER: usize = 25;
const ADDED: u8 = 1;
const REFUSED: u8 = 2;

/// One candidate record.
#[derive(Debug, Clone, PartialEq)]
pub struct Spilled {
    pub key_hash: u64,
    pub row_hash: u64,
    /// true: added; false: updated.
    pub added: bool,
    pub key: JsonObject,
    /// The mapped fields, or the reason the mapping refused the record.
    pub fields: Result<JsonObject, String>,
}

impl Spilled {
    pub fn change(&self) -> Change {
        if self.added {
            Change::Added
        } else {
            Change::Updated
        }
    }
}

#[derive(Debug)]
pub struct SpillWriter {
    out: BufWriter<File>,
    records: u64,
}

impl SpillWriter {
    /// A new anonymous file in `dir` (the system's temporary directory when `None`).
    pub fn create(dir: Option<&Path>) -> std::io::Result<Self> {
        let file = match dir {
            Some(dir) => tempfile::tempfile_in(dir)?,
            None => tempfile::tempfile()?,
        };
        Ok(Self {
            out: BufWriter::with_capacity(1 << 20, file),
            records: 0,
        })
    }

    pub fn write(&mut self, record: &Spilled) -> std::io::Result<()> {
        let fields = match &record.fields {
            Ok(fields) => Ok(fields.as_str().as_bytes()),
            Err(reason) => Err(reason.as_str()),
        };
        self.write_encoded(
            record.key_hash,
            record.row_hash,
            record.added,
            record.key.as_str().as_bytes(),
            fields,
        )
    }

    /// One record from the JSON text of its key and fields objects (or the refusal).
    pub fn write_encoded(
        &mut self,
        key_hash: u64,
        row_hash: u64,
        added: bool,
        key: &[u8],
        fields: Result<&[u8], &str>,
    ) -> std::io::Result<()> {
        let (flags, payload) = match fields {
            Ok(fields) => (0, fields),
            Err(reason) => (REFUSED, reason.as_bytes()),
        };
        let length = |bytes: &[u8]| {
            u32::try_from(bytes.len())
                .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "record over 4 GiB"))
        };
        let mut header = [0u8; HEADER];
        header[..8].copy_from_slice(&key_hash.to_le_bytes());
        header[8..16].copy_from_slice(&row_hash.to_le_bytes());
        header[16] = flags | if added { ADDED } else { 0 };
        header[17..21].copy_from_slice(&length(key)?.to_le_bytes());
        header[21..].copy_from_slice(&length(payload)?.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(key)?;
        self.out.write_all(payload)?;
        self.records += 1;
        Ok(())
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// Everything written, from the start.
    pub fn finish(self) -> std::io::Result<SpillReader> {
        let mut file = self.out.into_inner().map_err(|err| err.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(SpillReader {
            input: BufReader::with_capacity(1 << 20, file),
        })
    }
}

#[derive(Debug)]
pub struct SpillReader {
    input: BufReader<File>,
}

fn corrupt(what: &str) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, format!("spill file: {what}"))
}

impl SpillReader {
    /// Back to the first record (a run that must count before it delivers reads twice).
    pub fn rewind(&mut self) -> std::io::Result<()> {
        self.input.seek(SeekFrom::Start(0)).map(|_| ())
    }

    /// The next record, `None` at the end.
    pub fn next_record(&mut self) -> std::io::Result<Option<Spilled>> {
        let mut header = [0u8; HEADER];
        match self.input.read_exact(&mut header[..1]) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(error),
        }
        self.input.read_exact(&mut header[1..])?;
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&header[at..at + 8]);
            u64::from_le_bytes(bytes)
        };
        let length = |at: usize| {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&header[at..at + 4]);
            u32::from_le_bytes(bytes) as usize
        };
        let flags = header[16];
        let key = self.text(length(17))?;
        let payload = self.text(length(21))?;
        Ok(Some(Spilled {
            key_hash: word(0),
            row_hash: word(8),
            added: flags & ADDED != 0,
            key: JsonObject::from_encoded(key.into_boxed_str()),
            fields: if flags & REFUSED != 0 {
                Err(payload)
            } else {
                Ok(JsonObject::from_encoded(payload.into_boxed_str()))
            },
        }))
    }

    fn text(&mut self, len: usize) -> std::io::Result<String> {
        let mut bytes = vec![0u8; len];
        self.input.read_exact(&mut bytes)?;
        String::from_utf8(bytes).map_err(|_| corrupt("text is not utf-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order() {
        let mut spill = SpillWriter::create(None).expect("spill");
        let record = |k: u64, fields: Result<JsonObject, String>| Spilled {
            key_hash: k,
            row_hash: k.wrapping_add(1),
            added: k.is_multiple_of(2),
            key: JsonObject::from_encoded(format!("{{\"id\":{k}}}").into_boxed_str()),
            fields,
        };
        let written = vec![
            record(u64::MAX, Ok(JsonObject::default())),
            record(2, Err("null".into())),
            record(4, Ok(JsonObject::from_encoded(r#"{"e":"é\n"}"#.into()))),
        ];
        for r in &written {
            spill.write(r).expect("write");
        }
        assert_eq!(spill.records(), 3);
        let mut reader = spill.finish().expect("finish");
        let mut read = Vec::new();
        while let Some(r) = reader.next_record().expect("read") {
            read.push(r);
        }
        assert_eq!(read, written);
        assert_eq!(read[2].fields.as_ref().unwrap().as_str(), r#"{"e":"é\n"}"#);
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        let mut spill = SpillWriter::create(None).expect("spill");
        spill
            .write_encoded(1, 2, true, b"{\"id\":1}", Ok(b"{}"))
            .expect("write");
        let mut file = spill.out.into_inner().expect("flush");
        let len = file.seek(SeekFrom::End(0)).expect("seek");
        file.set_len(len - 1).expect("truncate");
        file.seek(SeekFrom::Start(0)).expect("seek");
        let mut reader = SpillReader {
            input: BufReader::new(file),
        };
        let error = reader.next_record().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::UnexpectedEof);
    }
}
