//! Offline query results shaped like dbt's agate tables. An empty warehouse answers a query
//! with no rows but with the query's columns, so `run_query(sql)` gives a table whose
//! `columns` are named from the query's select list when it can be read (`select 1 as a,
//! t.b, count(*)` → `a`, `b`, `count`, named the way PostgreSQL names result columns);
//! `columns.items()` / `.keys()` / `column_names` then list them, each column's `values()`
//! is empty, and `rows[0]` is undefined (agate raises IndexError, which Jinja turns into an
//! undefined value), so indexing further raises as it does in dbt. When the select list
//! cannot be read (`select *`, not a select), the table has no known columns, and
//! `columns[0]` still yields an empty column, as before.

use super::exprs::PyTuple;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

/// The empty result of `sql`.
pub fn empty_result(sql: &str) -> Value {
    Value::from_object(EmptyTable {
        columns: select_list_names(sql).map(Arc::new),
    })
}

/// An empty agate-like table.
#[derive(Debug)]
pub struct EmptyTable {
    /// the query's column names, when known
    columns: Option<Arc<Vec<String>>>,
}

fn names_tuple(names: &[String]) -> Value {
    Value::from_object(PyTuple(
        names.iter().map(|n| Value::from(n.as_str())).collect(),
    ))
}

impl Object for EmptyTable {
    /// agate's `Table` is a sequence of its rows (`len`, iteration and `[i]` go to the
    /// rows), so an empty table is falsy and iterates over nothing.
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let names = self.columns.as_deref().map(Vec::as_slice).unwrap_or(&[]);
        match key.as_str()? {
            "columns" => Some(Value::from_object(Columns(self.columns.clone()))),
            "column_names" => Some(names_tuple(names)),
            "rows" | "column_types" | "data" => Some(Value::from(Vec::<Value>::new())),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "print_table" | "print_csv" => Ok(Value::from("")),
            "select" | "where" | "order_by" | "limit" => Ok(Value::from_object(EmptyTable {
                columns: self.columns.clone(),
            })),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A table's `columns`: a sequence of columns, also keyed by name (agate's MappedSequence).
#[derive(Debug)]
struct Columns(Option<Arc<Vec<String>>>);

impl Columns {
    fn column(name: &str) -> Value {
        Value::from_object(EmptyColumn(name.to_string()))
    }

    fn names(&self) -> &[String] {
        self.0.as_deref().map(Vec::as_slice).unwrap_or(&[])
    }
}

impl Object for Columns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let Some(names) = &self.0 else {
            // unknown columns: any column is an empty one
            return Some(Self::column(""));
        };
        if let Some(name) = key.as_str() {
            return names.iter().any(|n| n == name).then(|| Self::column(name));
        }
        let i = key.as_i64()?;
        let i = if i < 0 { i + names.len() as i64 } else { i };
        names.get(usize::try_from(i).ok()?).map(|n| Self::column(n))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.names().len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        let names = self.names();
        match method {
            "keys" => Ok(names_tuple(names)),
            "values" => Ok(Value::from_object(PyTuple(
                names.iter().map(|n| Self::column(n)).collect(),
            ))),
            "items" => Ok(Value::from(
                names
                    .iter()
                    .map(|n| {
                        Value::from_object(PyTuple(vec![Value::from(n.as_str()), Self::column(n)]))
                    })
                    .collect::<Vec<_>>(),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// One column of an empty result: a name, no values.
#[derive(Debug)]
struct EmptyColumn(String);

impl Object for EmptyColumn {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" => Some(Value::from(self.0.as_str())),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "values" | "values_distinct" | "values_without_nulls" => {
                Ok(Value::from_object(PyTuple(Vec::new())))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// The result column names of `select <list> ...` as PostgreSQL names them, or `None` when
/// the list cannot be read.
pub fn select_list_names(sql: &str) -> Option<Vec<String>> {
    let text = strip_comments(sql);
    let t = text.trim_start();
    if !t.get(..6)?.eq_ignore_ascii_case("select") {
        return None;
    }
    let mut body = t[6..].trim_start();
    for kw in ["distinct", "all"] {
        if body.len() > kw.len()
            && body[..kw.len()].eq_ignore_ascii_case(kw)
            && !body.as_bytes()[kw.len()].is_ascii_alphanumeric()
        {
            body = body[kw.len()..].trim_start();
        }
    }
    let items = top_level_items(body)?;
    items.iter().map(|i| column_name(i.trim())).collect()
}

fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.find('\n').map_or("", |p| &r[p..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |p| &r[p + 2..]);
            out.push(' ');
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

/// The comma-separated items of a select list, up to the clause that ends it.
fn top_level_items(body: &str) -> Option<Vec<String>> {
    const ENDS: &[&str] = &[
        "from",
        "where",
        "group",
        "order",
        "limit",
        "union",
        "having",
        "window",
        "offset",
        "intersect",
        "except",
        "into",
        "fetch",
    ];
    let b = body.as_bytes();
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
            }
            b'(' => depth += 1,
            b')' => depth = depth.checked_sub(1)?,
            b',' if depth == 0 => {
                items.push(body[start..i].to_string());
                start = i + 1;
            }
            b';' if depth == 0 => break,
            c if depth == 0 && c.is_ascii_alphabetic() && (i == 0 || !is_word(b[i - 1])) => {
                let end = (i..b.len()).find(|&j| !is_word(b[j])).unwrap_or(b.len());
                let word = body[i..end].to_ascii_lowercase();
                if ENDS.contains(&word.as_str()) {
                    items.push(body[start..i].to_string());
                    return Some(items);
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    items.push(body[start..b.len().min(i)].to_string());
    Some(items)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

/// PostgreSQL's name for one select item: its alias, a column's own name, a function's name,
/// else `?column?`; `None` for `*` (unknown columns).
fn column_name(item: &str) -> Option<String> {
    if item.is_empty() || item == "*" || item.ends_with(".*") {
        return None;
    }
    let ident = |s: &str| -> Option<String> {
        let s = s.trim();
        if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
            return Some(s[1..s.len() - 1].to_string());
        }
        (!s.is_empty() && s.bytes().all(is_word) && !s.as_bytes()[0].is_ascii_digit())
            .then(|| s.to_ascii_lowercase())
    };
    // `expr as alias`
    let lower = item.to_ascii_lowercase();
    if let Some(p) = lower.rfind(" as ") {
        if let Some(a) = ident(&item[p + 4..]) {
            return Some(a);
        }
    }
    // a (qualified) column
    if let Some(last) = item.rsplit('.').next() {
        if item.split('.').all(|p| ident(p).is_some()) {
            return ident(last);
        }
    }
    // a function call
    if let Some(p) = item.find('(') {
        if item.ends_with(')') {
            if let Some(f) = ident(&item[..p]) {
                return Some(f);
            }
        }
    }
    Some("?column?".into())
}

#[cfg(test)]
mod tests {
    use super::select_list_names;

    #[test]
    fn names_columns_like_postgres() {
        let names = |s: &str| select_list_names(s);
        assert_eq!(
            names("select 1 as a, 'x' as b where 1 = 0"),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            names("/* q */ select t.Col, count(*), 1 + 2, \"Q\" from t"),
            Some(vec![
                "col".into(),
                "count".into(),
                "?column?".into(),
                "Q".into()
            ])
        );
        assert_eq!(names("select * from t"), None);
        assert_eq!(names("with x as (select 1) select * from x"), None);
        assert_eq!(
            names("select distinct code from t"),
            Some(vec!["code".into()])
        );
    }
}
