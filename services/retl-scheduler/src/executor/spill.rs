//! The rows a run may deliver, written to an anonymous temporary file as the extract
//! streams by (one JSON line per candidate: key hash, row hash, change, key object,
//! fields object or why the mapping refused it), and read back once the diff has settled
//! duplicates. Only candidates are written, so a run where little changed writes little,
//! and the extract is never held in memory.

use crate::diff::Change;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// One candidate record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spilled {
    #[serde(rename = "k")]
    pub key_hash: u64,
    #[serde(rename = "r")]
    pub row_hash: u64,
    /// true: added; false: updated.
    #[serde(rename = "a")]
    pub added: bool,
    pub key: Map<String, Value>,
    /// The mapped fields, or the reason the mapping refused the record.
    #[serde(rename = "f")]
    pub fields: Result<Map<String, Value>, String>,
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
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
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
            lines: BufReader::with_capacity(1 << 20, file),
            line: String::new(),
        })
    }
}

#[derive(Debug)]
pub struct SpillReader {
    lines: BufReader<File>,
    line: String,
}

impl SpillReader {
    /// The next record, `None` at the end.
    pub fn next_record(&mut self) -> std::io::Result<Option<Spilled>> {
        self.line.clear();
        if self.lines.read_line(&mut self.line)? == 0 {
            return Ok(None);
        }
        serde_json::from_str(&self.line)
            .map(Some)
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order() {
        let mut spill = SpillWriter::create(None).expect("spill");
        let record = |k: u64, fields: Result<Map<String, Value>, String>| Spilled {
            key_hash: k,
            row_hash: k.wrapping_add(1),
            added: k.is_multiple_of(2),
            key: serde_json::json!({"id": k})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            fields,
        };
        let written = vec![
            record(u64::MAX, Ok(Map::new())),
            record(2, Err("null".into())),
        ];
        for r in &written {
            spill.write(r).expect("write");
        }
        assert_eq!(spill.records(), 2);
        let mut reader = spill.finish().expect("finish");
        let mut read = Vec::new();
        while let Some(r) = reader.next_record().expect("read") {
            read.push(r);
        }
        assert_eq!(read, written);
    }
}
