//! The per-render Jinja context: what `ref`, `source`, `config`, `var`, `this`, `adapter`,
//! macros and friends resolve to while one node renders, and what that render recorded
//! (refs, sources, config calls, top-level macro calls, ephemeral CTEs, warehouse use).

use super::caller::{self, CallerFrame};
use super::relation::Relation;
use super::scope::{MacroDef, Scope, DBT_PACKAGE};
use super::values::make_mutable;
use minijinja::value::{from_args, Kwargs, Object, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::{Map, Value as Json};
use std::sync::{Arc, Mutex, MutexGuard};

/// Deepest macro nesting we allow before failing (guards the native stack).
const MAX_MACRO_DEPTH: usize = 64;
/// Marker message of the error that carries `return()` out of a macro.
const RETURN_MARKER: &str = "__bf_macro_return__";

/// One `ref()` call as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefCall {
    pub package: Option<String>,
    pub name: String,
    pub version: Option<String>,
}

/// What one render recorded.
#[derive(Debug, Default, Clone)]
pub struct Recording {
    pub refs: Vec<RefCall>,
    pub sources: Vec<(String, String)>,
    pub config_calls: Vec<Map<String, Json>>,
    /// unique ids of macros called at depth 0, in call order, deduplicated
    pub macros: Vec<String>,
    /// unique ids of every macro called at any depth, deduplicated: what the render's output
    /// depends on besides its own text (the incremental engine re-renders on their edits)
    pub invoked: Vec<String>,
    /// unique ids of ephemeral models referenced while compiling
    pub ctes: Vec<String>,
    /// warehouse-dependent calls made while `execute` was true
    pub warehouse_calls: Vec<String>,
    /// whether `graph` was read while `execute` was true
    pub uses_graph: bool,
    /// `statement` blocks run while `execute` was true: name and rendered SQL, for
    /// `load_result(name)`
    pub statements: Vec<(String, String)>,
    depth: usize,
    returns: Vec<Option<Value>>,
}

/// Node facts the context exposes.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub unique_id: String,
    pub name: String,
    pub package: String,
    pub this: Option<Relation>,
    /// the `model` dict
    pub model: Json,
    /// current config (project + patches at parse time; final at compile time)
    pub config: Map<String, Json>,
}

/// Everything one render needs and records.
#[derive(Debug)]
pub struct RenderCtx {
    pub scope: Arc<Scope>,
    pub node: NodeFacts,
    pub execute: bool,
    pub rec: Mutex<Recording>,
}

impl RenderCtx {
    pub fn new(scope: Arc<Scope>, node: NodeFacts, execute: bool) -> Arc<Self> {
        Arc::new(Self {
            scope,
            node,
            execute,
            rec: Mutex::new(Recording::default()),
        })
    }

    pub fn rec(&self) -> MutexGuard<'_, Recording> {
        self.rec.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes what the render recorded.
    pub fn take_recording(&self) -> Recording {
        std::mem::take(&mut *self.rec())
    }

    /// The root context value for rendering the node itself.
    pub fn root_value(self: &Arc<Self>) -> Value {
        Value::from_object(NodeContext {
            rc: self.clone(),
            macro_package: None,
        })
    }
}

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Converts JSON into a Jinja value with mutable containers (so `var()` lists can be appended).
pub fn json_to_value(j: &Json) -> Value {
    Value::from_serialize(j)
}

/// Converts a Jinja value into JSON, used for `config()` arguments.
pub fn value_to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// The root object of the template context; resolves names lazily.
#[derive(Debug)]
pub struct NodeContext {
    pub rc: Arc<RenderCtx>,
    /// package of the macro currently executing, if any
    pub macro_package: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
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
struct BuiltinFn {
    kind: Builtin,
    rc: Arc<RenderCtx>,
}

impl Object for NodeContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        let rc = &self.rc;
        let builtin = |kind| {
            Some(Value::from_object(BuiltinFn {
                kind,
                rc: rc.clone(),
            }))
        };
        match key {
            "ref" => return builtin(Builtin::Ref),
            "source" => return builtin(Builtin::Source),
            "config" => return builtin(Builtin::Config),
            "var" => return builtin(Builtin::Var),
            "env_var" => return builtin(Builtin::EnvVar),
            "return" => return builtin(Builtin::Return),
            "doc" => return builtin(Builtin::Doc),
            "run_query" => return builtin(Builtin::RunQuery),
            "statement" => return builtin(Builtin::Statement),
            "load_result" => return builtin(Builtin::LoadResult),
            "store_result" | "store_raw_result" => return builtin(Builtin::StoreResult),
            "execute" => return Some(Value::from(rc.execute)),
            "this" => return rc.node.this.clone().map(Value::from_object),
            "model" => return Some(json_to_value(&rc.node.model)),
            "target" => return Some(Value::from_serialize(&rc.scope.target)),
            "project_name" => return Some(Value::from(rc.scope.root_package.as_str())),
            "api" => return Some(super::api::api_value(rc.scope.adapter)),
            "adapter" => {
                return Some(Value::from_object(Adapter {
                    rc: rc.clone(),
                    macro_package: self.macro_package.clone(),
                }))
            }
            "graph" => {
                if rc.execute {
                    rc.rec().uses_graph = true;
                    if let Some(graph) = &rc.scope.graph {
                        return Some(graph.clone());
                    }
                }
                return Some(Value::from_serialize(serde_json::json!({
                    "nodes": {}, "sources": {}, "macros": {}, "exposures": {}, "metrics": {},
                    "groups": {}, "semantic_models": {}, "saved_queries": {}
                })));
            }
            _ => {}
        }
        let node_pkg = rc.node.package.as_str();
        if let Some(m) = rc
            .scope
            .find_macro(key, node_pkg, self.macro_package.as_deref())
        {
            return Some(MacroFn::value(m.clone(), rc.clone()));
        }
        if rc.scope.packages.iter().any(|p| p == key) || key == DBT_PACKAGE {
            return Some(Value::from_object(PackageNs {
                package: key.to_string(),
                rc: rc.clone(),
            }));
        }
        None
    }
}

/// `package_name.macro_name` namespace.
#[derive(Debug)]
struct PackageNs {
    package: String,
    rc: Arc<RenderCtx>,
}

impl Object for PackageNs {
    /// Python objects are truthy (minijinja's default makes non-enumerable objects falsy).
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let m = self.rc.scope.macros.get(&self.package, key.as_str()?)?;
        Some(MacroFn::value(m.clone(), self.rc.clone()))
    }
}

/// A callable dbt macro. Each call evaluates the macro's own template in a fresh state whose
/// context is the node's context, so macros from any file or package can call each other.
#[derive(Debug)]
pub struct MacroFn {
    def: Arc<MacroDef>,
    rc: Arc<RenderCtx>,
}

impl MacroFn {
    pub fn value(def: Arc<MacroDef>, rc: Arc<RenderCtx>) -> Value {
        Value::from_object(MacroFn { def, rc })
    }
}

impl Object for MacroFn {
    /// Python objects are truthy (minijinja's default makes non-enumerable objects falsy).
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call(self: &Arc<Self>, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        {
            let mut rec = self.rc.rec();
            if rec.depth == 0 && !rec.macros.contains(&self.def.unique_id) {
                rec.macros.push(self.def.unique_id.clone());
            }
            if !rec.invoked.contains(&self.def.unique_id) {
                rec.invoked.push(self.def.unique_id.clone());
            }
            if rec.depth >= MAX_MACRO_DEPTH {
                return Err(err(format!(
                    "macro recursion deeper than {MAX_MACRO_DEPTH} calls at {}",
                    self.def.unique_id
                )));
            }
            rec.depth += 1;
            rec.returns.push(None);
        }
        // `_frame` (not `_`) keeps a lazy caller's frame registered until the callee returns
        let result =
            with_caller_body(state, args).and_then(|(args, _frame)| self.invoke(state, &args));
        let returned = {
            let mut rec = self.rc.rec();
            rec.depth = rec.depth.saturating_sub(1);
            rec.returns.pop().flatten()
        };
        match (returned, result) {
            (Some(v), _) => Ok(v),
            (None, r) => r,
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<macro {}>", self.def.unique_id)
    }
}

impl MacroFn {
    fn invoke(&self, state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let tmpl = state.env().get_template(&self.def.unique_id)?;
        let ctx = Value::from_object(NodeContext {
            rc: self.rc.clone(),
            macro_package: Some(self.def.package.clone()),
        });
        let captured = tmpl.render_captured(ctx)?;
        let macro_state = captured.state();
        let m = macro_state.lookup(&self.def.jinja_name).ok_or_else(|| {
            err(format!(
                "macro {} did not define itself",
                self.def.unique_id
            ))
        })?;
        match &self.def.catch_all {
            Some(params) => m.call(macro_state, &super::catchall::pack_args(params, args)),
            None => m.call(macro_state, args),
        }
    }
}

/// A `caller` passed to a macro is a macro of the calling template and can only run in that
/// template's state, while the callee runs in its own. The caller's body is therefore
/// rendered up front, in the calling state, and handed over as a [`CallerBody`].
/// A body with parameters (`{% call(x) m() %}`) cannot be rendered before its arguments are
/// known: the callee gets a [`caller::LazyCaller`] instead, valid while the returned frame
/// lives.
fn with_caller_body(
    state: &State<'_, '_>,
    args: &[Value],
) -> Result<(Vec<Value>, Option<CallerFrame>), Error> {
    let (positional, Some(kwargs)) = split_kwargs(args) else {
        return Ok((args.to_vec(), None));
    };
    let Ok(Some(caller)) = kwargs.get::<Option<Value>>("caller") else {
        return Ok((args.to_vec(), None));
    };
    if caller.downcast_object_ref::<CallerBody>().is_some()
        || caller.downcast_object_ref::<caller::LazyCaller>().is_some()
    {
        return Ok((args.to_vec(), None));
    }
    let (handed_over, frame) = if caller::takes_arguments(&caller) {
        let frame = CallerFrame::enter(state);
        (frame.lazy(caller.clone()), Some(frame))
    } else {
        (
            Value::from_object(CallerBody(caller.call(state, &[])?)),
            None,
        )
    };
    let mut pairs: Vec<(String, Value)> = Vec::new();
    for key in kwargs.args() {
        let value = if key == "caller" {
            handed_over.clone()
        } else {
            kwargs.get::<Value>(key)?
        };
        pairs.push((key.to_string(), value));
    }
    let mut out = positional;
    out.push(Value::from(pairs.into_iter().collect::<Kwargs>()));
    Ok((out, frame))
}

/// The rendered body of a `{% call %}` block, callable as `caller()`.
#[derive(Debug)]
struct CallerBody(Value);

impl Object for CallerBody {
    /// Python objects are truthy (minijinja's default makes non-enumerable objects falsy).
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, _args: &[Value]) -> Result<Value, Error> {
        Ok(self.0.clone())
    }
}

impl Object for BuiltinFn {
    /// Python objects are truthy (minijinja's default makes non-enumerable objects falsy).
    fn is_true(self: &Arc<Self>) -> bool {
        true
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

fn split_kwargs(args: &[Value]) -> (Vec<Value>, Option<Kwargs>) {
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

/// The `adapter` object: dispatch, quoting, and offline answers for warehouse lookups.
#[derive(Debug)]
struct Adapter {
    rc: Arc<RenderCtx>,
    macro_package: Option<String>,
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
