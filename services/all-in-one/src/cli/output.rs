//! How client commands print: aligned tables and `key: value` blocks for people
//! (default), or one JSON document on stdout for scripts (`--output json`). Each
//! group builds a [`View`] from its own serde structs, so the JSON shape is the
//! struct (documented in the README) and never the Debug form of a proto message.

use serde::Serialize;
use std::fmt::Write as _;

/// `--output`: what the result on stdout looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns, or `key: value` lines for one resource.
    #[default]
    Table,
    /// One pretty-printed JSON document (an object, or an array for lists).
    Json,
}

/// An aligned table: a header row and string cells, padded to the widest cell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text; every line ends with a newline, trailing spaces trimmed.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().take(columns).enumerate() {
                widths[i] = widths[i].max(width(cell));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                line.push_str(cell);
                if i + 1 < columns {
                    line.push_str(&" ".repeat(w.saturating_sub(width(cell)) + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Display width: characters, with line breaks flattened by [`cell`] beforehand.
fn width(text: &str) -> usize {
    text.chars().count()
}

/// One table cell: line breaks become spaces, an empty value becomes `-`.
pub fn cell(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if flat.trim().is_empty() {
        "-".into()
    } else {
        flat
    }
}

/// `key: value` lines for one resource, keys aligned; then free-form sections
/// (compiled SQL, error lists) under a heading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    fields: Vec<(String, String)>,
    sections: Vec<(String, String)>,
}

impl Details {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn field(mut self, key: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        self.fields.push((key.to_string(), cell(&value)));
        self
    }

    /// A heading and a block of text (a table, SQL); left out when empty.
    pub fn section(mut self, heading: &str, body: impl Into<String>) -> Self {
        let body = body.into();
        if !body.trim().is_empty() {
            self.sections.push((heading.to_string(), body));
        }
        self
    }

    pub fn render(&self) -> String {
        let key_width = self.fields.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in &self.fields {
            let _ = writeln!(
                out,
                "{key}:{}{value}",
                " ".repeat(key_width - width(key) + 1)
            );
        }
        for (heading, body) in &self.sections {
            let _ = writeln!(out, "\n{heading}:");
            for line in body.trim_end().lines() {
                let _ = writeln!(out, "{}", format!("  {line}").trim_end());
            }
        }
        out
    }
}

/// What a command prints: the JSON value for scripts and the text for people.
pub struct View {
    pub json: serde_json::Value,
    pub text: String,
}

impl View {
    pub fn new(json: &impl Serialize, text: String) -> Self {
        Self {
            // A serde struct of strings, numbers and vectors always serializes.
            json: serde_json::to_value(json).unwrap_or(serde_json::Value::Null),
            text,
        }
    }

    /// A message for people; `{}` for scripts.
    pub fn message(text: impl Into<String>) -> Self {
        Self {
            json: serde_json::json!({}),
            text: text.into(),
        }
    }

    pub fn render(&self, format: OutputFormat) -> String {
        match format {
            OutputFormat::Table => {
                let mut text = self.text.clone();
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text
            }
            OutputFormat::Json => {
                let mut text = serde_json::to_string_pretty(&self.json)
                    .unwrap_or_else(|_| String::from("null"));
                text.push('\n');
                text
            }
        }
    }
}

/// `2026-12-01 09:39:19Z` from unix milliseconds; `-` for 0 (never).
pub fn timestamp(unix_ms: i64) -> String {
    if unix_ms <= 0 {
        return "-".into();
    }
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `1.2s`, `340ms`, `2m05s`; `-` for 0.
pub fn duration(ms: i64) -> String {
    match ms {
        n if n <= 0 => "-".into(),
        n if n < 1000 => format!("{n}ms"),
        n if n < 60_000 => format!("{:.1}s", n as f64 / 1000.0),
        n => format!("{}m{:02}s", n / 60_000, (n % 60_000) / 1000),
    }
}

/// The first 12 characters of a commit sha (`-` when none).
/// Writes `text` to stdout; a closed stdout (`| head`) is not an error worth a panic.
pub fn print_stdout(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// `1 model`, `12 models`.
pub fn counted(n: impl Into<i64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub fn short_sha(sha: &str) -> String {
    cell(&sha.chars().take(12).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_the_widest_cell_and_trim_line_ends() {
        let mut table = Table::new(&["id", "name", "kind"]);
        table.row(vec![
            "s1".into(),
            "a much longer name".into(),
            "git-token".into(),
        ]);
        table.row(vec!["secret-22".into(), "x".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "ID         NAME                KIND\n\
             s1         a much longer name  git-token\n\
             secret-22  x                   -\n"
        );
    }

    #[test]
    fn cells_flatten_line_breaks_and_mark_empty_values() {
        assert_eq!(cell("a\nb"), "a b");
        assert_eq!(cell("  "), "-");
    }

    #[test]
    fn details_align_keys_and_indent_sections() {
        let text = Details::new()
            .field("id", "c1")
            .field("repository", "")
            .section("compiled sql", "select 1\nfrom x\n")
            .section("errors", "")
            .render();
        assert_eq!(
            text,
            "id:         c1\nrepository: -\n\ncompiled sql:\n  select 1\n  from x\n"
        );
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(timestamp(0), "-");
        assert_eq!(timestamp(1_796_117_959_000), "2026-12-01 09:39:19Z");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29 00:00:00Z");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0), "-");
        assert_eq!(duration(340), "340ms");
        assert_eq!(duration(1250), "1.2s");
        assert_eq!(duration(125_000), "2m05s");
    }

    #[test]
    fn json_views_print_the_serde_shape() {
        #[derive(Serialize)]
        struct Thing {
            id: &'static str,
            count: i64,
        }
        let view = View::new(&Thing { id: "t1", count: 2 }, "text".into());
        assert_eq!(
            view.render(OutputFormat::Json),
            "{\n  \"id\": \"t1\",\n  \"count\": 2\n}\n"
        );
        assert_eq!(view.render(OutputFormat::Table), "text\n");
    }
}
