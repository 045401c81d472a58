//! The `api` context object: `api.Relation.create(...)` and the adapter's `api.Column` class
//! methods (`translate_type`, `numeric_type`, `string_type`) that dbt's cross-database
//! macros use.

use super::relation::Relation;
use crate::adapters::Adapter;
use minijinja::value::{from_args, Kwargs, Object, Value};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

/// The `api` namespace value.
pub fn api_value(adapter: Adapter) -> Value {
    Value::from_iter([
        ("Relation", Value::from_object(ApiRelation(adapter))),
        ("Column", Value::from_object(ApiColumn(adapter))),
    ])
}

/// `api.Relation` (the adapter's Relation class).
#[derive(Debug)]
struct ApiRelation(Adapter);

impl Object for ApiRelation {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "create" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let (kwargs,): (Kwargs,) = from_args(args)?;
        let part = |k: &str| -> Result<Option<String>, Error> {
            Ok(kwargs
                .get::<Option<Value>>(k)?
                .and_then(|v| (!v.is_none() && !v.is_undefined()).then(|| v.to_string())))
        };
        let mut rel = Relation {
            database: part("database")?,
            schema: part("schema")?,
            identifier: part("identifier")?,
            quote: self.0.spec().quote_policy,
            kind: part("type")?,
            adapter: self.0,
        };
        if let Some(policy) = kwargs.get::<Option<Value>>("quote_policy")? {
            for (i, k) in ["database", "schema", "identifier"].iter().enumerate() {
                if let Ok(v) = policy.get_attr(k) {
                    if !v.is_undefined() {
                        rel.quote[i] = v.is_true();
                    }
                }
            }
        }
        check_length(&rel)?;
        Ok(Value::from_object(rel))
    }
}

/// dbt-postgres / dbt-redshift refuse a typed relation whose identifier is longer than the
/// warehouse allows (their Relation's `__post_init__`); untyped ones (refs, `this`) pass.
pub(super) fn check_length(rel: &Relation) -> Result<(), Error> {
    let max = rel.adapter.spec().max_identifier_len;
    match (max, &rel.identifier, &rel.kind) {
        (Some(max), Some(id), Some(_)) if id.chars().count() > max => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("Relation name '{id}' is longer than {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// `api.Column` with the adapter's type labels.
#[derive(Debug)]
struct ApiColumn(Adapter);

impl Object for ApiColumn {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "translate_type" => {
                let (dtype,): (String,) = from_args(args)?;
                Ok(Value::from(self.0.translate_type(&dtype)))
            }
            "numeric_type" => {
                let (dtype, precision, scale): (String, Option<Value>, Option<Value>) =
                    from_args(args)?;
                let given = |v: &Option<Value>| v.as_ref().filter(|v| !v.is_none()).cloned();
                let ps = match (given(&precision), given(&scale)) {
                    (Some(p), Some(s)) => Some((p.to_string(), s.to_string())),
                    _ => None,
                };
                Ok(Value::from(self.0.numeric_type(&dtype, ps)))
            }
            "string_type" => {
                let (size,): (i64,) = from_args(args)?;
                Ok(Value::from(self.0.string_type(size)))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}
