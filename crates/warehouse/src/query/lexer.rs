//! The single-statement check behind [`super::ReadOnlyQuery::from_sql`].
//!
//! A model's SQL is handed to a warehouse inside a wrapper (`select * from (<sql>) as
//! backflow_q`, `COPY (...) TO STDOUT`, a cursor), so it must be exactly one statement
//! and must not close the wrapper's parenthesis early. This lexer walks the text the way
//! the warehouse's tokenizer would — string literals, quoted identifiers, dollar quotes,
//! comments — and reports the first `;` (or unbalanced `)`) that is real SQL, with its
//! line and column. Quoting rules differ per warehouse, so [`Rules`] says which apply.

use crate::{WarehouseError, WarehouseKind};

/// Which quoting and comment forms a warehouse's SQL tokenizer knows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// `\'` escapes a quote inside every `'...'` literal (Snowflake, BigQuery, Databricks).
    backslash_in_single: bool,
    /// `E'...'` literals with backslash escapes (PostgreSQL, Redshift).
    e_strings: bool,
    /// `"..."` is a string literal with backslash escapes (BigQuery, Databricks), not an identifier.
    double_quoted_strings: bool,
    /// `` `...` `` quotes identifiers.
    backticks: bool,
    /// `$tag$...$tag$` (PostgreSQL) or only `$$...$$` (Snowflake).
    dollar_tags: bool,
    dollar_plain: bool,
    /// `/* /* */ */` nests (PostgreSQL, Databricks).
    nested_comments: bool,
    /// `# ...` line comments (BigQuery).
    hash_comments: bool,
    /// `// ...` line comments (Snowflake).
    slash_comments: bool,
    /// `'''...'''` and `"""..."""` (BigQuery).
    triple_quotes: bool,
}

impl Rules {
    /// PostgreSQL's rules, plus backtick identifiers (refusing more, never less).
    pub(crate) const GENERIC: Rules = Rules {
        backticks: true,
        ..Self::POSTGRES
    };
    const POSTGRES: Rules = Rules {
        backslash_in_single: false,
        e_strings: true,
        double_quoted_strings: false,
        backticks: false,
        dollar_tags: true,
        dollar_plain: true,
        nested_comments: true,
        hash_comments: false,
        slash_comments: false,
        triple_quotes: false,
    };
    const SNOWFLAKE: Rules = Rules {
        backslash_in_single: true,
        e_strings: false,
        double_quoted_strings: false,
        backticks: false,
        dollar_tags: false,
        dollar_plain: true,
        nested_comments: false,
        hash_comments: false,
        slash_comments: true,
        triple_quotes: false,
    };
    const BIGQUERY: Rules = Rules {
        backslash_in_single: true,
        e_strings: false,
        double_quoted_strings: true,
        backticks: true,
        dollar_tags: false,
        dollar_plain: false,
        nested_comments: false,
        hash_comments: true,
        slash_comments: false,
        triple_quotes: true,
    };
    const DATABRICKS: Rules = Rules {
        backslash_in_single: true,
        e_strings: false,
        double_quoted_strings: true,
        backticks: true,
        dollar_tags: false,
        dollar_plain: false,
        nested_comments: true,
        hash_comments: false,
        slash_comments: false,
        triple_quotes: false,
    };

    pub(crate) fn for_kind(kind: WarehouseKind) -> Rules {
        match kind {
            WarehouseKind::Postgres | WarehouseKind::Redshift => Self::POSTGRES,
            WarehouseKind::Snowflake => Self::SNOWFLAKE,
            WarehouseKind::Bigquery => Self::BIGQUERY,
            WarehouseKind::Databricks => Self::DATABRICKS,
        }
    }
}

/// Checks that `sql` is exactly one statement; returns it without a trailing `;` (and
/// without the whitespace and comments after it).
pub(crate) fn single_statement(sql: &str, rules: Rules) -> Result<String, WarehouseError> {
    let mut lexer = Lexer {
        src: sql.as_bytes(),
        pos: 0,
        rules,
    };
    let mut depth: usize = 0;
    let mut end = sql.len();
    let mut semicolon: Option<usize> = None;
    let mut has_code = false;
    while let Some(token) = lexer.next_token(sql)? {
        match (token, semicolon) {
            (Token::Trivia, _) => {}
            (_, Some(at)) => return Err(refuse(sql, at, "followed by more sql")),
            (Token::Semicolon(at), None) => {
                if depth > 0 {
                    return Err(refuse(sql, at, "inside parentheses"));
                }
                semicolon = Some(at);
                end = at;
            }
            (Token::Open, None) => {
                depth += 1;
                has_code = true;
            }
            (Token::Close(at), None) => {
                if depth == 0 {
                    let (line, column) = line_column(sql, at);
                    return Err(WarehouseError::NotSingleStatement {
                        detail: format!(
                            "unbalanced `)` at line {line}, column {column}: exactly one statement is allowed"
                        ),
                    });
                }
                depth -= 1;
            }
            (Token::Code, None) => has_code = true,
        }
    }
    if !has_code {
        return Err(WarehouseError::NotSingleStatement {
            detail: "the query is empty: exactly one statement is allowed".into(),
        });
    }
    if depth > 0 {
        return Err(WarehouseError::NotSingleStatement {
            detail: "unbalanced `(`: a parenthesis is never closed".into(),
        });
    }
    Ok(sql[..end].trim().to_string())
}

fn refuse(sql: &str, at: usize, why: &str) -> WarehouseError {
    let (line, column) = line_column(sql, at);
    WarehouseError::NotSingleStatement {
        detail: format!(
            "exactly one statement is allowed, but there is a `;` at line {line}, column {column} {why}"
        ),
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(sql: &str, at: usize) -> (usize, usize) {
    let before = &sql[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

enum Token {
    /// Whitespace or a comment.
    Trivia,
    Semicolon(usize),
    Open,
    Close(usize),
    /// Anything else: a word, a literal, an operator.
    Code,
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    rules: Rules,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.src[self.pos..].starts_with(s)
    }

    fn next_token(&mut self, sql: &str) -> Result<Option<Token>, WarehouseError> {
        let Some(c) = self.peek(0) else {
            return Ok(None);
        };
        let start = self.pos;
        let rules = self.rules;
        let token = match c {
            b';' => {
                self.pos += 1;
                Token::Semicolon(start)
            }
            b'(' => {
                self.pos += 1;
                Token::Open
            }
            b')' => {
                self.pos += 1;
                Token::Close(start)
            }
            c if c.is_ascii_whitespace() => {
                self.pos += 1;
                Token::Trivia
            }
            b'-' if self.starts_with(b"--") => self.line_comment(),
            b'#' if rules.hash_comments => self.line_comment(),
            b'/' if rules.slash_comments && self.starts_with(b"//") => self.line_comment(),
            b'/' if self.starts_with(b"/*") => self.block_comment(sql, start)?,
            b'\'' | b'"' if rules.triple_quotes && self.triple(c) => {
                self.quoted_triple(sql, start, c)?
            }
            b'\'' => self.quoted(sql, start, b'\'', rules.backslash_in_single)?,
            b'"' => self.quoted(sql, start, b'"', rules.double_quoted_strings)?,
            b'`' if rules.backticks => {
                self.quoted(sql, start, b'`', rules.double_quoted_strings)?
            }
            b'e' | b'E'
                if rules.e_strings && self.peek(1) == Some(b'\'') && !self.after_word(start) =>
            {
                self.pos += 1;
                self.quoted(sql, start, b'\'', true)?
            }
            b'$' if !self.after_word(start) => match self.dollar_tag() {
                Some(tag) => self.dollar_quoted(sql, start, &tag)?,
                None => {
                    self.pos += 1;
                    Token::Code
                }
            },
            _ => {
                self.pos += 1;
                Token::Code
            }
        };
        Ok(Some(token))
    }

    /// The byte before `at` continues an identifier (so `e'` or `$` is part of a word).
    fn after_word(&self, at: usize) -> bool {
        at > 0 && {
            let b = self.src[at - 1];
            b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
        }
    }

    fn triple(&self, q: u8) -> bool {
        self.peek(1) == Some(q) && self.peek(2) == Some(q)
    }

    fn line_comment(&mut self) -> Token {
        while let Some(c) = self.peek(0) {
            if c == b'\n' {
                break;
            }
            self.pos += 1;
        }
        Token::Trivia
    }

    fn block_comment(&mut self, sql: &str, start: usize) -> Result<Token, WarehouseError> {
        self.pos += 2;
        let mut depth = 1;
        while depth > 0 {
            if self.pos >= self.src.len() {
                return Err(unterminated(sql, start, "comment"));
            }
            if self.starts_with(b"*/") {
                depth -= 1;
                self.pos += 2;
            } else if self.rules.nested_comments && self.starts_with(b"/*") {
                depth += 1;
                self.pos += 2;
            } else {
                self.pos += 1;
            }
        }
        Ok(Token::Trivia)
    }

    /// A literal or identifier quoted by `q`: doubling `q` escapes it, and so does a
    /// backslash when `backslash` is set.
    fn quoted(
        &mut self,
        sql: &str,
        start: usize,
        q: u8,
        backslash: bool,
    ) -> Result<Token, WarehouseError> {
        self.pos += 1;
        loop {
            match self.peek(0) {
                None => return Err(unterminated(sql, start, quote_name(q))),
                Some(b'\\') if backslash => self.pos += 2,
                Some(c) if c == q => {
                    if self.peek(1) == Some(q) {
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(Token::Code);
                    }
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    fn quoted_triple(&mut self, sql: &str, start: usize, q: u8) -> Result<Token, WarehouseError> {
        self.pos += 3;
        loop {
            match self.peek(0) {
                None => return Err(unterminated(sql, start, "triple-quoted string")),
                Some(b'\\') => self.pos += 2,
                Some(c) if c == q && self.triple(q) => {
                    self.pos += 3;
                    return Ok(Token::Code);
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// At a `$`: the opening delimiter (`$$` or `$tag$`) if one starts here.
    fn dollar_tag(&self) -> Option<Vec<u8>> {
        let rest = &self.src[self.pos + 1..];
        if rest.first() == Some(&b'$') {
            return (self.rules.dollar_plain || self.rules.dollar_tags).then(|| b"$$".to_vec());
        }
        if !self.rules.dollar_tags {
            return None;
        }
        let first = *rest.first()?;
        if !(first.is_ascii_alphabetic() || first == b'_' || first >= 0x80) {
            return None; // `$1` is a parameter
        }
        let len = rest
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80))?;
        (rest[len] == b'$').then(|| self.src[self.pos..self.pos + len + 2].to_vec())
    }

    fn dollar_quoted(
        &mut self,
        sql: &str,
        start: usize,
        tag: &[u8],
    ) -> Result<Token, WarehouseError> {
        self.pos += tag.len();
        let rest = &self.src[self.pos..];
        match rest.windows(tag.len()).position(|w| w == tag) {
            Some(i) => {
                self.pos += i + tag.len();
                Ok(Token::Code)
            }
            None => Err(unterminated(sql, start, "dollar-quoted string")),
        }
    }
}

fn quote_name(q: u8) -> &'static str {
    match q {
        b'\'' => "string literal",
        b'"' => "double-quoted identifier or string",
        _ => "backtick-quoted identifier",
    }
}

fn unterminated(sql: &str, at: usize, what: &str) -> WarehouseError {
    let (line, column) = line_column(sql, at);
    WarehouseError::NotSingleStatement {
        detail: format!("unterminated {what} starting at line {line}, column {column}"),
    }
}

#[cfg(test)]
mod tests;
