//! More of dbt's Jinja context: `modules.re` (Python's `re` on top of `fancy-regex`, which
//! adds the lookaround and backreferences of Python patterns to the `regex` crate),
//! `toyaml` (PyYAML's block-style `safe_dump`) and Jinja's `truncate` filter.

use fancy_regex::Regex;
use minijinja::value::{from_args, Kwargs, Object, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// `modules.re`.
#[derive(Debug)]
pub struct ReModule;

fn compile(pattern: &str) -> Result<Regex, Error> {
    Regex::new(pattern).map_err(|e| err(format!("re: invalid pattern {pattern:?}: {e}")))
}

/// A match-time failure (backtracking limit) as a render error.
fn runtime(pattern: &str, e: fancy_regex::Error) -> Error {
    err(format!("re: matching {pattern:?} failed: {e}"))
}

/// Python's `\1` / `\g<name>` replacement syntax in the regex crate's `${1}` form.
fn python_replacement(repl: &str) -> String {
    let mut out = String::with_capacity(repl.len());
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('$', _) => out.push_str("$$"),
            ('\\', Some(d)) if d.is_ascii_digit() => {
                chars.next();
                out.push_str(&format!("${{{d}}}"));
            }
            ('\\', Some('g')) => {
                chars.next();
                if chars.peek() == Some(&'<') {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                    out.push_str(&format!("${{{name}}}"));
                }
            }
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            ('\\', Some('\\')) => {
                chars.next();
                out.push('\\');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Python's `re` flag values (`re.IGNORECASE` is 2, ...), as inline-flag letters.
const FLAGS: [(&str, i64, char); 8] = [
    ("I", 2, 'i'),
    ("IGNORECASE", 2, 'i'),
    ("M", 8, 'm'),
    ("MULTILINE", 8, 'm'),
    ("S", 16, 's'),
    ("DOTALL", 16, 's'),
    ("X", 64, 'x'),
    ("VERBOSE", 64, 'x'),
];

/// The pattern with Python flags given as an argument turned into an inline `(?ims)` group.
fn with_flags(pattern: &str, flags: i64) -> String {
    let mut letters = String::new();
    for (_, bit, letter) in FLAGS {
        if flags & bit != 0 && !letters.contains(letter) {
            letters.push(letter);
        }
    }
    if letters.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{letters}){pattern}")
    }
}

/// A `re` flag (`re.IGNORECASE`): renders as Python's `RegexFlag` does.
#[derive(Debug)]
struct ReFlag(i64);

impl Object for ReFlag {
    fn is_true(self: &Arc<Self>) -> bool {
        self.0 != 0
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the long names, as `str(re.I)` gives on Python 3.11
        let names: Vec<&str> = FLAGS
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|(_, bit, _)| self.0 & bit != 0)
            .map(|(name, _, _)| *name)
            .collect();
        write!(f, "re.{}", names.join("|re."))
    }
}

/// A flags argument: a `re` flag or a plain integer.
fn flag_bits(v: &Value) -> Result<i64, Error> {
    if let Some(flag) = v.downcast_object_ref::<ReFlag>() {
        return Ok(flag.0);
    }
    if v.is_none() || v.is_undefined() {
        return Ok(0);
    }
    i64::try_from(v.clone()).map_err(|_| err(format!("re: flags must be re flags, not {v}")))
}

/// Splits a call's arguments into positional ones and its keyword arguments.
fn split_args(args: &[Value]) -> Result<(&[Value], Option<Kwargs>), Error> {
    match args.last() {
        Some(last) if last.is_kwargs() => Ok((
            &args[..args.len() - 1],
            Some(Kwargs::try_from(last.clone())?),
        )),
        _ => Ok((args, None)),
    }
}

/// `(pattern, string, flags=0)`, flags positional or by keyword.
fn pattern_text_flags(args: &[Value]) -> Result<(String, String, i64), Error> {
    let (positional, kw) = split_args(args)?;
    let (pattern, text, flags): (String, String, Option<Value>) = from_args(positional)?;
    let flags = match kw {
        Some(kw) => kw.get::<Option<Value>>("flags")?.or(flags),
        None => flags,
    };
    Ok((pattern, text, flags.as_ref().map_or(Ok(0), flag_bits)?))
}

impl Object for ReModule {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        FLAGS
            .iter()
            .find(|(name, _, _)| *name == key)
            .map(|(_, bit, _)| Value::from_object(ReFlag(*bit)))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "sub" => {
                let (positional, kw) = split_args(args)?;
                let (pattern, repl, text, count, flags): (
                    String,
                    String,
                    String,
                    Option<usize>,
                    Option<Value>,
                ) = from_args(positional)?;
                let (count, flags) = match &kw {
                    Some(kw) => (
                        kw.get::<Option<usize>>("count")?.or(count),
                        kw.get::<Option<Value>>("flags")?.or(flags),
                    ),
                    None => (count, flags),
                };
                let flags = flags.as_ref().map_or(Ok(0), flag_bits)?;
                let re = compile(&with_flags(&pattern, flags))?;
                let repl = python_replacement(&repl);
                let out = re
                    .try_replacen(&text, count.unwrap_or(0), repl.as_str())
                    .map_err(|e| runtime(&pattern, e))?;
                Ok(Value::from(out.into_owned()))
            }
            "findall" => {
                let (pattern, text, flags) = pattern_text_flags(args)?;
                let re = compile(&with_flags(&pattern, flags))?;
                let mut found: Vec<Value> = Vec::new();
                for c in re.captures_iter(text.as_str()) {
                    let c = c.map_err(|e| runtime(&pattern, e))?;
                    found.push(match c.len() {
                        1 => Value::from(c.get(0).map_or("", |m| m.as_str())),
                        2 => Value::from(c.get(1).map_or("", |m| m.as_str())),
                        _ => Value::from(
                            c.iter()
                                .skip(1)
                                .map(|m| Value::from(m.map_or("", |m| m.as_str())))
                                .collect::<Vec<_>>(),
                        ),
                    });
                }
                Ok(Value::from(found))
            }
            "split" => {
                let (pattern, text, flags) = pattern_text_flags(args)?;
                let re = compile(&with_flags(&pattern, flags))?;
                let parts = re
                    .split(&text)
                    .map(|p| p.map(Value::from))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| runtime(&pattern, e))?;
                Ok(Value::from(parts))
            }
            "escape" => {
                let (text,): (String,) = from_args(args)?;
                Ok(Value::from(regex::escape(&text)))
            }
            "search" | "match" | "fullmatch" => {
                let (pattern, text, flags) = pattern_text_flags(args)?;
                let pattern = with_flags(&pattern, flags);
                // `\A` / `\z`: Python's match anchors at the start of the text, never of a line
                let anchored = match method {
                    "match" => format!("\\A(?:{pattern})"),
                    "fullmatch" => format!("\\A(?:{pattern})\\z"),
                    _ => pattern,
                };
                let re = compile(&anchored)?;
                let caps = re
                    .captures(text.as_str())
                    .map_err(|e| runtime(&anchored, e))?;
                Ok(caps.map_or(Value::from(()), |c| {
                    let groups: Vec<Option<String>> = c
                        .iter()
                        .map(|m| m.map(|m| m.as_str().to_string()))
                        .collect();
                    Value::from_object(ReMatch { groups })
                }))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A successful `re.search` / `re.match`.
#[derive(Debug)]
struct ReMatch {
    groups: Vec<Option<String>>,
}

impl Object for ReMatch {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let group = |i: usize| {
            self.groups
                .get(i)
                .cloned()
                .flatten()
                .map_or(Value::from(()), Value::from)
        };
        match method {
            "group" => {
                let (i,): (Option<usize>,) = from_args(args)?;
                Ok(group(i.unwrap_or(0)))
            }
            "groups" => Ok(Value::from(
                (1..self.groups.len()).map(group).collect::<Vec<_>>(),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// dbt's `toyaml(value)`: PyYAML `safe_dump` in block style (keys in insertion order).
pub fn toyaml(value: Value, _kwargs: Kwargs) -> Result<String, Error> {
    let mut out = String::new();
    emit(&value, 0, &mut out)?;
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

fn emit(v: &Value, indent: usize, out: &mut String) -> Result<(), Error> {
    let pad = " ".repeat(indent);
    match v.kind() {
        ValueKind::Map => {
            let keys: Vec<Value> = v.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}\n");
            }
            for (i, k) in keys.iter().enumerate() {
                if i > 0 || !out.ends_with("- ") {
                    out.push_str(&pad);
                }
                out.push_str(&scalar(k));
                out.push(':');
                emit_child(&v.get_item(k)?, indent, out, false)?;
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]\n");
            }
            for (i, item) in items.iter().enumerate() {
                if i > 0 || !out.ends_with("- ") {
                    out.push_str(&pad);
                }
                out.push_str("- ");
                match item.kind() {
                    ValueKind::Map | ValueKind::Seq if item.len().unwrap_or(0) > 0 => {
                        emit(item, indent + 2, out)?
                    }
                    _ => {
                        out.push_str(&scalar_or_empty(item));
                        out.push('\n');
                    }
                }
            }
        }
        _ => {
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
    Ok(())
}

/// The value after `key:`: inline for scalars, on the next lines for collections (lists are
/// not indented under a mapping key, like PyYAML).
fn emit_child(v: &Value, indent: usize, out: &mut String, _in_seq: bool) -> Result<(), Error> {
    match v.kind() {
        ValueKind::Map if v.len().unwrap_or(0) > 0 => {
            out.push('\n');
            emit(v, indent + 2, out)
        }
        ValueKind::Seq | ValueKind::Iterable if v.len().unwrap_or(0) > 0 => {
            out.push('\n');
            emit(v, indent, out)
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar_or_empty(v));
            out.push('\n');
            Ok(())
        }
    }
}

fn scalar_or_empty(v: &Value) -> String {
    match v.kind() {
        ValueKind::Map => "{}".into(),
        ValueKind::Seq | ValueKind::Iterable => "[]".into(),
        _ => scalar(v),
    }
}

fn scalar(v: &Value) -> String {
    match v.kind() {
        ValueKind::None | ValueKind::Undefined => "null".into(),
        ValueKind::Bool => if v.is_true() { "true" } else { "false" }.into(),
        ValueKind::Number => v.to_string(),
        _ => quote_if_needed(&v.to_string()),
    }
}

fn quote_if_needed(s: &str) -> String {
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "" | "null" | "~" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    let numeric = s.parse::<f64>().is_ok();
    let special = s.starts_with(|c: char| "!&*-?:,[]{}#|>@`\"'%= ".contains(c))
        || s.ends_with(' ')
        || s.contains(": ")
        || s.contains(" #")
        || s.contains('\n');
    if reserved || numeric || special {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s.to_string()
    }
}

/// Jinja's `truncate(s, length=255, killwords=False, end='...', leeway=5)`.
pub fn truncate(
    s: String,
    length: Option<usize>,
    killwords: Option<bool>,
    end: Option<String>,
    leeway: Option<usize>,
) -> Result<String, Error> {
    let length = length.unwrap_or(255);
    let end = end.unwrap_or_else(|| "...".into());
    let leeway = leeway.unwrap_or(5);
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= length + leeway {
        return Ok(s);
    }
    let keep = length.saturating_sub(end.chars().count());
    let head: String = chars[..keep.min(chars.len())].iter().collect();
    if killwords.unwrap_or(false) {
        return Ok(head + &end);
    }
    let cut = head.rsplit_once(' ').map_or(head.as_str(), |(a, _)| a);
    Ok(format!("{cut}{end}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_block_style() {
        let v = Value::from_serialize(serde_json::json!({"k": [1, 2], "m": {"a": "x y"}}));
        assert_eq!(
            toyaml(v, Kwargs::from_iter(Vec::<(&str, Value)>::new())).unwrap(),
            "k:\n- 1\n- 2\nm:\n  a: x y\n"
        );
    }

    #[test]
    fn truncates_like_jinja() {
        assert_eq!(
            truncate("ABC".into(), Some(2), Some(true), Some(String::new()), None).unwrap(),
            "ABC"
        );
        assert_eq!(
            truncate("hello world foo".into(), Some(8), None, None, Some(0)).unwrap(),
            "hello..."
        );
    }

    #[test]
    fn python_replacements() {
        assert_eq!(python_replacement(r"\1-$"), "${1}-$$");
    }
}
