//! YAML loading with PyYAML's YAML 1.1 semantics. dbt reads every YAML file with PyYAML's
//! SafeLoader, so `yes`/`off` are booleans, `010` is octal and `1:30` is sexagesimal. yaml-rust2
//! resolves scalars the YAML 1.2 way, so we take its raw event stream (scalar text + style) and
//! resolve plain scalars ourselves with PyYAML's implicit resolver rules.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A YAML syntax error with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

/// Parses the first document of `text` into JSON values the way PyYAML's SafeLoader would.
/// An empty document is `Value::Null`.
pub fn load(text: &str) -> Result<Value, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| YamlError {
        line: e.marker().line(),
        message: e.info().to_string(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    let mut root = builder.root.unwrap_or(Value::Null);
    // a block scalar that ends the text without a final line break has none in its value
    // (PyYAML, the YAML spec); yaml-rust2 adds one. It is the last value in document order.
    if builder.last_was_block && !text.ends_with('\n') {
        if let Some(Value::String(last)) = last_leaf(&mut root) {
            if last.ends_with('\n') {
                last.pop();
            }
        }
    }
    Ok(root)
}

/// The value parsed last: the last entry of the last collection, recursively.
fn last_leaf(v: &mut Value) -> Option<&mut Value> {
    match v {
        Value::Array(items) => last_leaf(items.last_mut()?),
        Value::Object(map) => last_leaf(map.values_mut().last()?),
        other => Some(other),
    }
}

enum Frame {
    Seq(Vec<Value>, usize),
    Map(Map<String, Value>, Option<Value>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    anchors: HashMap<usize, Value>,
    error: Option<YamlError>,
    done: bool,
    /// whether the latest value event was a literal or folded block scalar
    last_was_block: bool,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        if matches!(
            ev,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        ) {
            self.last_was_block = matches!(
                ev,
                Event::Scalar(_, TScalarStyle::Literal | TScalarStyle::Folded, ..)
            );
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let v = resolve_scalar(&text, style, tag.as_ref());
                self.push(v, anchor, mark);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), anchor)),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(Map::new(), None, anchor)),
            Event::SequenceEnd => {
                if let Some(Frame::Seq(items, anchor)) = self.stack.pop() {
                    self.push(Value::Array(items), anchor, mark);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(map, _, anchor)) = self.stack.pop() {
                    self.push(Value::Object(map), anchor, mark);
                }
            }
            Event::Alias(id) => {
                let v = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                self.push(v, 0, mark);
            }
            Event::DocumentEnd => self.done = self.root.is_some(),
            _ => {}
        }
    }
}

impl Builder {
    fn push(&mut self, v: Value, anchor: usize, mark: Marker) {
        if anchor > 0 {
            self.anchors.insert(anchor, v.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(v),
            Some(Frame::Seq(items, _)) => items.push(v),
            Some(Frame::Map(map, pending, _)) => match pending.take() {
                None => *pending = Some(v),
                Some(key) => insert_pair(map, key, v, mark, &mut self.error),
            },
        }
    }
}

fn insert_pair(
    map: &mut Map<String, Value>,
    key: Value,
    v: Value,
    mark: Marker,
    error: &mut Option<YamlError>,
) {
    if key.as_str() == Some("<<") {
        merge_into(map, v, mark, error);
        return;
    }
    map.insert(key_string(&key), v);
}

/// YAML merge keys (`<<: *base`): keys already present win, like PyYAML.
fn merge_into(map: &mut Map<String, Value>, v: Value, mark: Marker, error: &mut Option<YamlError>) {
    let sources = match v {
        Value::Object(m) => vec![m],
        Value::Array(items) => items
            .into_iter()
            .filter_map(|i| match i {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => {
            *error = Some(YamlError {
                line: mark.line(),
                message: "merge key expects a mapping or a list of mappings".into(),
            });
            return;
        }
    };
    for src in sources {
        for (k, val) in src {
            if !map.contains_key(&k) {
                map.insert(k, val);
            }
        }
    }
}

/// Renders a non-string mapping key like Python's `str()` would after json round-tripping.
fn key_string(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "true".into(),
        Value::Bool(false) => "false".into(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn resolve_scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag {
        if let Some(v) = resolve_tagged(text, tag) {
            return v;
        }
    }
    if style != TScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    resolve_plain(text)
}

fn resolve_tagged(text: &str, tag: &Tag) -> Option<Value> {
    if tag.handle != "!!" && tag.handle != "tag:yaml.org,2002:" {
        return None;
    }
    match tag.suffix.as_str() {
        "str" => Some(Value::String(text.to_string())),
        "int" => parse_int(text).map(Value::from),
        "float" => parse_float(text).and_then(float_value),
        "bool" => parse_bool(text).map(Value::Bool),
        "null" => Some(Value::Null),
        _ => None,
    }
}

/// PyYAML's implicit resolvers for plain scalars (bool, int, float, null; timestamps stay text).
pub fn resolve_plain(text: &str) -> Value {
    if is_null(text) {
        return Value::Null;
    }
    if let Some(b) = parse_bool(text) {
        return Value::Bool(b);
    }
    if let Some(i) = parse_int(text) {
        return Value::from(i);
    }
    if let Some(v) = parse_float(text).and_then(float_value) {
        return v;
    }
    Value::String(text.to_string())
}

fn float_value(f: f64) -> Option<Value> {
    Number::from_f64(f).map(Value::Number)
}

fn is_null(t: &str) -> bool {
    matches!(t, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(t: &str) -> Option<bool> {
    match t {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn split_sign(t: &str) -> (i64, &str) {
    match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    }
}

fn all_in(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    !s.is_empty() && s.bytes().all(ok)
}

/// `[-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ | sexagesimal`
pub fn parse_int(t: &str) -> Option<i64> {
    let (sign, body) = split_sign(t);
    let digits = |s: &str| s.replace('_', "");
    let value = if let Some(b) = body.strip_prefix("0b") {
        if !all_in(b, |c| c == b'0' || c == b'1' || c == b'_') {
            return None;
        }
        i64::from_str_radix(&digits(b), 2).ok()?
    } else if let Some(h) = body.strip_prefix("0x") {
        if !all_in(h, |c| c.is_ascii_hexdigit() || c == b'_') {
            return None;
        }
        i64::from_str_radix(&digits(h), 16).ok()?
    } else if body == "0" {
        0
    } else if let Some(o) = body.strip_prefix('0') {
        if !all_in(o, |c| (b'0'..=b'7').contains(&c) || c == b'_') {
            return None;
        }
        let d = digits(o);
        if d.is_empty() {
            0
        } else {
            i64::from_str_radix(&d, 8).ok()?
        }
    } else if body.contains(':') {
        sexagesimal_int(body)?
    } else {
        let first = body.as_bytes().first()?;
        if !(b'1'..=b'9').contains(first) || !all_in(body, |c| c.is_ascii_digit() || c == b'_') {
            return None;
        }
        digits(body).parse::<i64>().ok()?
    };
    value.checked_mul(sign)
}

/// `[1-9][0-9_]*(:[0-5]?[0-9])+`
fn sexagesimal_int(body: &str) -> Option<i64> {
    let mut parts = body.split(':');
    let head = parts.next()?;
    let first = head.as_bytes().first()?;
    if !(b'1'..=b'9').contains(first) || !all_in(head, |c| c.is_ascii_digit() || c == b'_') {
        return None;
    }
    let mut value: i64 = head.replace('_', "").parse().ok()?;
    for part in parts {
        if !is_base60_digit(part) {
            return None;
        }
        value = value
            .checked_mul(60)?
            .checked_add(part.parse::<i64>().ok()?)?;
    }
    Some(value)
}

fn is_base60_digit(part: &str) -> bool {
    let b = part.as_bytes();
    match b.len() {
        1 => b[0].is_ascii_digit(),
        2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
        _ => false,
    }
}

/// PyYAML's float resolver: requires a dot (or inf/nan); exponent needs a sign.
pub fn parse_float(t: &str) -> Option<f64> {
    let (sign, body) = split_sign(t);
    let signf = sign as f64;
    match body {
        ".inf" | ".Inf" | ".INF" => return Some(signf * f64::INFINITY),
        ".nan" | ".NaN" | ".NAN" if sign == 1 && !t.starts_with('+') => return Some(f64::NAN),
        _ => {}
    }
    if body.contains(':') {
        return sexagesimal_float(body).map(|v| signf * v);
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let dot = mantissa.find('.')?;
    let (int_part, frac_part) = (&mantissa[..dot], &mantissa[dot + 1..]);
    let int_ok = if int_part.is_empty() {
        !frac_part.is_empty() && t.len() == body.len()
    } else {
        int_part.as_bytes()[0].is_ascii_digit()
            && int_part.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    };
    if !int_ok || !frac_part.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
        return None;
    }
    if int_part.is_empty() && !frac_part.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    if let Some(exp) = exponent {
        let (_, digits) = split_sign(exp);
        if !(exp.starts_with('+') || exp.starts_with('-'))
            || !all_in(digits, |c| c.is_ascii_digit())
        {
            return None;
        }
    }
    let cleaned = body.replace('_', "");
    let cleaned = if cleaned.ends_with('.') || cleaned.contains(".e") || cleaned.contains(".E") {
        cleaned.replacen('.', ".0", 1)
    } else {
        cleaned
    };
    cleaned.parse::<f64>().ok().map(|v| signf * v)
}

fn sexagesimal_float(body: &str) -> Option<f64> {
    let mut parts: Vec<&str> = body.split(':').collect();
    let last = parts.pop()?;
    let dot = last.find('.')?;
    let (sec, frac) = (&last[..dot], &last[dot + 1..]);
    if !is_base60_digit(sec) || !frac.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
        return None;
    }
    let head = parts.first()?;
    if !all_in(head, |c| c.is_ascii_digit() || c == b'_') || !head.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let mut value: f64 = head.replace('_', "").parse().ok()?;
    for p in &parts[1..] {
        if !is_base60_digit(p) {
            return None;
        }
        value = value * 60.0 + p.parse::<f64>().ok()?;
    }
    let last_val: f64 = format!("{sec}.{}0", frac.replace('_', "")).parse().ok()?;
    Some(value * 60.0 + last_val)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml11_booleans_and_nulls() {
        assert_eq!(resolve_plain("yes"), json!(true));
        assert_eq!(resolve_plain("NO"), json!(false));
        assert_eq!(resolve_plain("on"), json!(true));
        assert_eq!(resolve_plain("Off"), json!(false));
        assert_eq!(resolve_plain("y"), json!("y"));
        assert_eq!(resolve_plain("~"), json!(null));
        assert_eq!(resolve_plain("nUll"), json!("nUll"));
    }

    #[test]
    fn yaml11_integers() {
        assert_eq!(resolve_plain("010"), json!(8));
        assert_eq!(resolve_plain("1:30"), json!(90));
        assert_eq!(resolve_plain("0x1F"), json!(31));
        assert_eq!(resolve_plain("0b101"), json!(5));
        assert_eq!(resolve_plain("1_000"), json!(1000));
        assert_eq!(resolve_plain("-42"), json!(-42));
        assert_eq!(resolve_plain("09"), json!("09"));
        assert_eq!(resolve_plain("1:60"), json!("1:60"));
    }

    #[test]
    fn yaml11_floats() {
        assert_eq!(resolve_plain("1.5"), json!(1.5));
        assert_eq!(resolve_plain("1e3"), json!("1e3"));
        assert_eq!(resolve_plain("1.0e+3"), json!(1000.0));
        assert_eq!(resolve_plain(".5"), json!(0.5));
        assert_eq!(resolve_plain("1."), json!(1.0));
        assert_eq!(resolve_plain("1:30.5"), json!(90.5));
        assert_eq!(resolve_plain("."), json!("."));
        assert_eq!(resolve_plain("2024-01-01"), json!("2024-01-01"));
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let v = load("a: \"NO\"\nb: NO\nc: '010'\nd: 010\n").unwrap();
        assert_eq!(v, json!({"a": "NO", "b": false, "c": "010", "d": 8}));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let v = load("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n").unwrap();
        assert_eq!(v["other"], json!({"x": 1, "y": 3}));
    }

    #[test]
    fn broken_yaml_reports_line() {
        let err = load("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line >= 2, "line was {}", err.line);
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(load("").unwrap(), Value::Null);
        assert_eq!(load("# only a comment\n").unwrap(), Value::Null);
    }

    #[test]
    fn block_scalar_ending_the_text_has_no_final_newline() {
        let v = load("a:\n  b: >\n    x\n    y").unwrap();
        assert_eq!(v["a"]["b"], "x y");
        let v = load("a:\n  b: >\n    x\n    y\n").unwrap();
        assert_eq!(v["a"]["b"], "x y\n");
        let v = load("a: |\n  x\nc: d").unwrap();
        assert_eq!(v["a"], "x\n");
    }
}
