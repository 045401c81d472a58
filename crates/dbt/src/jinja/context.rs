//! The per-render Jinja context: what `ref`, `source`, `config`, `var`, `this`, `adapter`,
//! macros and friends resolve to while one node renders, and what that render recorded
//! (refs, sources, config calls, top-level macro calls, ephemeral CTEs, warehouse use).

use super::adapter_obj::Adapter;
use super::builtins::{builtin_value, split_kwargs, Builtins};
use super::caller::{self, CallerFrame};
use super::relation::Relation;
use super::scope::{MacroDef, Scope, DBT_PACKAGE};
use minijinja::value::{Kwargs, Object, Value};
use minijinja::{Error, ErrorKind, State};
use serde_json::{Map, Value as Json};
use std::sync::{Arc, Mutex, MutexGuard};

/// Deepest macro nesting we allow before failing (guards the native stack).
pub(super) const MAX_MACRO_DEPTH: usize = 64;
/// Marker message of the error that carries `return()` out of a macro.
pub(super) const RETURN_MARKER: &str = "__bf_macro_return__";

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
    pub(super) depth: usize,
    pub(super) returns: Vec<Option<Value>>,
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

pub(super) fn err(msg: impl Into<String>) -> Error {
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

impl Object for NodeContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        let rc = &self.rc;
        let node_pkg = rc.node.package.as_str();
        match key {
            // a macro named `ref` / `source` in the node's package or the root project takes
            // their place (dbt puts macros over the context's members); `builtins.ref` stays
            "ref" | "source" => {
                if let Some(m) = rc
                    .scope
                    .macros
                    .get(node_pkg, key)
                    .or_else(|| rc.scope.macros.get(&rc.scope.root_package, key))
                {
                    return Some(MacroFn::value(m.clone(), rc.clone()));
                }
                return builtin_value(rc, key);
            }
            "builtins" => return Some(Value::from_object(Builtins { rc: rc.clone() })),
            _ => {}
        }
        if let Some(v) = builtin_value(rc, key) {
            return Some(v);
        }
        match key {
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
