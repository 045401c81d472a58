//! Generic data tests declared in YAML (`unique`, `not_null`, `accepted_values`,
//! `relationships`, and custom/namespaced ones) become test nodes named and hashed exactly
//! like dbt 1.7 names them, attached to the model, seed, snapshot or source they test.

use super::spec::{hashable_repr, parse_entry, string_list, test_names, TestSpec};
use crate::ir::catalog::ColumnDef;
use crate::ir::catalog::{CompileStatus, DependsOn, Disabled, Node, Source};
use crate::ir::error::NodeError;
use crate::ir::options::ParseOptions;
use crate::jinja::pyfuncs::local_md5;
use crate::jinja::scope::Scope;
use crate::parse::properties::SourceTableDef;
use crate::parse::Workspace;
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Nodes that `ref(...)` / `source(...)` calls inside test arguments resolve to (e.g. the
/// `to:` of a relationships test), in argument order, and whether every call resolved (one
/// to a disabled or missing node disables the test, as dbt's ref processing does).
fn kwarg_refs(scope: &Scope, args: &Map<String, Value>, package: &str) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut all = true;
    for v in args.values() {
        let Some(text) = v.as_str() else { continue };
        for call in crate::jinja::calls::find_calls(text) {
            let id = match call.func.as_str() {
                "ref" => {
                    let (pkg, name) = match call.args.as_slice() {
                        [name] => (None, name.as_str()),
                        [pkg, name, ..] => (Some(pkg.as_str()), name.as_str()),
                        [] => continue,
                    };
                    scope
                        .resolve_ref(name, pkg, call.version.as_deref(), package)
                        .map(|t| t.unique_id.clone())
                }
                _ => match call.args.as_slice() {
                    [s, t, ..] => scope
                        .resolve_source(s, t, package)
                        .map(|t| t.unique_id.clone()),
                    _ => None,
                },
            };
            all &= id.is_some();
            out.extend(id);
        }
    }
    (out, all)
}

/// What a test is attached to.
struct Target<'a> {
    /// the tested node; empty when the YAML names no enabled node
    unique_id: &'a str,
    /// false when the tested node is disabled or missing: dbt keeps such a test in the
    /// manifest, disabled, with no dependency on it
    enabled: bool,
    /// `attached_node`: the tested node, or the disabled node of that name
    attached: Option<&'a str>,
    package: &'a str,
    /// `stg_orders`, `dim_accounts_v1` or `shop_orders` (a source table)
    label: String,
    is_source: bool,
    /// tags a test inherits from its target (a source's and its table's tags)
    tags: Vec<String>,
    model_expr: String,
    yml_file: &'a str,
    fqn_dirs: Vec<String>,
    /// the `tests:` config trees of the target's project and (for a package) the root's
    trees: TestTrees<'a>,
}

/// Project `tests:` config trees a generic test's fqn is matched against.
#[derive(Clone, Copy)]
struct TestTrees<'a> {
    own: &'a Value,
    root: Option<&'a Value>,
}

impl<'a> TestTrees<'a> {
    fn of(ws: &'a Workspace, package: &str) -> Self {
        let tree = |p: &'a crate::parse::workspace::ProjectTrees| p.trees.get("tests");
        let own = ws
            .projects
            .iter()
            .find(|p| p.name == package)
            .and_then(tree)
            .unwrap_or(&Value::Null);
        let root = ws
            .projects
            .first()
            .filter(|p| p.name != package)
            .and_then(tree);
        Self { own, root }
    }
}

/// A disabled node YAML tests may name: (unique id, package, name).
pub type DisabledNode<'a> = (&'a str, &'a str, &'a str);

/// Builds test nodes for every YAML-declared test of enabled nodes and sources, and (kept
/// disabled, as dbt keeps them) the tests of YAML entries whose node is disabled or missing.
pub fn build_tests(
    ws: &Workspace,
    scope: &Scope,
    nodes: &BTreeMap<String, Node>,
    disabled: &[DisabledNode<'_>],
    sources: &[Source],
    opts: &ParseOptions,
) -> Vec<Node> {
    let all: Vec<&Node> = nodes.values().collect();
    let mut out: Vec<Node> = all
        .par_iter()
        .flat_map_iter(|node| node_tests(ws, scope, node, opts))
        .collect();
    out.extend(orphan_tests(ws, scope, nodes, disabled, opts));
    let defs: HashMap<(&str, &str, &str), &SourceTableDef> = ws
        .source_defs
        .iter()
        .map(|d| {
            (
                (d.package.as_str(), d.source_name.as_str(), d.name.as_str()),
                d,
            )
        })
        .collect();
    let enabled: Vec<&Source> = sources.iter().filter(|s| s.enabled).collect();
    out.par_extend(enabled.par_iter().flat_map_iter(|s| {
        let key = (
            s.package_name.as_str(),
            s.source_name.as_str(),
            s.name.as_str(),
        );
        defs.get(&key)
            .map(|def| source_tests(ws, scope, s, def, opts))
            .unwrap_or_default()
    }));
    out
}

/// Tests of YAML entries no enabled node of their package and kind took. dbt builds them
/// anyway, on `ref(name)`: an entry under the wrong key (a seed patched under `models:`;
/// dbt ignores the patch but tests the seed), one whose own node is disabled while another
/// package has an enabled node of that name, or (kept in the manifest, disabled) one whose
/// node is disabled or does not exist.
fn orphan_tests(
    ws: &Workspace,
    scope: &Scope,
    nodes: &BTreeMap<String, Node>,
    disabled: &[DisabledNode<'_>],
    opts: &ParseOptions,
) -> Vec<Node> {
    let taken: std::collections::HashSet<(&str, &str, &str)> = nodes
        .values()
        .map(|n| {
            (
                n.package_name.as_str(),
                n.name.as_str(),
                leak_kind(&n.resource_type),
            )
        })
        .collect();
    let mut keys: Vec<&(String, String, &'static str)> = ws
        .patches
        .keys()
        .filter(|(pkg, name, kind)| !taken.contains(&(pkg.as_str(), name.as_str(), *kind)))
        .collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let patch = &ws.patches[key];
        let (pkg, name) = (key.0.as_str(), key.1.as_str());
        // versioned entries and entries without tests need nothing here
        if !patch.versions.is_empty()
            || (patch.tests.is_empty() && patch.columns.iter().all(|c| c.tests.is_empty()))
        {
            continue;
        }
        // the test's `ref(name)` from the YAML's package, as dbt resolves it
        let resolved = scope
            .resolve_ref(name, None, None, pkg)
            .and_then(|t| nodes.get(&t.unique_id));
        let disabled_node = disabled
            .iter()
            .find(|(_, p, n)| *p == pkg && *n == name)
            .or_else(|| disabled.iter().find(|(_, _, n)| *n == name))
            .map(|(id, _, _)| *id);
        let (unique_id, enabled, attached) = match resolved {
            Some(n) => (n.unique_id.as_str(), true, Some(n.unique_id.as_str())),
            None => ("", false, disabled_node),
        };
        let target = Target {
            unique_id,
            enabled,
            attached,
            package: pkg,
            label: name.to_string(),
            is_source: false,
            tags: Vec::new(),
            model_expr: format!("{{{{ get_where_subquery(ref('{name}')) }}}}"),
            yml_file: &patch.file,
            fqn_dirs: yml_dirs(&patch.file),
            trees: TestTrees::of(ws, pkg),
        };
        collect(&target, &patch.tests, &patch.columns, opts, scope, &mut out);
    }
    out
}

fn node_tests(ws: &Workspace, scope: &Scope, node: &Node, opts: &ParseOptions) -> Vec<Node> {
    let Some(patch) = ws.patches.get(&(
        node.package_name.clone(),
        node.name.clone(),
        leak_kind(&node.resource_type),
    )) else {
        return Vec::new();
    };
    let model_expr = match &node.version {
        Some(v) => format!(
            "{{{{ get_where_subquery(ref('{}', version='{}')) }}}}",
            node.name,
            crate::parse::version_key(v)
        ),
        None => format!("{{{{ get_where_subquery(ref('{}')) }}}}", node.name),
    };
    let label = match &node.version {
        Some(v) => format!("{}_v{}", node.name, crate::parse::version_key(v)),
        None => node.name.clone(),
    };
    let target = Target {
        unique_id: &node.unique_id,
        enabled: true,
        attached: Some(&node.unique_id),
        package: &node.package_name,
        label,
        is_source: false,
        tags: Vec::new(),
        model_expr,
        yml_file: &patch.file,
        fqn_dirs: yml_dirs(&patch.file),
        trees: TestTrees::of(ws, &node.package_name),
    };
    let mut out = Vec::new();
    collect(
        &target,
        &patch.tests,
        &node.columns_with_tests(&patch.columns),
        opts,
        scope,
        &mut out,
    );
    out
}

fn source_tests(
    ws: &Workspace,
    scope: &Scope,
    s: &Source,
    def: &SourceTableDef,
    opts: &ParseOptions,
) -> Vec<Node> {
    let target = Target {
        unique_id: &s.unique_id,
        enabled: true,
        attached: None,
        package: &s.package_name,
        label: format!("{}_{}", s.source_name, s.name),
        is_source: true,
        tags: s.tags.clone(),
        model_expr: format!(
            "{{{{ get_where_subquery(source('{}', '{}')) }}}}",
            s.source_name, s.name
        ),
        yml_file: &s.original_file_path,
        fqn_dirs: yml_dirs(&s.original_file_path),
        trees: TestTrees::of(ws, &s.package_name),
    };
    let mut out = Vec::new();
    collect(&target, &def.tests, &def.columns, opts, scope, &mut out);
    out
}

/// Inserts test nodes and records them on the nodes they test.
/// Tests disabled by their config are not attached; they are returned for the disabled list.
pub fn attach(
    nodes: &mut BTreeMap<String, Node>,
    tests: Vec<Node>,
    errors: &mut Vec<NodeError>,
) -> Vec<Disabled> {
    let mut disabled = Vec::new();
    for t in tests {
        // disabled with its tested node: kept in the manifest, attached to nothing
        if !t.enabled {
            nodes.entry(t.unique_id.clone()).or_insert(t);
            continue;
        }
        if t.config.get("enabled") == Some(&Value::Bool(false)) {
            disabled.push(Disabled {
                unique_id: t.unique_id.clone(),
                resource_type: "test".into(),
                original_file_path: t.original_file_path.clone(),
            });
            continue;
        }
        if let Some(parent) = t.attached_node.as_ref().and_then(|p| nodes.get_mut(p)) {
            parent.tests.push(t.unique_id.clone());
        }
        if nodes.contains_key(&t.unique_id) {
            errors.push(NodeError::new(
                Some(t.unique_id.clone()),
                &t.original_file_path,
                None,
                "duplicate test".into(),
            ));
            continue;
        }
        nodes.insert(t.unique_id.clone(), t);
    }
    disabled
}

fn leak_kind(resource_type: &str) -> &'static str {
    match resource_type {
        "seed" => "seed",
        "snapshot" => "snapshot",
        _ => "model",
    }
}

trait ColumnsWithTests {
    fn columns_with_tests(&self, patch_columns: &[ColumnDef]) -> Vec<ColumnDef>;
}

impl ColumnsWithTests for Node {
    fn columns_with_tests(&self, patch_columns: &[ColumnDef]) -> Vec<ColumnDef> {
        patch_columns.to_vec()
    }
}

fn yml_dirs(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.split('/').map(str::to_string).collect();
    parts.pop();
    if !parts.is_empty() {
        parts.remove(0);
    }
    parts
}

fn collect(
    target: &Target<'_>,
    model_tests: &[Value],
    columns: &[ColumnDef],
    opts: &ParseOptions,
    scope: &Scope,
    out: &mut Vec<Node>,
) {
    for entry in model_tests {
        if let Some(spec) = parse_entry(entry) {
            out.push(make_test(target, spec, None, opts, scope));
        }
    }
    for c in columns {
        for entry in &c.tests {
            if let Some(spec) = parse_entry(entry) {
                out.push(make_test(target, spec, Some(c), opts, scope));
            }
        }
    }
}

/// dbt's test tags: sorted(set(target tags + column tags + argument tags)), then the
/// config's tags.
fn test_tags(
    target: &Target<'_>,
    spec: &TestSpec,
    column: Option<&ColumnDef>,
    config: &Map<String, Value>,
) -> Vec<String> {
    let mut tags: Vec<String> = target
        .tags
        .iter()
        .chain(column.map(|c| c.tags.as_slice()).unwrap_or_default())
        .chain(&spec.arg_tags)
        .cloned()
        .collect();
    tags.sort();
    tags.dedup();
    for t in string_list(config.get("tags").cloned()) {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags
}

/// A test's `depends_on.macros`: its macro and `get_where_subquery` (from the `model`
/// argument), plus a project's own `ref` / `source` macro when it takes the built-in's place
/// (the `model` argument and arguments like `to: ref(...)` call it). A shortcut test that is
/// never compiled (its model is disabled) has only its macro.
fn test_macros(
    scope: &Scope,
    target: &Target<'_>,
    args: &Map<String, Value>,
    macro_id: &str,
    never_rendered: bool,
) -> Vec<String> {
    let mut out = vec![macro_id.to_string()];
    if never_rendered {
        return out;
    }
    out.push("macro.dbt.get_where_subquery".into());
    for builtin in ["ref", "source"] {
        let called = (builtin == "source") == target.is_source
            || args.values().any(|v| {
                v.as_str()
                    .is_some_and(|s| s.contains(&format!("{builtin}(")))
            });
        let shadow = scope
            .macros
            .get(target.package, builtin)
            .or_else(|| scope.macros.get(&scope.root_package, builtin));
        if let (true, Some(m)) = (called, shadow) {
            out.push(m.unique_id.clone());
        }
    }
    out
}

fn make_test(
    target: &Target<'_>,
    spec: TestSpec,
    column_def: Option<&ColumnDef>,
    opts: &ParseOptions,
    scope: &Scope,
) -> Node {
    let column = column_def.map(|c| c.name.as_str());
    let mut args = spec.args.clone();
    if let Some(c) = column {
        args.insert("column_name".into(), Value::from(c));
    }
    let base = if target.is_source {
        format!("source_{}", spec.name)
    } else {
        spec.name.clone()
    };
    let test_type = match &spec.namespace {
        Some(ns) => format!("{ns}_{base}"),
        None => base,
    };
    let (short, full) = test_names(&test_type, &target.label, &args);
    let (name, short) = match &spec.custom_name {
        Some(n) => (n.clone(), n.clone()),
        None => (full, short),
    };
    let mut kwargs = args.clone();
    kwargs.insert("model".into(), Value::from(target.model_expr.clone()));
    let metadata = json!({"name": spec.name, "kwargs": kwargs, "namespace": spec.namespace});
    let hash = local_md5(format!("{name}{}", hashable_repr(&metadata)));
    let unique_id = format!(
        "test.{}.{name}.{}",
        target.package,
        &hash[hash.len().saturating_sub(10)..]
    );
    let macro_pkg = spec.namespace.clone().unwrap_or_else(|| {
        if scope
            .macros
            .get(target.package, &format!("test_{}", spec.name))
            .is_some()
        {
            target.package.to_string()
        } else {
            "dbt".into()
        }
    });
    let mut fqn = vec![target.package.to_string()];
    fqn.extend(target.fqn_dirs.clone());
    fqn.push(name.clone());
    let mut nodes = Vec::new();
    if target.enabled {
        nodes.push(target.unique_id.to_string());
    }
    let (arg_nodes, resolved) = kwarg_refs(scope, &args, target.package);
    for id in arg_nodes {
        if !nodes.contains(&id) {
            nodes.push(id);
        }
    }
    let target_enabled = target.enabled && resolved;
    let mut config = json!({
        "enabled": true, "alias": null, "schema": "dbt_test__audit", "database": null,
        "tags": [], "meta": {}, "materialized": "test", "severity": "ERROR",
        "store_failures": null, "where": null, "limit": null, "fail_calc": "count(*)",
        "warn_if": "!= 0", "error_if": "!= 0"
    });
    let macro_id = format!("macro.{macro_pkg}.test_{}", spec.name);
    // dbt's parser takes a shortcut for its own `not_null` and `unique` and does not render
    // them; every other generic test is rendered at parse time
    let fast_path = matches!(
        macro_id.as_str(),
        "macro.dbt.test_not_null" | "macro.dbt.test_unique"
    );
    if let Value::Object(c) = &mut config {
        // the project's `tests:` config for the test's fqn (own project, then the root's)
        let project = crate::parse::config::calculate(
            Map::new(),
            &crate::parse::config::ConfigSources {
                own_tree: target.trees.own,
                root_tree: target.trees.root,
                fqn: &fqn,
                patch: None,
                sql_calls: &[],
            },
        );
        crate::parse::config::merge_into(c, &project);
        // the test macro's own `config(...)` first, then the YAML test config over it
        if let Some(from_macro) = scope.test_configs.get(&macro_id) {
            crate::parse::config::merge_into(c, from_macro);
        }
        crate::parse::config::merge_into(c, &spec.config);
        // the shortcut's config is the builder's static config (severity upper-cased,
        // argument tags left out); a rendered test gets the YAML values as written, its
        // argument tags appended to the config's tags
        if fast_path {
            if let Some(Value::String(sev)) = c.get_mut("severity") {
                *sev = sev.to_uppercase();
            }
        } else {
            if let Some(raw) = spec.raw_severity.clone() {
                c.insert("severity".into(), raw);
            }
            if !spec.arg_tags.is_empty() {
                let mut tags = match c.get("tags") {
                    Some(Value::Array(t)) => t.clone(),
                    _ => Vec::new(),
                };
                tags.extend(spec.arg_tags.iter().map(|t| Value::from(t.as_str())));
                c.insert("tags".into(), Value::Array(tags));
            }
        }
        if short != name {
            c.insert("alias".into(), Value::from(short.clone()));
        }
    }
    let mut config = config.as_object().cloned().unwrap_or_default();
    // a test disabled by its own config goes to `disabled` (Node::enabled stays true); one
    // whose tested node is disabled or missing stays a node, disabled (Node::enabled false)
    let own_disabled = config.get("enabled") == Some(&Value::Bool(false));
    if !target_enabled && !own_disabled {
        config.insert("enabled".into(), Value::Bool(false));
    }
    Node {
        unique_id,
        resource_type: "test".into(),
        name: name.clone(),
        package_name: target.package.to_string(),
        path: format!("{short}.sql"),
        original_file_path: target.yml_file.to_string(),
        patch_path: None,
        fqn,
        language: "sql".into(),
        database: Some(opts.target_database.clone()),
        schema: format!("{}_dbt_test__audit", opts.target_schema),
        alias: short,
        relation_name: None,
        materialized: "test".into(),
        enabled: target_enabled || own_disabled,
        tags: test_tags(target, &spec, column_def, &config),
        meta: Map::new(),
        description: String::new(),
        columns: Vec::new(),
        refs: Vec::new(),
        sources: Vec::new(),
        depends_on: DependsOn {
            nodes,
            macros: test_macros(
                scope,
                target,
                &args,
                &macro_id,
                fast_path && !target_enabled,
            ),
        },
        raw_code: format!("{{{{ test_{}(**_dbt_generic_test_kwargs) }}}}", spec.name),
        compiled_code: None,
        checksum: String::new(),
        version: None,
        latest_version: None,
        access: "protected".into(),
        group: None,
        contract_enforced: false,
        compile_status: CompileStatus::Skipped,
        compile_error: None,
        needs_warehouse: None,
        tests: Vec::new(),
        test_metadata: Some(metadata),
        column_name: column.map(str::to_string),
        attached_node: target.attached.map(str::to_string),
        extra_ctes: Vec::new(),
        // a rendered test captures `get_where_subquery` (from its `model` argument) at parse
        // time already; the shortcut only when it is compiled
        compile_macros: if fast_path {
            vec!["macro.dbt.get_where_subquery".into()]
        } else {
            Vec::new()
        },
        own_outcome: None,
        config,
    }
}
