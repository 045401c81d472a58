//! The `adapter` object templates call: `adapter.dispatch` (dbt's search order through the
//! root's `dispatch:` config and the adapter's parents), quoting, and the answers an empty,
//! unreachable warehouse gives to relation and column lookups (recorded as warehouse use).

use super::builtins::split_kwargs;
use super::context::{err, MacroFn, RenderCtx};
use minijinja::value::{from_args, Object, Value};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

/// The `adapter` object: dispatch, quoting, and offline answers for warehouse lookups.
#[derive(Debug)]
pub(super) struct Adapter {
    pub(super) rc: Arc<RenderCtx>,
    pub(super) macro_package: Option<String>,
}

impl Object for Adapter {
    /// Python objects are truthy (minijinja's default makes non-enumerable objects falsy).
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let rc = &self.rc;
        let record = |what: &str| {
            if rc.execute {
                rc.rec().warehouse_calls.push(format!("adapter.{what}"));
            }
        };
        match method {
            "dispatch" => self.dispatch(args),
            "quote" => {
                let (s,): (String,) = from_args(args)?;
                Ok(Value::from(rc.scope.adapter.quote(&s)))
            }
            "type" => Ok(Value::from(rc.scope.adapter.name())),
            // dbt-databricks: a SQL warehouse reports the newest runtime, so every
            // comparison answers "newer"
            "compare_dbr_version" if rc.scope.adapter == crate::adapters::Adapter::Databricks => {
                Ok(Value::from(1))
            }
            "get_relation" | "load_relation" | "load_cached_relation" => {
                record(method);
                Ok(Value::from(()))
            }
            "get_columns_in_relation"
            | "list_relations_without_caching"
            | "list_schemas"
            | "get_missing_columns"
            | "get_relations_by_pattern" => {
                record(method);
                Ok(Value::from(Vec::<Value>::new()))
            }
            "check_schema_exists" | "already_exists" => {
                record(method);
                Ok(Value::from(false))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

impl Adapter {
    fn dispatch(&self, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs) = split_kwargs(args);
        let name = positional
            .first()
            .and_then(|v| v.as_str().map(str::to_string))
            .ok_or_else(|| err("adapter.dispatch() needs a macro name"))?;
        let mut namespace = positional
            .get(1)
            .and_then(|v| v.as_str().map(str::to_string));
        if let Some(kw) = kwargs {
            if let Ok(Some(ns)) = kw.get::<Option<String>>("macro_namespace") {
                namespace = Some(ns);
            }
        }
        let rc = &self.rc;
        let found = rc.scope.dispatch_macro(
            &name,
            namespace.as_deref(),
            &rc.node.package,
            self.macro_package.as_deref(),
        );
        match found {
            Some(m) => Ok(MacroFn::value(m.clone(), rc.clone())),
            None => Err(err(format!(
                "in dispatch: no macro named '{name}' found within namespace: '{}'",
                namespace.unwrap_or_default()
            ))),
        }
    }
}
