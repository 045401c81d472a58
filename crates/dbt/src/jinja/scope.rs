//! Project-wide data the Jinja context needs: the macro index with dbt's namespace search
//! order, vars, env, docs and the lookup tables behind `ref()` and `source()`.

use super::relation::Relation;
use crate::adapters::Adapter;
use rustc_hash::FxHashMap;
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Package name of dbt's built-in macros.
pub const DBT_PACKAGE: &str = "dbt";

/// One macro (or generic test) definition.
#[derive(Debug, Clone)]
pub struct MacroDef {
    pub unique_id: String,
    pub package: String,
    /// the dbt name (`test_unique` for the `unique` generic test)
    pub name: String,
    /// the name of the Jinja macro inside its template
    pub jinja_name: String,
    pub original_file_path: String,
    pub line: usize,
    /// the full macro source (`{% macro ... %}...{% endmacro %}`)
    pub source: String,
    /// declared parameters, when the body uses Jinja2's implicit `varargs`/`kwargs`
    pub catch_all: Option<Vec<String>>,
}

/// Macros by package, then by name. Looked up for most names a template reads (a million
/// times in a 3,000-model parse), so with a fast non-cryptographic hash: the keys are the
/// project's own macro names.
#[derive(Debug, Default, Clone)]
pub struct MacroIndex {
    pub by_package: FxHashMap<String, FxHashMap<String, Arc<MacroDef>>>,
}

impl MacroIndex {
    pub fn insert(&mut self, m: MacroDef) {
        self.by_package
            .entry(m.package.clone())
            .or_default()
            .insert(m.name.clone(), Arc::new(m));
    }

    /// An adapter's built-in macro (package `dbt_<adapter>`): dbt searches the adapter's
    /// packages together with its own as the internal `dbt` namespace, so it is indexed
    /// there (its unique id keeps the real package).
    pub fn insert_internal(&mut self, m: MacroDef) {
        self.by_package
            .entry(DBT_PACKAGE.to_string())
            .or_default()
            .insert(m.name.clone(), Arc::new(m));
    }

    pub fn get(&self, package: &str, name: &str) -> Option<&Arc<MacroDef>> {
        self.by_package.get(package)?.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<MacroDef>> {
        self.by_package.values().flat_map(|m| m.values())
    }
}

/// A node `ref()` can resolve to.
#[derive(Debug, Clone)]
pub struct RefTarget {
    pub unique_id: String,
    pub package: String,
    pub name: String,
    pub version: Option<String>,
    pub is_latest: bool,
    pub ephemeral: bool,
    pub relation: Option<Relation>,
}

/// A source table `source()` can resolve to.
#[derive(Debug, Clone)]
pub struct SourceTarget {
    pub unique_id: String,
    pub package: String,
    pub relation: Relation,
}

/// Everything shared by all renders of one parse or compile pass.
#[derive(Debug, Default, Clone)]
pub struct Scope {
    pub root_package: String,
    pub macros: MacroIndex,
    pub dispatch: HashMap<String, Vec<String>>,
    /// every loaded project (root and packages)
    pub packages: Vec<String>,
    pub target: Map<String, Json>,
    pub adapter: Adapter,
    pub cli_vars: Map<String, Json>,
    pub project_vars: HashMap<String, Map<String, Json>>,
    pub env: BTreeMap<String, String>,
    /// docs blocks by name: (package, text)
    pub docs: HashMap<String, Vec<(String, String)>>,
    pub refs: HashMap<String, Vec<RefTarget>>,
    pub sources: HashMap<(String, String), Vec<SourceTarget>>,
    /// the compile-time `graph` (nodes and sources), when some template uses it
    pub graph: Option<minijinja::Value>,
    /// config set by `config(...)` calls inside generic test macros, by macro unique id
    pub test_configs: HashMap<String, Map<String, Json>>,
    /// each loaded project's `version:` (dbt_project.yml), by project name
    pub package_versions: HashMap<String, String>,
}

impl Scope {
    /// dbt's bare-name macro lookup: the node's package, the root project, then (as a
    /// convenience for package internals) the calling macro's package, then dbt's built-ins.
    pub fn find_macro(
        &self,
        name: &str,
        node_package: &str,
        macro_package: Option<&str>,
    ) -> Option<&Arc<MacroDef>> {
        self.macros
            .get(node_package, name)
            .or_else(|| self.macros.get(&self.root_package, name))
            .or_else(|| macro_package.and_then(|p| self.macros.get(p, name)))
            .or_else(|| self.macros.get(DBT_PACKAGE, name))
    }

    /// `adapter.dispatch(name, namespace)`: search packages, then `<adapter>__` / `default__`.
    pub fn dispatch_macro(
        &self,
        name: &str,
        namespace: Option<&str>,
        node_package: &str,
        macro_package: Option<&str>,
    ) -> Option<&Arc<MacroDef>> {
        let search: Vec<Option<String>> = match namespace {
            None => vec![None],
            Some(ns) => match self.dispatch.get(ns) {
                Some(order) if !order.is_empty() => order.iter().cloned().map(Some).collect(),
                _ if self.is_loaded_package(ns) => {
                    vec![Some(self.root_package.clone()), Some(ns.to_string())]
                }
                // dbt 1.7: a namespace that is not an installed package means a global search
                _ => vec![None],
            },
        };
        let candidates: Vec<String> = self
            .adapter
            .spec()
            .dispatch_prefixes
            .iter()
            .map(|prefix| format!("{prefix}__{name}"))
            .collect();
        for package in &search {
            for candidate in &candidates {
                let found = match package {
                    None => self.find_macro(candidate, node_package, macro_package),
                    Some(p) => self.macros.get(p, candidate),
                };
                if found.is_some() {
                    return found;
                }
            }
        }
        None
    }

    /// Whether `name` is a loaded project (root or package) or dbt's internal package.
    fn is_loaded_package(&self, name: &str) -> bool {
        name == DBT_PACKAGE || name == "dbt_postgres" || self.packages.iter().any(|p| p == name)
    }

    /// dbt's var lookup: CLI > root vars scoped to the node's package > root global vars >
    /// the node's own package vars (scoped, then global).
    pub fn var(&self, name: &str, node_package: &str) -> Option<Json> {
        if let Some(v) = self.cli_vars.get(name) {
            return Some(v.clone());
        }
        let root = self.project_vars.get(&self.root_package);
        let scoped = |vars: Option<&Map<String, Json>>, pkg: &str| {
            vars.and_then(|v| v.get(pkg))
                .and_then(Json::as_object)
                .and_then(|m| m.get(name))
                .cloned()
        };
        if let Some(v) = scoped(root, node_package) {
            return Some(v);
        }
        if let Some(v) = root.and_then(|r| r.get(name)) {
            return Some(v.clone());
        }
        if node_package != self.root_package {
            let own = self.project_vars.get(node_package);
            if let Some(v) = scoped(own, node_package) {
                return Some(v);
            }
            if let Some(v) = own.and_then(|o| o.get(name)) {
                return Some(v.clone());
            }
        }
        None
    }

    /// Resolves `ref(package?, name, version?)` the way dbt's resolve_ref does: an explicit
    /// package, else the root project, the node's package, then any package.
    pub fn resolve_ref(
        &self,
        name: &str,
        package: Option<&str>,
        version: Option<&str>,
        node_package: &str,
    ) -> Option<&RefTarget> {
        let candidates = self.refs.get(name)?;
        let matches = |t: &&RefTarget| match version {
            Some(v) => t.version.as_deref() == Some(v),
            None => t.version.is_none() || t.is_latest,
        };
        let in_pkg = |p: &str| candidates.iter().filter(|t| t.package == p).find(matches);
        match package {
            Some(p) => in_pkg(p),
            None => in_pkg(&self.root_package)
                .or_else(|| in_pkg(node_package))
                .or_else(|| candidates.iter().find(matches)),
        }
    }

    pub fn resolve_source(
        &self,
        source: &str,
        table: &str,
        node_package: &str,
    ) -> Option<&SourceTarget> {
        let candidates = self.sources.get(&(source.to_string(), table.to_string()))?;
        candidates
            .iter()
            .find(|t| t.package == self.root_package)
            .or_else(|| candidates.iter().find(|t| t.package == node_package))
            .or_else(|| candidates.first())
    }

    /// `doc('name')` or `doc('package', 'name')`.
    pub fn doc(&self, package: Option<&str>, name: &str, node_package: &str) -> Option<&str> {
        let entries = self.docs.get(name)?;
        let find = |p: &str| {
            entries
                .iter()
                .find(|(pk, _)| pk == p)
                .map(|(_, t)| t.as_str())
        };
        match package {
            Some(p) => find(p),
            None => find(node_package)
                .or_else(|| find(&self.root_package))
                .or_else(|| entries.first().map(|(_, t)| t.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mdef(package: &str, name: &str) -> MacroDef {
        MacroDef {
            unique_id: format!("macro.{package}.{name}"),
            package: package.into(),
            name: name.into(),
            jinja_name: name.into(),
            original_file_path: "macros/x.sql".into(),
            line: 1,
            source: String::new(),
            catch_all: None,
        }
    }

    fn scope() -> Scope {
        let mut s = Scope {
            root_package: "root".into(),
            adapter: Adapter::Postgres,
            packages: vec!["root".into(), "pkg".into()],
            ..Scope::default()
        };
        s.macros.insert(mdef("pkg", "default__thing"));
        s.macros.insert(mdef("pkg", "postgres__other"));
        s.macros.insert(mdef("root", "default__other"));
        s.macros.insert(mdef("dbt", "default__builtin"));
        s
    }

    #[test]
    fn dispatch_prefers_root_then_package() {
        let s = scope();
        let m = s.dispatch_macro("thing", Some("pkg"), "root", None);
        assert_eq!(
            m.map(|m| m.unique_id.as_str()),
            Some("macro.pkg.default__thing")
        );
        // root's default__ beats the package's postgres__ because packages are searched first
        let m = s.dispatch_macro("other", Some("pkg"), "root", None);
        assert_eq!(
            m.map(|m| m.unique_id.as_str()),
            Some("macro.root.default__other")
        );
    }

    #[test]
    fn dispatch_to_a_namespace_not_installed_searches_globally() {
        let s = scope();
        // found in the root project by the global (bare-name) search
        let m = s.dispatch_macro("other", Some("not_installed"), "root", None);
        assert_eq!(
            m.map(|m| m.unique_id.as_str()),
            Some("macro.root.default__other")
        );
        // an installed namespace is searched as [root, namespace] only
        assert!(s
            .dispatch_macro("builtin", Some("pkg"), "root", None)
            .is_none());
    }

    #[test]
    fn dispatch_honours_project_search_order() {
        let mut s = scope();
        s.dispatch
            .insert("pkg".into(), vec!["pkg".into(), "root".into()]);
        let m = s.dispatch_macro("other", Some("pkg"), "root", None);
        assert_eq!(
            m.map(|m| m.unique_id.as_str()),
            Some("macro.pkg.postgres__other")
        );
        let m = s.dispatch_macro("builtin", Some("dbt"), "root", None);
        assert_eq!(
            m.map(|m| m.unique_id.as_str()),
            Some("macro.dbt.default__builtin")
        );
    }

    #[test]
    fn var_precedence() {
        let mut s = scope();
        s.cli_vars.insert("a".into(), Json::from("cli"));
        let root: Map<String, Json> =
            serde_json::from_str(r#"{"a": "root", "b": "root", "pkg": {"c": "root_for_pkg"}}"#)
                .unwrap_or_default();
        s.project_vars.insert("root".into(), root);
        let pkg: Map<String, Json> =
            serde_json::from_str(r#"{"b": "pkg", "c": "pkg", "d": "pkg"}"#).unwrap_or_default();
        s.project_vars.insert("pkg".into(), pkg);
        assert_eq!(s.var("a", "pkg"), Some(Json::from("cli")));
        assert_eq!(s.var("b", "pkg"), Some(Json::from("root")));
        assert_eq!(s.var("c", "pkg"), Some(Json::from("root_for_pkg")));
        assert_eq!(s.var("d", "pkg"), Some(Json::from("pkg")));
        assert_eq!(s.var("d", "root"), None);
    }
}
