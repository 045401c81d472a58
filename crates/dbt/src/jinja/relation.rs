//! Relation objects (`this`, `ref()` and `source()` results), rendered with the adapter's
//! quote character.

use crate::adapters::Adapter;
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value};
use minijinja::{Error, State};
use std::fmt;
use std::sync::Arc;

/// A warehouse relation `"database"."schema"."identifier"` (backticks on BigQuery and
/// Databricks), or an ephemeral CTE name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Relation {
    pub database: Option<String>,
    pub schema: Option<String>,
    pub identifier: Option<String>,
    /// quoting policy for database, schema, identifier
    pub quote: [bool; 3],
    /// `Some("cte")` for ephemeral models
    pub kind: Option<String>,
    /// whose Relation class this is (the quote character)
    pub adapter: Adapter,
}

impl Relation {
    pub fn table(
        adapter: Adapter,
        database: &str,
        schema: &str,
        identifier: &str,
        quote: [bool; 3],
    ) -> Self {
        Self {
            database: Some(database.to_string()),
            schema: Some(schema.to_string()),
            identifier: Some(identifier.to_string()),
            quote,
            kind: None,
            adapter,
        }
    }

    pub fn cte(name: &str) -> Self {
        Self {
            identifier: Some(format!("__dbt__cte__{name}")),
            kind: Some("cte".into()),
            ..Self::default()
        }
    }

    /// The rendered relation name, as dbt writes `relation_name`.
    pub fn render(&self) -> String {
        if self.kind.as_deref() == Some("cte") {
            return self.identifier.clone().unwrap_or_default();
        }
        let parts = [&self.database, &self.schema, &self.identifier];
        let q = self.adapter.spec().quote_char;
        let mut out = String::with_capacity(64);
        for (part, quoted) in parts.iter().zip(self.quote) {
            let Some(s) = part.as_deref().filter(|s| !s.is_empty()) else {
                continue;
            };
            if !out.is_empty() {
                out.push('.');
            }
            if quoted {
                out.push(q);
                out.push_str(s);
                out.push(q);
            } else {
                out.push_str(s);
            }
        }
        out
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

fn opt(v: &Option<String>) -> Value {
    v.as_ref()
        .map_or(Value::from(()), |s| Value::from(s.as_str()))
}

/// Keys a relation exposes as a mapping (dbt's relations are `Mapping`s over their fields).
const RELATION_KEYS: &[&str] = &["database", "schema", "identifier", "type"];

/// Methods a relation has (readable as attributes, e.g. `rel.include is defined`).
const RELATION_METHODS: &[&str] = &[
    "render",
    "get",
    "include",
    "quote",
    "incorporate",
    "information_schema",
];

impl Object for Relation {
    /// A mapping, as dbt's `BaseRelation` is: dbt_utils' `_is_relation` checks
    /// `obj is mapping and obj.get('metadata', {}).get('type', '').endswith('Relation')`.
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(RELATION_KEYS)
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        Some(match key {
            "database" => opt(&self.database),
            "schema" => opt(&self.schema),
            "identifier" | "name" | "table" => opt(&self.identifier),
            "type" => opt(&self.kind),
            "is_cte" => Value::from(self.kind.as_deref() == Some("cte")),
            "is_table" => Value::from(self.kind.as_deref() == Some("table")),
            "is_view" => Value::from(self.kind.as_deref() == Some("view")),
            // methods are attributes too (`rel.include is defined`), callable as bound methods
            _ => Value::from_object(BoundMethod {
                target: Value::from_dyn_object(self.clone()),
                method: RELATION_METHODS.iter().find(|m| **m == key)?,
            }),
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "render" => Ok(Value::from(Relation::render(self))),
            // dbt's BaseRelation.get: `metadata` names the relation class, other keys are fields
            "get" => {
                let (key, default): (String, Option<Value>) = minijinja::value::from_args(args)?;
                if key == "metadata" {
                    return Ok(Value::from_iter([(
                        "type",
                        Value::from(self.adapter.spec().relation_class),
                    )]));
                }
                Ok(self
                    .get_value(&Value::from(key))
                    .or(default)
                    .unwrap_or(Value::from(())))
            }
            "include" | "quote" => {
                let kwargs = args.last().and_then(|a| Kwargs::try_from(a.clone()).ok());
                let mut rel = (**self).clone();
                if let Some(kw) = kwargs {
                    let flags: [(&str, usize); 3] =
                        [("database", 0), ("schema", 1), ("identifier", 2)];
                    for (name, idx) in flags {
                        if let Ok(Some(b)) = kw.get::<Option<bool>>(name) {
                            if method == "quote" {
                                rel.quote[idx] = b;
                            } else if !b {
                                match idx {
                                    0 => rel.database = None,
                                    1 => rel.schema = None,
                                    _ => rel.identifier = None,
                                }
                            }
                        }
                    }
                }
                Ok(Value::from_object(rel))
            }
            // dbt's `incorporate(path={...}, type=...)`: a copy with those fields replaced;
            // typed, it is checked against the adapter's name limit as `api.Relation.create`
            "incorporate" => {
                let kwargs = args.last().and_then(|a| Kwargs::try_from(a.clone()).ok());
                let mut rel = (**self).clone();
                if let Some(kw) = kwargs {
                    if let Ok(Some(path)) = kw.get::<Option<Value>>("path") {
                        let part = |k: &str| {
                            path.get_attr(k)
                                .ok()
                                .filter(|v| !v.is_undefined())
                                .map(|v| (!v.is_none()).then(|| v.to_string()))
                        };
                        if let Some(v) = part("database") {
                            rel.database = v;
                        }
                        if let Some(v) = part("schema") {
                            rel.schema = v;
                        }
                        if let Some(v) = part("identifier") {
                            rel.identifier = v;
                        }
                    }
                    if let Ok(Some(kind)) = kw.get::<Option<Value>>("type") {
                        rel.kind = (!kind.is_none()).then(|| kind.to_string());
                    }
                }
                super::api::check_length(&rel)?;
                Ok(Value::from_object(rel))
            }
            // dbt-core's `InformationSchema.from_relation`: the relation's database, then
            // `INFORMATION_SCHEMA` and the view, neither quoted
            // (dbt-bigquery keeps the dataset before it for a view other than SCHEMATA)
            "information_schema" => {
                let (view,): (Option<String>,) = minijinja::value::from_args(args)?;
                let with_dataset = self.adapter == Adapter::Bigquery
                    && view
                        .as_deref()
                        .is_some_and(|v| !matches!(v, "SCHEMATA" | "SCHEMATA_OPTIONS"));
                let schema = match (&self.schema, with_dataset) {
                    (Some(dataset), true) => {
                        let q = if self.quote[1] {
                            self.adapter.spec().quote_char.to_string()
                        } else {
                            String::new()
                        };
                        format!("{q}{dataset}{q}.INFORMATION_SCHEMA")
                    }
                    _ => "INFORMATION_SCHEMA".into(),
                };
                Ok(Value::from_object(Relation {
                    database: self.database.clone(),
                    schema: Some(schema),
                    identifier: view,
                    quote: [self.quote[0], false, false],
                    kind: None,
                    adapter: self.adapter,
                }))
            }
            _ => Err(Error::from(minijinja::ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Relation::render(self))
    }
}

/// `obj.method` read as an attribute: calling it calls the method (Python's bound method).
#[derive(Debug)]
pub struct BoundMethod {
    pub target: Value,
    pub method: &'static str,
}

impl Object for BoundMethod {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        self.target.call_method(state, self.method, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_quoted_and_cte() {
        let r = Relation::table(Adapter::Postgres, "db", "sch", "t", [true, true, true]);
        assert_eq!(r.render(), "\"db\".\"sch\".\"t\"");
        let r = Relation::table(Adapter::Postgres, "db", "sch", "t", [false, true, false]);
        assert_eq!(r.render(), "db.\"sch\".t");
        let r = Relation::table(Adapter::Bigquery, "p", "d", "t", [true, true, true]);
        assert_eq!(r.render(), "`p`.`d`.`t`");
        let r = Relation::table(Adapter::Snowflake, "db", "sch", "t", [false; 3]);
        assert_eq!(r.render(), "db.sch.t");
        assert_eq!(Relation::cte("x").render(), "__dbt__cte__x");
    }
}
