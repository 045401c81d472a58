//! `builtins` and dbt's RuntimeConfig as templates see it (`builtins.ref.config`): packages
//! read the project name, package versions (`dependencies["elementary"].version`), vars and
//! CLI args from it. Only what is knowable offline is there; an unknown attribute is `none`,
//! as it is on dbt's argument namespace for a flag that was not given.

use super::scope::Scope;
use minijinja::value::{Object, Value};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

/// The dbt-core version the engine matches.
pub const DBT_VERSION: &str = "1.7.20";
/// The `version:` of dbt's internal projects (`dbt`, `dbt_postgres`, ...).
const INTERNAL_PROJECT_VERSION: &str = "1.0";

/// `builtins.ref.config` / the runtime config of the invocation.
#[derive(Debug)]
pub struct RuntimeConfig {
    pub scope: Arc<Scope>,
}

impl Object for RuntimeConfig {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let s = &self.scope;
        match key.as_str()? {
            "project_name" => Some(Value::from(s.root_package.as_str())),
            "version" => Some(version_of(s, &s.root_package)),
            "target_name" => s.target.get("name").map(Value::from_serialize),
            "profile_name" => s.target.get("profile_name").map(Value::from_serialize),
            "cli_vars" => Some(Value::from_serialize(&s.cli_vars)),
            "vars" => Some(Value::from_object(VarsView {
                scope: self.scope.clone(),
            })),
            "args" => Some(Value::from_object(Namespace)),
            "dependencies" => {
                let mut deps: Vec<(String, Value)> = s
                    .packages
                    .iter()
                    .map(|p| (p.clone(), project_value(s, p)))
                    .collect();
                let adapter_package = format!("dbt_{}", s.adapter.spec().name);
                for internal in ["dbt", adapter_package.as_str()] {
                    if !s.packages.iter().any(|p| p == internal) {
                        deps.push((internal.to_string(), project_value(s, internal)));
                    }
                }
                Some(Value::from_iter(deps))
            }
            _ => None,
        }
    }
}

fn version_of(s: &Scope, package: &str) -> Value {
    match s.package_versions.get(package) {
        Some(v) => Value::from(v.as_str()),
        // dbt's internal packages (`dbt`, `dbt_postgres`, ...) are not loaded projects here
        None if !s.packages.iter().any(|p| p == package) => Value::from(INTERNAL_PROJECT_VERSION),
        None => Value::from(()),
    }
}

/// One loaded project as `dependencies[name]` shows it.
fn project_value(s: &Scope, package: &str) -> Value {
    Value::from_iter([
        ("project_name", Value::from(package)),
        ("version", version_of(s, package)),
    ])
}

/// `config.vars`: the root project's vars, with `to_dict()`.
#[derive(Debug)]
struct VarsView {
    scope: Arc<Scope>,
}

impl Object for VarsView {
    fn is_true(self: &Arc<Self>) -> bool {
        self.scope
            .project_vars
            .get(&self.scope.root_package)
            .is_some_and(|m| !m.is_empty())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "to_dict" => Ok(Value::from_serialize(
                self.scope
                    .project_vars
                    .get(&self.scope.root_package)
                    .cloned()
                    .unwrap_or_default(),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// dbt's `args` namespace: every flag not given on the command line reads as `none`.
#[derive(Debug)]
struct Namespace;

impl Object for Namespace {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(Value::from(()))
    }
}
