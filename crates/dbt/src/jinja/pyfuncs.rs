//! Node-independent functions of dbt's Jinja context: `tojson`/`fromjson` with Python's JSON
//! formatting, `local_md5`, `zip`, and `exceptions` (`modules.datetime` and `run_started_at` are in `pydatetime`).

use super::values::py_str;
use md5::{Digest, Md5};
use minijinja::value::{Kwargs, Object, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::Value as Json;
use std::sync::Arc;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Python's `json.dumps` (default separators, ensure_ascii).
pub fn py_json_dumps(j: &Json, sort_keys: bool) -> String {
    match j {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => py_json_string(s),
        Json::Array(items) => {
            let parts: Vec<String> = items.iter().map(|i| py_json_dumps(i, sort_keys)).collect();
            format!("[{}]", parts.join(", "))
        }
        Json::Object(m) => {
            let mut entries: Vec<(&String, &Json)> = m.iter().collect();
            if sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            let parts: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}: {}", py_json_string(k), py_json_dumps(v, sort_keys)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn py_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let j = serde_json::to_value(&value).map_err(|e| err(format!("tojson: {e}")))?;
    Ok(Value::from(py_json_dumps(&j, sort_keys)))
}

pub fn fromjson(s: String, default: Option<Value>) -> Result<Value, Error> {
    match serde_json::from_str::<Json>(&s) {
        Ok(j) => Ok(Value::from_serialize(&j)),
        Err(e) => default.ok_or_else(|| err(format!("fromjson: {e}"))),
    }
}

pub fn fromyaml(s: String, default: Option<Value>) -> Result<Value, Error> {
    match crate::yaml::load(&s) {
        Ok(j) => Ok(Value::from_serialize(&j)),
        Err(e) => default.ok_or_else(|| err(format!("fromyaml: {e}"))),
    }
}

pub fn local_md5(s: String) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

pub fn zip(args: &[Value]) -> Result<Value, Error> {
    let lists: Vec<Vec<Value>> = args
        .iter()
        .map(|a| a.try_iter().map(|it| it.collect()))
        .collect::<Result<_, _>>()?;
    let n = lists.iter().map(Vec::len).min().unwrap_or(0);
    Ok(Value::from(
        (0..n)
            .map(|i| Value::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>()))
            .collect::<Vec<_>>(),
    ))
}

/// `set` / `set_strict`: the distinct items, in first-seen order. dbt returns a Python `set`,
/// whose iteration order over strings follows the process's hash seed (`PYTHONHASHSEED`,
/// random per run unless set), so dbt itself compiles a loop over a set in a different
/// order from run to run; no order can match it every time. First-seen order is the one
/// deterministic choice that does not depend on a hash function.
pub fn py_set(v: Value) -> Result<Value, Error> {
    let mut out: Vec<Value> = Vec::new();
    for item in v.try_iter()? {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(Value::from(out))
}

/// `as_bool` / `as_native` / `as_number`: dbt's native-type coercion filters.
pub fn as_native(v: Value) -> Value {
    match v.as_str() {
        Some(s) => native_from_str(s),
        None => v,
    }
}

/// Python `ast.literal_eval`-lite: booleans, None, ints, floats; else the string.
pub fn native_from_str(s: &str) -> Value {
    match s.trim() {
        "True" => Value::from(true),
        "False" => Value::from(false),
        "None" => Value::from(()),
        t => t
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| t.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::from(s)),
    }
}

pub fn as_text(v: Value) -> String {
    py_str(&v)
}

/// `exceptions.*`
#[derive(Debug)]
pub struct Exceptions;

impl Object for Exceptions {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let msg = args.first().map(py_str).unwrap_or_default();
        match method {
            "warn" => Ok(Value::from("")),
            "raise_compiler_error" | "raise_not_implemented" | "raise_fail_fast_error" => {
                Err(err(format!("compilation error: {msg}")))
            }
            _ => Err(err(format!("compilation error: {method}: {msg}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_like_python() {
        let j: Json = serde_json::from_str(r#"{"a": [1, 2], "b": "é"}"#).unwrap_or_default();
        assert_eq!(py_json_dumps(&j, false), r#"{"a": [1, 2], "b": "\u00e9"}"#);
    }

    #[test]
    fn set_keeps_first_seen_order() {
        // dbt_project_evaluator's int_all_graph_resources: `set_strict` over its
        // primary-key test macros, with dbt.test_unique appended a second time
        let items = [
            "dbt.test_unique",
            "dbt.test_not_null",
            "dbt_utils.test_unique_combination_of_columns",
            "dbt.test_unique",
        ];
        let got = py_set(Value::from(items.to_vec())).map(|v| v.to_string());
        assert_eq!(
            got.ok().as_deref(),
            Some(
                r#"["dbt.test_unique", "dbt.test_not_null", "dbt_utils.test_unique_combination_of_columns"]"#
            )
        );
    }

    #[test]
    fn md5_hex() {
        assert_eq!(
            local_md5("semantics".into()),
            "b19245958140d2f7ebc3abe806e8f46a"
        );
    }
}
