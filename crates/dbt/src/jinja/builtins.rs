//! dbt's built-in context functions as template values: `ref`, `source`, `config` (with
//! `.get` / `.require` / `.set`), `var`, `env_var`, `return`, `doc`, `run_query`,
//! `statement` / `load_result`, and `builtins` (the originals, whatever project macros shadow
//! them). Each records what it resolved on the render's [`Recording`].

use super::context::{
    err, json_to_value, value_to_json, RefCall, RenderCtx, MAX_MACRO_DEPTH, RETURN_MARKER,
};
use super::relation::Relation;
use super::values::make_mutable;
use minijinja::value::{from_args, Kwargs, Object, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::{Map, Value as Json};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
    Ref,
    Source,
    Config,
    Var,
    EnvVar,
    Return,
    Doc,
    RunQuery,
    Statement,
    LoadResult,
    StoreResult,
}

#[derive(Debug)]
pub(super) struct BuiltinFn {
    kind: Builtin,
    pub(super) rc: Arc<RenderCtx>,
}

/// The context member `key` names when it is one of dbt's built-in functions.
pub(super) fn builtin_value(rc: &Arc<RenderCtx>, key: &str) -> Option<Value> {
    let kind = match key {
        "ref" => Builtin::Ref,
        "source" => Builtin::Source,
        "config" => Builtin::Config,
        "var" => Builtin::Var,
        "env_var" => Builtin::EnvVar,
        "return" => Builtin::Return,
        "doc" => Builtin::Doc,
        "run_query" => Builtin::RunQuery,
        "statement" => Builtin::Statement,
        "load_result" => Builtin::LoadResult,
        "store_result" | "store_raw_result" => Builtin::StoreResult,
        _ => return None,
    };
    Some(Value::from_object(BuiltinFn {
        kind,
        rc: rc.clone(),
    }))
}

/// dbt's `builtins`: the context's own functions, whatever macros shadow them.
#[derive(Debug)]
pub(super) struct Builtins {
    pub(super) rc: Arc<RenderCtx>,
}

impl Object for Builtins {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        builtin_value(&self.rc, key.as_str()?)
    }
}

impl Object for BuiltinFn {
    /// Python objects are truthy (minijinja's default makes non-enumerable objects falsy).
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    /// `ref.config` / `source.config`: the resolvers carry dbt's runtime config.
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match (self.kind, key.as_str()?) {
            (Builtin::Ref | Builtin::Source, "config") => {
                Some(Value::from_object(super::runtime_config::RuntimeConfig {
                    scope: self.rc.scope.clone(),
                }))
            }
            _ => None,
        }
    }

    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match self.kind {
            Builtin::Ref => self.call_ref(args),
            Builtin::Source => self.call_source(args),
            Builtin::Config => self.call_config(args),
            Builtin::Var => self.call_var(state, args),
            Builtin::EnvVar => self.call_env_var(args),
            Builtin::Return => self.call_return(args),
            Builtin::Doc => self.call_doc(args),
            Builtin::RunQuery => {
                // dbt's run_query is a macro: called from the node itself it is a dependency
                let mut rec = self.rc.rec();
                if rec.depth == 0 && !rec.macros.iter().any(|m| m == RUN_QUERY_MACRO) {
                    rec.macros.push(RUN_QUERY_MACRO.to_string());
                }
                drop(rec);
                self.warehouse("run_query", query_result(self.rc.execute, args))
            }
            Builtin::Statement => {
                // dbt's `statement` is a macro: a call from the node's own code is a
                // dependency
                let mut rec = self.rc.rec();
                if rec.depth == 0 && !rec.macros.iter().any(|m| m == STATEMENT_MACRO) {
                    rec.macros.push(STATEMENT_MACRO.to_string());
                }
                drop(rec);
                self.call_statement(state, args)
            }
            Builtin::LoadResult => Ok(if self.rc.execute {
                let name = args.first().and_then(|v| v.as_str()).unwrap_or_default();
                let sql = self
                    .rc
                    .rec()
                    .statements
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, sql)| sql.clone());
                match sql {
                    // the statement's result: an empty table with its query's columns
                    Some(sql) => Value::from_iter([
                        ("data", Value::from(Vec::<Value>::new())),
                        ("table", super::agate::empty_result(&sql)),
                        (
                            "response",
                            Value::from_serialize(
                                serde_json::json!({"code": "", "rows_affected": 0}),
                            ),
                        ),
                    ]),
                    None => Value::from_serialize(serde_json::json!({
                    "data": [], "table": {"rows": [], "columns": [], "column_names": []},
                    "response": {"code": "", "rows_affected": 0}
                    })),
                }
            } else {
                Value::from(())
            }),
            Builtin::StoreResult => Ok(Value::from("")),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match (self.kind, method) {
            (Builtin::Config, "get") => {
                let (key, default): (String, Option<Value>) = from_args(args)?;
                Ok(self
                    .rc
                    .node
                    .config
                    .get(&key)
                    .filter(|v| !v.is_null())
                    .map(json_to_value)
                    .or(default)
                    .unwrap_or(Value::from(())))
            }
            (Builtin::Config, "require") => {
                let (key,): (String,) = from_args(args)?;
                match self.rc.node.config.get(&key) {
                    Some(v) => Ok(json_to_value(v)),
                    None if !self.rc.execute => Ok(Value::from("")),
                    None => Err(err(format!("required config '{key}' was not set"))),
                }
            }
            // dbt's `config.set(name, value)` is `config({name: value})`
            (Builtin::Config, "set") => {
                let (name, value): (String, Value) = from_args(args)?;
                self.call_config(&[Value::from_iter([(name, value)])])
            }
            (Builtin::Var, "has_var") => {
                let (name,): (String,) = from_args(args)?;
                Ok(Value::from(
                    self.rc.scope.var(&name, &self.rc.node.package).is_some(),
                ))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `run_query(sql)`: at compile time an empty agate table with the query's columns (as an
/// empty warehouse answers), at parse time `None`.
const RUN_QUERY_MACRO: &str = "macro.dbt.run_query";
const STATEMENT_MACRO: &str = "macro.dbt.statement";

fn query_result(execute: bool, args: &[Value]) -> Value {
    if execute {
        let sql = args.first().and_then(|v| v.as_str()).unwrap_or_default();
        super::agate::empty_result(sql)
    } else {
        Value::from(())
    }
}

impl BuiltinFn {
    fn warehouse(&self, what: &str, result: Value) -> Result<Value, Error> {
        if self.rc.execute {
            self.rc.rec().warehouse_calls.push(what.to_string());
        }
        Ok(result)
    }

    fn call_ref(&self, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs) = split_kwargs(args);
        let mut version = None;
        if let Some(kw) = &kwargs {
            for key in ["version", "v"] {
                if let Ok(Some(v)) = kw.get::<Option<Value>>(key) {
                    version = Some(version_string(&v));
                }
            }
        }
        let strs: Vec<String> = positional.iter().map(|v| v.to_string()).collect();
        let (package, name) = match strs.as_slice() {
            [name] => (None, name.clone()),
            [pkg, name] => (Some(pkg.clone()), name.clone()),
            _ => return Err(err("ref() takes one or two positional arguments")),
        };
        let call = RefCall {
            package: package.clone(),
            name: name.clone(),
            version: version.clone(),
        };
        let rc = &self.rc;
        rc.rec().refs.push(call);
        let target = rc.scope.resolve_ref(
            &name,
            package.as_deref(),
            version.as_deref(),
            &rc.node.package,
        );
        match target {
            Some(t) if t.ephemeral && rc.execute => {
                let mut rec = rc.rec();
                if !rec.ctes.contains(&t.unique_id) {
                    rec.ctes.push(t.unique_id.clone());
                }
                Ok(Value::from_object(Relation::cte(&t.name)))
            }
            Some(t) => Ok(t
                .relation
                .clone()
                .or_else(|| rc.node.this.clone())
                .map(Value::from_object)
                .unwrap_or(Value::from(name))),
            None if rc.execute => Err(err(format!(
                "{} depends on a node named '{}' which was not found",
                rc.node.unique_id, name
            ))),
            None => Ok(rc
                .node
                .this
                .clone()
                .map(Value::from_object)
                .unwrap_or_default()),
        }
    }

    fn call_source(&self, args: &[Value]) -> Result<Value, Error> {
        let (source, table): (String, String) = from_args(args)?;
        let rc = &self.rc;
        rc.rec().sources.push((source.clone(), table.clone()));
        match rc.scope.resolve_source(&source, &table, &rc.node.package) {
            Some(t) => Ok(Value::from_object(t.relation.clone())),
            None if rc.execute => Err(err(format!(
                "{} depends on a source named '{source}.{table}' which was not found",
                rc.node.unique_id
            ))),
            None => Ok(Value::from_object(Relation::table(
                rc.scope.adapter,
                "",
                &source,
                &table,
                rc.scope.adapter.spec().quote_policy,
            ))),
        }
    }

    fn call_config(&self, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs) = split_kwargs(args);
        let mut map = Map::new();
        if let Some(first) = positional.first() {
            if let Json::Object(m) = value_to_json(first) {
                map.extend(m);
            }
        }
        if let Some(kw) = kwargs {
            for key in kw.args() {
                let v = kw.get::<Value>(key)?;
                map.insert(key.to_string(), value_to_json(&v));
            }
        }
        if !self.rc.execute {
            self.rc.rec().config_calls.push(map);
        }
        Ok(Value::from(""))
    }

    fn call_var(&self, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (name, _): (String, Option<Value>) = from_args(args)?;
        // an explicit `none` default counts as a default
        let default = args.get(1).cloned();
        match self.rc.scope.var(&name, &self.rc.node.package) {
            // dbt renders a string value (never a list or dict, never the default) when
            // `var()` returns it, in the calling node's context
            Some(Json::String(s)) if has_render_chars(&s) => self.render_var(state, &name, &s),
            Some(v) => Ok(make_mutable(json_to_value(&v))?),
            None => default.ok_or_else(|| {
                err(format!(
                    "required var '{name}' not found in config: vars supplied to {} = {{}}",
                    self.rc.node.name
                ))
            }),
        }
    }

    fn render_var(&self, state: &State<'_, '_>, name: &str, text: &str) -> Result<Value, Error> {
        {
            let mut rec = self.rc.rec();
            if rec.depth >= MAX_MACRO_DEPTH {
                return Err(err(format!(
                    "var '{name}' refers to itself (rendering nested deeper than {MAX_MACRO_DEPTH})"
                )));
            }
            rec.depth += 1;
        }
        let prepared = super::prepare(text);
        let result = state
            .env()
            .template_from_str(&prepared)
            .and_then(|t| t.render(self.rc.root_value()));
        let mut rec = self.rc.rec();
        rec.depth = rec.depth.saturating_sub(1);
        drop(rec);
        result
            .map(Value::from)
            .map_err(|e| err(format!("rendering var '{name}': {}", super::describe(&e))))
    }

    fn call_env_var(&self, args: &[Value]) -> Result<Value, Error> {
        let (name, default): (String, Option<Value>) = from_args(args)?;
        match self.rc.scope.env.get(&name) {
            Some(v) => Ok(Value::from(v.as_str())),
            None => {
                default.ok_or_else(|| err(format!("env var required but not provided: '{name}'")))
            }
        }
    }

    fn call_return(&self, args: &[Value]) -> Result<Value, Error> {
        let value = args.first().cloned().unwrap_or_default();
        let mut rec = self.rc.rec();
        match rec.returns.last_mut() {
            Some(slot) => {
                *slot = Some(value);
                Err(err(RETURN_MARKER))
            }
            None => Ok(value),
        }
    }

    fn call_doc(&self, args: &[Value]) -> Result<Value, Error> {
        let strs: Vec<String> = args.iter().map(|v| v.to_string()).collect();
        let (pkg, name) = match strs.as_slice() {
            [name] => (None, name.as_str()),
            [pkg, name] => (Some(pkg.as_str()), name.as_str()),
            _ => return Err(err("doc() takes one or two arguments")),
        };
        self.rc
            .scope
            .doc(pkg, name, &self.rc.node.package)
            .map(Value::from)
            .ok_or_else(|| err(format!("documentation for '{name}' was not found")))
    }

    /// `{% call statement(name, fetch_result=True) %}sql{% endcall %}`: offline, a statement
    /// never runs; at compile time the body is rendered and the query recorded.
    fn call_statement(&self, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs) = split_kwargs(args);
        if self.rc.execute {
            let name = positional
                .first()
                .cloned()
                .or_else(|| kwargs.as_ref()?.get::<Option<Value>>("name").ok().flatten())
                .map(|v| v.to_string())
                .unwrap_or_else(|| "main".into());
            let mut sql = String::new();
            if let Some(caller) = kwargs
                .as_ref()
                .and_then(|k| k.get::<Option<Value>>("caller").ok().flatten())
            {
                sql = caller.call(state, &[])?.to_string();
            }
            let mut rec = self.rc.rec();
            rec.warehouse_calls.push("statement".into());
            rec.statements.push((name, sql));
        }
        Ok(Value::from(""))
    }
}

/// `version=2` may be an int, float or string; dbt stores it as given, compared as string.
fn version_string(v: &Value) -> String {
    v.to_string()
}

pub(super) fn split_kwargs(args: &[Value]) -> (Vec<Value>, Option<Kwargs>) {
    match args.split_last() {
        Some((last, rest)) => match Kwargs::try_from(last.clone()) {
            Ok(kw) => (rest.to_vec(), Some(kw)),
            Err(_) => (args.to_vec(), None),
        },
        None => (Vec::new(), None),
    }
}

/// dbt's `_HAS_RENDER_CHARS_PAT`: only strings with Jinja markers are rendered.
fn has_render_chars(s: &str) -> bool {
    ["{{", "{%", "{#", "}}", "%}", "#}"]
        .iter()
        .any(|m| s.contains(m))
}
