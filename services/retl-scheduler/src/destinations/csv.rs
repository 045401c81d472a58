//! The little CSV the Salesforce Bulk API 2.0 speaks (fixtures/wire/salesforce-bulk-api-2.md,
//! "CSV rules"): comma-delimited, LF line endings, `"` quotes doubled inside quoted values,
//! no trimming. Writing quotes every value (always legal); reading accepts quoted and bare
//! values and newlines inside quotes, which is all Salesforce's result files use.

/// One CSV value, quoted.
pub fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// Appends one line of already encoded values.
pub fn push_line(out: &mut String, values: impl IntoIterator<Item = String>) {
    let mut first = true;
    for value in values {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&value);
    }
    out.push('\n');
}

/// Parses a whole CSV document into rows of values (a trailing newline ends the last row;
/// `\r\n` is accepted).
pub fn parse(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut value = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut line_has_content = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    value.push('"');
                }
                '"' => in_quotes = false,
                other => value.push(other),
            }
            continue;
        }
        match c {
            '"' if value.is_empty() => {
                in_quotes = true;
                line_has_content = true;
            }
            '"' => return Err("a quote inside an unquoted value".into()),
            ',' => {
                row.push(std::mem::take(&mut value));
                line_has_content = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if line_has_content || !value.is_empty() {
                    row.push(std::mem::take(&mut value));
                    rows.push(std::mem::take(&mut row));
                }
                line_has_content = false;
            }
            other => {
                value.push(other);
                line_has_content = true;
            }
        }
    }
    if in_quotes {
        return Err("an unterminated quoted value".into());
    }
    if line_has_content || !value.is_empty() {
        row.push(value);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED: &str =
        include_str!("../../../../fixtures/wire/salesforce/failed-results-upsert.csv");
    const UPLOAD: &str = include_str!("../../../../fixtures/wire/salesforce/upload-upsert.csv");

    #[test]
    fn the_fixtures_parse() {
        let rows = parse(FAILED).unwrap();
        assert_eq!(
            rows[0],
            [
                "sf__Id",
                "sf__Error",
                "customExtIdField__c",
                "name",
                "NumberOfEmployees"
            ]
        );
        assert_eq!(rows[2][1], "INVALID_TYPE_ON_FIELD_IN_RECORD:Number of Employees: value not of required type: lots:NumberOfEmployees --");
        assert_eq!(rows.len(), 3);
        let rows = parse(UPLOAD).unwrap();
        assert_eq!(rows[2], ["234", "United Oil & Gas, UK", "1467"]);
        assert_eq!(rows.len(), 13);
    }

    #[test]
    fn round_trip_with_quotes_and_newlines() {
        let mut out = String::new();
        push_line(
            &mut out,
            ["a".to_string(), quoted("say \"hi\",\nok"), "#N/A".into()],
        );
        push_line(&mut out, [quoted(""), "x".into(), "".into()]);
        assert_eq!(
            parse(&out).unwrap(),
            vec![vec!["a", "say \"hi\",\nok", "#N/A"], vec!["", "x", ""]]
        );
        assert!(parse("\"open").is_err());
    }
}
