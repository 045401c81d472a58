//! Python's `'format' % args` string formatting, which minijinja lacks, and the walk over a
//! template's `{{ }}` / `{% %}` tags that hands each one to the expression rewrite
//! (`exprs.rs`: `fmt % args` becomes `__bf_mod(fmt, args)`, which formats here like Python:
//! `%s`, `%r`, `%d`, `%i`, `%f`, `%e`, `%g`, `%x`, `%o`, `%c`, `%%`, flags, width,
//! precision, `%(name)s`). Text outside Jinja delimiters and `{% raw %}` blocks is never
//! touched.

use super::values::{py_repr, py_str};
use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind};

/// Rewrites the expressions inside Jinja tags (see `exprs.rs`).
pub fn rewrite_percent(src: &str) -> String {
    if !super::has_jinja(src) {
        return src.to_string();
    }
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len() + 32);
    let mut last = 0;
    let mut i = 0;
    while i + 1 < b.len() {
        let close = match (b[i], b[i + 1]) {
            (b'{', b'{') => "}}",
            (b'{', b'%') => "%}",
            (b'{', b'#') => "#}",
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i + 2;
        let end = find_close(src, start, close);
        if close != "#}" {
            out.push_str(&src[last..start]);
            out.push_str(&super::exprs::rewrite(&src[start..end], close == "%}"));
            last = end;
            if close == "%}" && is_raw_tag(&src[start..end]) {
                // `{% raw %}...{% endraw %}` is text: skip to its end untouched
                if let Some(off) = src[end..].find("endraw") {
                    let stop = src[end + off..]
                        .find("%}")
                        .map_or(src.len(), |p| end + off + p);
                    i = stop;
                    continue;
                }
            }
        }
        i = (end + close.len()).min(b.len());
    }
    out.push_str(&src[last..]);
    out
}

fn is_raw_tag(inner: &str) -> bool {
    inner.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()) == "raw"
}

/// Byte offset of `close` after `from`, skipping quoted strings (or the end of `src`).
fn find_close(src: &str, from: usize, close: &str) -> usize {
    let b = src.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => i = skip_string(b, i),
            _ if b[i..].starts_with(close.as_bytes()) => return i,
            _ => i += 1,
        }
    }
    b.len()
}

/// Index just past the string literal starting at `i`.
fn skip_string(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

/// The `__bf_pyfmt` filter: `fmt % args` with Python's semantics.
pub fn pyfmt(fmt: String, args: Value) -> Result<String, Error> {
    let specs = parse_format(&fmt)?;
    let wanted = specs.iter().filter(|s| s.consumes()).count();
    let positional: Vec<Value> = match args.kind() {
        ValueKind::Seq if !(wanted == 1 && args.len() != Some(1)) => args.try_iter()?.collect(),
        ValueKind::Map => Vec::new(),
        _ => vec![args.clone()],
    };
    let mut next = positional.iter();
    let mut out = String::new();
    for spec in &specs {
        match spec {
            Piece::Text(t) => out.push_str(t),
            Piece::Conv(c) => {
                let value = match &c.key {
                    Some(k) => args.get_attr(k)?,
                    None => next
                        .next()
                        .cloned()
                        .ok_or_else(|| fmt_err("not enough arguments for format string"))?,
                };
                out.push_str(&c.apply(&value)?);
            }
        }
    }
    if wanted > 0 && next.next().is_some() && !matches!(args.kind(), ValueKind::Map) {
        return Err(fmt_err(
            "not all arguments converted during string formatting",
        ));
    }
    Ok(out)
}

fn fmt_err(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.to_string())
}

enum Piece {
    Text(String),
    Conv(Conversion),
}

impl Piece {
    fn consumes(&self) -> bool {
        matches!(self, Piece::Conv(c) if c.key.is_none())
    }
}

struct Conversion {
    key: Option<String>,
    flags: String,
    width: usize,
    precision: Option<usize>,
    kind: char,
}

fn parse_format(fmt: &str) -> Result<Vec<Piece>, Error> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            text.push('%');
            continue;
        }
        let mut key = None;
        if chars.peek() == Some(&'(') {
            chars.next();
            key = Some(chars.by_ref().take_while(|c| *c != ')').collect());
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek().filter(|f| "-+ 0#".contains(**f)) {
            flags.push(f);
            chars.next();
        }
        let width = take_number(&mut chars).unwrap_or(0);
        let precision = if chars.peek() == Some(&'.') {
            chars.next();
            Some(take_number(&mut chars).unwrap_or(0))
        } else {
            None
        };
        let kind = chars.next().ok_or_else(|| fmt_err("incomplete format"))?;
        pieces.push(Piece::Text(std::mem::take(&mut text)));
        pieces.push(Piece::Conv(Conversion {
            key,
            flags,
            width,
            precision,
            kind,
        }));
    }
    pieces.push(Piece::Text(text));
    Ok(pieces)
}

fn take_number(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut digits = String::new();
    while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
        digits.push(d);
        chars.next();
    }
    digits.parse().ok()
}

impl Conversion {
    fn apply(&self, v: &Value) -> Result<String, Error> {
        let body = match self.kind {
            's' => truncate(py_str(v), self.precision),
            'r' | 'a' => truncate(py_repr(v), self.precision),
            'd' | 'i' | 'u' => self.signed(number(v)?.trunc().to_string()),
            'f' | 'F' => self.signed(format!("{:.*}", self.precision.unwrap_or(6), number(v)?)),
            'e' | 'E' => {
                let s = python_exp(number(v)?, self.precision.unwrap_or(6));
                self.signed(if self.kind == 'E' {
                    s.to_uppercase()
                } else {
                    s
                })
            }
            'g' | 'G' => self.signed(number(v)?.to_string()),
            'x' => self.signed(format!("{:x}", number(v)? as i64)),
            'X' => self.signed(format!("{:X}", number(v)? as i64)),
            'o' => self.signed(format!("{:o}", number(v)? as i64)),
            'c' => match v.as_str() {
                Some(s) => s.to_string(),
                None => char::from_u32(number(v)? as u32)
                    .map(String::from)
                    .unwrap_or_default(),
            },
            other => return Err(fmt_err(&format!("unsupported format character '{other}'"))),
        };
        Ok(self.pad(body))
    }

    fn signed(&self, s: String) -> String {
        if !s.starts_with('-') && self.flags.contains('+') {
            format!("+{s}")
        } else if !s.starts_with('-') && self.flags.contains(' ') {
            format!(" {s}")
        } else {
            s
        }
    }

    fn pad(&self, s: String) -> String {
        let len = s.chars().count();
        if len >= self.width {
            return s;
        }
        let fill = self.width - len;
        if self.flags.contains('-') {
            format!("{s}{}", " ".repeat(fill))
        } else if self.flags.contains('0') && !matches!(self.kind, 's' | 'r' | 'a' | 'c') {
            let (sign, digits) = match s.chars().next() {
                Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_string()),
                _ => (String::new(), s),
            };
            format!("{sign}{}{digits}", "0".repeat(fill))
        } else {
            format!("{}{s}", " ".repeat(fill))
        }
    }
}

fn truncate(s: String, precision: Option<usize>) -> String {
    match precision {
        Some(p) => s.chars().take(p).collect(),
        None => s,
    }
}

fn number(v: &Value) -> Result<f64, Error> {
    if v.kind() == ValueKind::Bool {
        return Ok(if v.is_true() { 1.0 } else { 0.0 });
    }
    f64::try_from(v.clone()).map_err(|_| fmt_err("a number is required"))
}

/// Python's `%e`: mantissa with `precision` digits and a two-digit signed exponent.
fn python_exp(x: f64, precision: usize) -> String {
    let s = format!("{x:.precision$e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_inside_jinja() {
        assert_eq!(
            rewrite_percent("select 'a' % 2, {{ '%s-%s' % (a, b) }}"),
            "select 'a' % 2, {{ __bf_mod('%s-%s', __bf_tuple(a, b)) }}"
        );
        assert_eq!(
            rewrite_percent("{% set x = 'v%s' % y.z | upper %}"),
            "{% set x = __bf_mod('v%s', y.z | upper) %}"
        );
        assert_eq!(rewrite_percent("{% set x = 'a' %}"), "{% set x = 'a' %}");
        assert_eq!(rewrite_percent("{{ x % 2 }}"), "{{ __bf_mod(x, 2) }}");
        assert_eq!(rewrite_percent("{{ 7 % 2 }}"), "{{ 7 % 2 }}");
        assert_eq!(
            rewrite_percent("{% raw %}{{ (1, 2) }}{% endraw %}{{ (1, 2) }}"),
            "{% raw %}{{ (1, 2) }}{% endraw %}{{ __bf_tuple(1, 2) }}"
        );
    }

    #[test]
    fn formats_like_python() {
        let args = Value::from(vec![Value::from("v"), Value::from(7)]);
        assert_eq!(pyfmt("%s/%03d".into(), args).unwrap(), "v/007");
        assert_eq!(pyfmt("%.2f%%".into(), Value::from(1.5)).unwrap(), "1.50%");
        assert_eq!(pyfmt("%-4s|".into(), Value::from("a")).unwrap(), "a   |");
        assert_eq!(pyfmt("%r".into(), Value::from("a")).unwrap(), "'a'");
        assert!(pyfmt("%s %s".into(), Value::from("a")).is_err());
    }
}
