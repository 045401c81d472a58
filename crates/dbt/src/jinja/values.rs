//! Python-flavoured Jinja values: mutable lists and dicts (dbt projects call `append`, `update`,
//! `pop` on them), and Python's rendering of `None`, `True` and containers in output.

use indexmap::IndexMap;
use minijinja::value::{from_args, Enumerator, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A Python-style list that can be mutated in place.
#[derive(Debug, Default)]
pub struct MutList(pub Mutex<Vec<Value>>);

/// A Python-style dict (insertion ordered) that can be mutated in place.
#[derive(Debug, Default)]
pub struct MutDict(pub Mutex<IndexMap<Value, Value>>);

fn bad_args(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.to_string())
}

fn norm_index(len: usize, idx: i64) -> Option<usize> {
    let i = if idx < 0 { len as i64 + idx } else { idx };
    (0..len as i64).contains(&i).then_some(i as usize)
}

impl Object for MutList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = lock(&self.0);
        let idx = i64::try_from(key.clone()).ok()?;
        norm_index(items.len(), idx).map(|i| items[i].clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.0).clone())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.0).len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut items = lock(&self.0);
        match method {
            "append" => {
                let (v,): (Value,) = from_args(args)?;
                items.push(v);
                Ok(Value::from(()))
            }
            "extend" => {
                let (v,): (Value,) = from_args(args)?;
                items.extend(v.try_iter()?);
                Ok(Value::from(()))
            }
            "insert" => {
                let (i, v): (i64, Value) = from_args(args)?;
                let len = items.len() as i64;
                let pos = if i < 0 { (len + i).max(0) } else { i.min(len) } as usize;
                items.insert(pos, v);
                Ok(Value::from(()))
            }
            "pop" => {
                let (i,): (Option<i64>,) = from_args(args)?;
                let idx = norm_index(items.len(), i.unwrap_or(-1))
                    .ok_or_else(|| bad_args("pop index out of range"))?;
                Ok(items.remove(idx))
            }
            "remove" => {
                let (v,): (Value,) = from_args(args)?;
                let pos = items
                    .iter()
                    .position(|x| x == &v)
                    .ok_or_else(|| bad_args("list.remove(x): x not in list"))?;
                items.remove(pos);
                Ok(Value::from(()))
            }
            "index" => {
                let (v,): (Value,) = from_args(args)?;
                items
                    .iter()
                    .position(|x| x == &v)
                    .map(Value::from)
                    .ok_or_else(|| bad_args("value is not in list"))
            }
            "count" => {
                let (v,): (Value,) = from_args(args)?;
                Ok(Value::from(items.iter().filter(|x| *x == &v).count()))
            }
            "reverse" => {
                items.reverse();
                Ok(Value::from(()))
            }
            "sort" => {
                items.sort();
                Ok(Value::from(()))
            }
            "copy" => Ok(Value::from_object(MutList(Mutex::new(items.clone())))),
            "clear" => {
                items.clear();
                Ok(Value::from(()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&py_repr(&Value::from(lock(&self.0).clone())))
    }
}

impl Object for MutDict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        lock(&self.0).get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.0).keys().cloned().collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.0).len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut map = lock(&self.0);
        match method {
            "update" => {
                for arg in args {
                    if arg.kind() == ValueKind::Map {
                        for k in arg.try_iter()? {
                            let v = arg.get_item(&k)?;
                            map.insert(k, v);
                        }
                    }
                }
                Ok(Value::from(()))
            }
            "pop" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                match map.shift_remove(&k) {
                    Some(v) => Ok(v),
                    None => default.ok_or_else(|| bad_args("dict.pop: key not found")),
                }
            }
            "setdefault" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                let v = default.unwrap_or(Value::from(()));
                Ok(map.entry(k).or_insert(v).clone())
            }
            "get" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                Ok(map
                    .get(&k)
                    .cloned()
                    .unwrap_or(default.unwrap_or(Value::from(()))))
            }
            "items" => Ok(Value::from(
                map.iter()
                    .map(|(k, v)| Value::from(vec![k.clone(), v.clone()]))
                    .collect::<Vec<_>>(),
            )),
            "keys" => Ok(Value::from(map.keys().cloned().collect::<Vec<_>>())),
            "values" => Ok(Value::from(map.values().cloned().collect::<Vec<_>>())),
            "copy" => Ok(Value::from_object(MutDict(Mutex::new(map.clone())))),
            "clear" => {
                map.clear();
                Ok(Value::from(()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = lock(&self.0);
        let mut out = String::from("{");
        for (i, (k, v)) in map.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&py_repr(k));
            out.push_str(": ");
            out.push_str(&py_repr(v));
        }
        out.push('}');
        f.write_str(&out)
    }
}

/// `__bf_mut(value)`: turns plain lists/dicts into mutable ones; other values pass through.
pub fn make_mutable(value: Value) -> Result<Value, Error> {
    if value.downcast_object_ref::<MutList>().is_some()
        || value.downcast_object_ref::<MutDict>().is_some()
    {
        return Ok(value);
    }
    match value.kind() {
        ValueKind::Seq if value.downcast_object_ref::<Vec<Value>>().is_some() => {
            let items: Vec<Value> = value.try_iter()?.collect();
            Ok(Value::from_object(MutList(Mutex::new(items))))
        }
        ValueKind::Map if is_plain_map(&value) => {
            let mut map = IndexMap::new();
            for k in value.try_iter()? {
                let v = value.get_item(&k)?;
                map.insert(k, v);
            }
            Ok(Value::from_object(MutDict(Mutex::new(map))))
        }
        _ => Ok(value),
    }
}

/// Only convert real dict literals; custom objects (relations, namespaces) keep their identity.
fn is_plain_map(value: &Value) -> bool {
    value
        .downcast_object_ref::<IndexMap<Value, Value>>()
        .is_some()
}

/// Python's `repr()` of a value, used inside rendered containers.
pub fn py_repr(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default();
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        ValueKind::Seq if v.downcast_object_ref::<super::exprs::PyTuple>().is_some() => {
            let items: Vec<Value> = v.try_iter().map(|it| it.collect()).unwrap_or_default();
            super::exprs::tuple_repr(&items)
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = v
                .try_iter()
                .map(|it| it.map(|x| py_repr(&x)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map if is_plain_map(v) || v.downcast_object_ref::<MutDict>().is_some() => {
            let mut parts = Vec::new();
            if let Ok(keys) = v.try_iter() {
                for k in keys {
                    let val = v.get_item(&k).unwrap_or_default();
                    parts.push(format!("{}: {}", py_repr(&k), py_repr(&val)));
                }
            }
            format!("{{{}}}", parts.join(", "))
        }
        _ => v.to_string(),
    }
}

/// Python's `str()` of a value: what `{{ value }}` prints in dbt's Jinja.
pub fn py_str(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::None => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        ValueKind::Seq => py_repr(v),
        ValueKind::Map if is_plain_map(v) => py_repr(v),
        _ => v.to_string(),
    }
}

/// The environment formatter: Python `str()` semantics, no auto-escaping (dbt renders SQL).
pub fn formatter(out: &mut minijinja::Output, _state: &State, value: &Value) -> Result<(), Error> {
    std::fmt::Write::write_str(out, &py_str(value))
        .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rendering() {
        assert_eq!(py_str(&Value::from(true)), "True");
        assert_eq!(py_str(&Value::from(())), "None");
        assert_eq!(py_str(&Value::from(vec!["a", "b"])), "['a', 'b']");
        assert_eq!(py_repr(&Value::from("it's")), "\"it's\"");
    }

    #[test]
    fn mutable_list_roundtrip() {
        let v = make_mutable(Value::from(vec![Value::from(1), Value::from(2)])).unwrap();
        assert!(v.downcast_object_ref::<MutList>().is_some());
        assert_eq!(v.len(), Some(2));
    }
}
