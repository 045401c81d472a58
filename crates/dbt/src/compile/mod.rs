//! Orchestrates one full parse + compile: workspace, parse-time render, naming, dependency
//! resolution, compile-time render, ephemeral CTE injection, generic tests, and the catalog.

pub mod ctes;
pub mod graph;

use crate::compile::ctes::{cte_sql, extend_ctes, inject_ctes, InjectedCte};
use crate::data_tests::compile as tests_compile;
use crate::data_tests::generate as tests_gen;
use crate::incremental::cache::{fingerprint, Cache, CompileRender, Descriptions, Tests};
use crate::incremental::State;
use crate::ir::catalog::{Catalog, CompileStatus, DependsOn, Disabled, Node, TargetInfo};
use crate::ir::error::NodeError;
use crate::ir::options::ParseOptions;
use crate::jinja::context::{NodeFacts, RenderCtx};
use crate::jinja::render;
use crate::jinja::scope::{RefTarget, Scope};
use crate::load::Loaded;
use crate::parse::{self, ParsedNode, Workspace};
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub(crate) type Compiled = CompileRender;

/// depends_on.nodes of a node, or why its refs/sources do not resolve.
pub(crate) type Deps = Result<Vec<String>, String>;

/// Parses and compiles everything in `loaded`.
pub fn build_catalog(loaded: &Loaded, opts: &ParseOptions) -> Catalog {
    let mut cache = Cache::default();
    let state = build_state(loaded, opts, &mut cache);
    drop_in_background((
        state.ws,
        state.scope,
        state.enabled,
        state.deps,
        state.compiled,
        state.test_invoked,
        cache,
    ));
    state.catalog
}

/// Frees `value` on another thread: the intermediate results of a parse are hundreds of
/// thousands of small allocations, and tearing them down would otherwise delay the caller
/// by a few hundred milliseconds. Dropped inline when no thread can be started.
pub(crate) fn drop_in_background<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("dbt-drop".into())
        .spawn(move || drop(value));
}

/// Like [`build_catalog`], reusing and refreshing per-node results in `cache`, and keeping
/// the intermediate results an incremental update needs.
pub fn build_state(loaded: &Loaded, opts: &ParseOptions, cache: &mut Cache) -> State {
    let fp = parse::workspace_fingerprint(loaded, opts);
    let ws = match cache.workspace.take() {
        Some(ws) if ws.fingerprint == fp => ws,
        _ => {
            cache.descriptions = Descriptions::default();
            Arc::new(parse::build_workspace(loaded, opts, fp))
        }
    };
    cache.workspace = Some(ws.clone());
    let mut nodes = parse::discover_nodes(&ws, loaded);
    parse::parse_render(&ws, &mut nodes, opts, cache);
    let (mut enabled, disabled_nodes): (Vec<ParsedNode>, Vec<ParsedNode>) =
        nodes.into_iter().partition(is_enabled);
    parse::name_relations(&ws, &mut enabled, opts, cache);
    let (sources, source_index) = parse::build_sources(&ws, opts, &mut cache.descriptions);
    let mut scope: Scope = (*ws.scope).clone();
    scope.refs = ref_index(&enabled);
    scope.sources = source_index;
    let deps: Vec<Deps> = enabled.iter().map(|n| resolve_deps(&scope, n)).collect();
    if graph::wanted(loaded) {
        scope.graph = Some(graph::build(&enabled, &deps, &sources));
    }
    let scope = Arc::new(scope);
    let previous = std::mem::take(&mut cache.compile);
    let keyed: Vec<(u64, Compiled)> = enabled
        .par_iter()
        .zip(deps.par_iter())
        .map(|(n, d)| {
            let key = compile_key(&ws, &scope, n, d);
            let hit = previous.get(&key).filter(|c| !c.uses_graph).cloned();
            (key, hit.unwrap_or_else(|| compile_node(&ws, &scope, n, d)))
        })
        .collect();
    let compiled: Vec<Compiled> = keyed.iter().map(|(_, c)| c.clone()).collect();
    cache.compile = keyed.into_iter().collect();
    let injected = inject_all(&enabled, &compiled);
    let mut out_nodes = BTreeMap::new();
    let mut node_errors = Vec::with_capacity(enabled.len());
    for (i, n) in enabled.iter().enumerate() {
        let inputs = AssembleInputs {
            deps: &deps[i],
            compiled: &compiled[i],
            injected: &injected[i],
        };
        let mut errs = Vec::new();
        let node = assemble(&ws, n, &inputs, &mut cache.descriptions, &mut errs);
        node_errors.push(errs);
        out_nodes.insert(node.unique_id.clone(), node);
    }
    let mut test_errors = Vec::new();
    let (disabled_tests, test_invoked) = attach_tests(
        &ws,
        &scope,
        &mut out_nodes,
        &sources,
        opts,
        cache,
        &mut test_errors,
    );
    inject_all_test_ctes(&mut out_nodes, &enabled, &compiled);
    let mut disabled: Vec<Disabled> = disabled_nodes
        .iter()
        .map(|n| Disabled {
            unique_id: n.unique_id.clone(),
            resource_type: n.resource_type.to_string(),
            original_file_path: n.file.original_file_path.clone(),
        })
        .collect();
    disabled.extend(sources.iter().filter(|s| !s.enabled).map(|s| Disabled {
        unique_id: s.unique_id.clone(),
        resource_type: "source".into(),
        original_file_path: s.original_file_path.clone(),
    }));
    disabled.extend(disabled_tests);
    let catalog = Catalog {
        project_name: ws.root.clone(),
        target: TargetInfo {
            name: opts.target_name.clone(),
            target_type: opts.adapter.to_string(),
            database: opts.target_database.clone(),
            schema: opts.target_schema.clone(),
        },
        nodes: out_nodes,
        sources: sources
            .into_iter()
            .filter(|s| s.enabled)
            .map(|s| (s.unique_id.clone(), s))
            .collect(),
        macros: ws
            .macro_infos
            .iter()
            .map(|m| (m.unique_id.clone(), m.clone()))
            .collect(),
        disabled,
        errors: Vec::new(),
    };
    let mut state = State {
        inputs: State::inputs_key(loaded),
        file_errors: loaded.errors.clone(),
        files: loaded.files.clone(),
        disabled_invoked: disabled_nodes
            .iter()
            .flat_map(|n| n.rec.invoked.iter().cloned())
            .collect(),
        test_invoked,
        root: loaded
            .projects
            .first()
            .map(|p| p.dir.clone())
            .unwrap_or_default(),
        ws,
        scope,
        enabled,
        deps,
        compiled,
        node_errors,
        test_errors,
        catalog,
    };
    state.refresh_errors();
    state
}

fn is_enabled(n: &ParsedNode) -> bool {
    n.config
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

pub(crate) fn ref_index(nodes: &[ParsedNode]) -> HashMap<String, Vec<RefTarget>> {
    let mut index: HashMap<String, Vec<RefTarget>> = HashMap::new();
    for n in nodes.iter().filter(|n| n.resource_type != "test") {
        let version = n.version.as_ref().map(parse::version_key);
        let latest = n.latest_version.as_ref().map(parse::version_key);
        index.entry(n.name.clone()).or_default().push(RefTarget {
            unique_id: n.unique_id.clone(),
            package: n.package.clone(),
            name: n.name.clone(),
            is_latest: version.is_some() && version == latest,
            version,
            ephemeral: is_ephemeral(n),
            relation: n.relation.clone(),
        });
    }
    index
}

pub(crate) fn is_ephemeral(n: &ParsedNode) -> bool {
    n.config.get("materialized").and_then(Value::as_str) == Some("ephemeral")
}

/// depends_on.nodes from the recorded refs and sources, in call order.
pub(crate) fn resolve_deps(scope: &Scope, n: &ParsedNode) -> Deps {
    let mut out: Vec<String> = Vec::new();
    let mut push = |id: &str| {
        if !out.iter().any(|x| x == id) {
            out.push(id.to_string());
        }
    };
    for r in &n.rec.refs {
        match scope.resolve_ref(
            &r.name,
            r.package.as_deref(),
            r.version.as_deref(),
            &n.package,
        ) {
            Some(t) => push(&t.unique_id),
            None => {
                return Err(format!(
                    "{} '{}' depends on a node named '{}'{} which was not found",
                    n.resource_type,
                    n.name,
                    r.name,
                    r.version
                        .as_ref()
                        .map(|v| format!(" with version '{v}'"))
                        .unwrap_or_default()
                ))
            }
        }
    }
    for (s, t) in &n.rec.sources {
        match scope.resolve_source(s, t, &n.package) {
            Some(target) => push(&target.unique_id),
            None => {
                return Err(format!(
                    "{} '{}' depends on a source named '{s}.{t}' which was not found",
                    n.resource_type, n.name
                ))
            }
        }
    }
    Ok(out)
}

/// Everything a compile-time render depends on: the workspace, the node's text and config,
/// and what each of its refs and sources resolves to.
fn compile_key(
    ws: &Workspace,
    scope: &Scope,
    n: &ParsedNode,
    deps: &Result<Vec<String>, String>,
) -> u64 {
    let refs: Vec<(String, Option<String>, bool)> = n
        .rec
        .refs
        .iter()
        .filter_map(|r| {
            scope.resolve_ref(
                &r.name,
                r.package.as_deref(),
                r.version.as_deref(),
                &n.package,
            )
        })
        .map(|t| {
            (
                t.unique_id.clone(),
                t.relation.as_ref().map(|r| r.render()),
                t.ephemeral,
            )
        })
        .collect();
    let this = n.relation.as_ref().map(|r| r.render());
    // the parse key covers the node's text and (with the workspace) its whole config
    fingerprint(&(
        ws.fingerprint,
        &n.unique_id,
        n.parse_key,
        &n.raw_code,
        this,
        refs,
        deps.is_ok(),
        &n.parse_error,
    ))
}

pub(crate) fn compile_node(
    ws: &Workspace,
    scope: &Arc<Scope>,
    n: &ParsedNode,
    deps: &Result<Vec<String>, String>,
) -> Compiled {
    let skipped = |msg: String| Compiled {
        sql: Err(msg),
        ctes: Vec::new(),
        warehouse: Vec::new(),
        uses_graph: false,
        invoked: Vec::new(),
        top_macros: Vec::new(),
    };
    if n.resource_type == "seed" {
        return Compiled {
            sql: Ok(String::new()),
            ctes: Vec::new(),
            warehouse: Vec::new(),
            uses_graph: false,
            invoked: Vec::new(),
            top_macros: Vec::new(),
        };
    }
    if let Some((_, msg)) = &n.parse_error {
        return skipped(msg.clone());
    }
    if let Err(e) = deps {
        return skipped(e.clone());
    }
    let facts = NodeFacts {
        unique_id: n.unique_id.clone(),
        name: n.name.clone(),
        package: n.package.clone(),
        resource_type: n.resource_type.to_string(),
        this: n.relation.clone(),
        model: parse::model_dict(n, &n.config),
        config: n.config.clone(),
    };
    let rc = RenderCtx::new(scope.clone(), facts, true);
    let result = render(&ws.env, &rc, &n.file.original_file_path, &n.raw_code);
    let rec = rc.take_recording();
    Compiled {
        sql: result.map_err(|e| match e.line {
            Some(l) => format!("line {l}: {}", e.message),
            None => e.message,
        }),
        ctes: rec.ctes,
        warehouse: rec.warehouse_calls,
        uses_graph: rec.uses_graph,
        invoked: rec.invoked,
        top_macros: rec.macros,
    }
}

/// Injects ephemeral CTEs into every compiled node; returns the final SQL per node.
fn inject_all(nodes: &[ParsedNode], compiled: &[Compiled]) -> Vec<Option<String>> {
    let by_id = id_index(nodes);
    let mut memo: HashMap<usize, Vec<InjectedCte>> = HashMap::new();
    (0..nodes.len())
        .map(|i| inject_one(i, nodes, compiled, &by_id, &mut memo))
        .collect()
}

/// Node index by unique id.
pub(crate) fn id_index(nodes: &[ParsedNode]) -> HashMap<&str, usize> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.unique_id.as_str(), i))
        .collect()
}

/// The final SQL of node `i` with its ephemeral CTEs injected.
pub(crate) fn inject_one(
    i: usize,
    nodes: &[ParsedNode],
    compiled: &[Compiled],
    by_id: &HashMap<&str, usize>,
    memo: &mut HashMap<usize, Vec<InjectedCte>>,
) -> Option<String> {
    let sql = compiled[i].sql.as_ref().ok()?;
    let mut visiting = HashSet::new();
    let ctes = prepend_ctes(i, nodes, compiled, by_id, memo, &mut visiting);
    Some(inject_ctes(sql, &ctes))
}

fn prepend_ctes(
    i: usize,
    nodes: &[ParsedNode],
    compiled: &[Compiled],
    by_id: &HashMap<&str, usize>,
    memo: &mut HashMap<usize, Vec<InjectedCte>>,
    visiting: &mut HashSet<usize>,
) -> Vec<InjectedCte> {
    if let Some(done) = memo.get(&i) {
        return done.clone();
    }
    if !visiting.insert(i) {
        return Vec::new();
    }
    let out = ctes_for(&compiled[i].ctes, nodes, compiled, by_id, memo, visiting);
    visiting.remove(&i);
    memo.insert(i, out.clone());
    out
}

/// The CTEs for SQL that refs the ephemeral models `ids`: each one's own CTEs first, then it.
fn ctes_for(
    ids: &[String],
    nodes: &[ParsedNode],
    compiled: &[Compiled],
    by_id: &HashMap<&str, usize>,
    memo: &mut HashMap<usize, Vec<InjectedCte>>,
    visiting: &mut HashSet<usize>,
) -> Vec<InjectedCte> {
    let mut out: Vec<InjectedCte> = Vec::new();
    for id in ids {
        let Some(&j) = by_id.get(id.as_str()) else {
            continue;
        };
        let nested = prepend_ctes(j, nodes, compiled, by_id, memo, visiting);
        extend_ctes(&mut out, &nested);
        let pre = compiled[j].sql.as_deref().unwrap_or_default();
        extend_ctes(
            &mut out,
            &[InjectedCte {
                id: id.clone(),
                sql: cte_sql(&nodes[j].name, pre),
            }],
        );
    }
    out
}

/// Injects ephemeral CTEs into every generic test just attached to `nodes`.
fn inject_all_test_ctes(
    nodes: &mut BTreeMap<String, Node>,
    enabled: &[ParsedNode],
    compiled: &[Compiled],
) {
    let by_id = id_index(enabled);
    let mut memo = HashMap::new();
    for t in nodes.values_mut().filter(|n| n.test_metadata.is_some()) {
        inject_test_ctes(t, enabled, compiled, &by_id, &mut memo);
    }
}

/// Injects the CTEs of a compiled generic test's `extra_ctes` into its `compiled_code`
/// (which must be the test macro's output, not yet injected).
pub(crate) fn inject_test_ctes(
    t: &mut Node,
    nodes: &[ParsedNode],
    compiled: &[Compiled],
    by_id: &HashMap<&str, usize>,
    memo: &mut HashMap<usize, Vec<InjectedCte>>,
) {
    if t.extra_ctes.is_empty() {
        return;
    }
    let Some(sql) = t.compiled_code.as_deref() else {
        return;
    };
    let ctes = ctes_for(
        &t.extra_ctes,
        nodes,
        compiled,
        by_id,
        memo,
        &mut HashSet::new(),
    );
    t.compiled_code = Some(inject_ctes(sql, &ctes));
}

/// Per-node results that go into the final node.
pub(crate) struct AssembleInputs<'a> {
    pub deps: &'a Deps,
    pub compiled: &'a Compiled,
    pub injected: &'a Option<String>,
}

pub(crate) fn assemble(
    ws: &Workspace,
    n: &ParsedNode,
    inputs: &AssembleInputs<'_>,
    memo: &mut Descriptions,
    errors: &mut Vec<NodeError>,
) -> Node {
    let (deps, compiled, injected) = (inputs.deps, inputs.compiled, inputs.injected);
    let cfg = &n.config;
    let materialized = cfg
        .get("materialized")
        .and_then(Value::as_str)
        .unwrap_or("view")
        .to_string();
    let (status, compile_error) = match (&n.parse_error, deps, &compiled.sql) {
        (Some((line, msg)), _, _) => {
            errors.push(NodeError::new(
                Some(n.unique_id.clone()),
                &n.file.original_file_path,
                *line,
                msg.clone(),
            ));
            (CompileStatus::Error, Some(msg.clone()))
        }
        (None, Err(e), _) => {
            errors.push(NodeError::new(
                Some(n.unique_id.clone()),
                &n.file.original_file_path,
                None,
                e.clone(),
            ));
            (CompileStatus::Error, Some(e.clone()))
        }
        (None, Ok(_), Err(e)) => {
            errors.push(NodeError::new(
                Some(n.unique_id.clone()),
                &n.file.original_file_path,
                None,
                e.clone(),
            ));
            (CompileStatus::Error, Some(e.clone()))
        }
        _ => (CompileStatus::Success, None),
    };
    let needs_warehouse = (!compiled.warehouse.is_empty()).then(|| {
        let uses = compiled.warehouse.join(", ");
        if status == CompileStatus::Error {
            format!("compiles only against a live warehouse: uses {uses}")
        } else {
            format!("compiled against empty warehouse results; the SQL depends on {uses}")
        }
    });
    let mut meta = cfg
        .get("meta")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(p) = &n.patch {
        meta.extend(p.meta.clone());
    }
    let description = n
        .patch
        .as_ref()
        .map(|p| parse::render_description(ws, &n.package, &p.description, memo))
        .unwrap_or_default();
    let columns = n
        .columns
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.description = parse::render_description(ws, &n.package, &c.description, memo);
            c
        })
        .collect();
    let no_relation = materialized == "ephemeral" || n.resource_type == "test";
    let mut compile_macros: Vec<String> = Vec::new();
    for id in &compiled.top_macros {
        if !n.rec.macros.contains(id) && !compile_macros.contains(id) {
            compile_macros.push(id.clone());
        }
    }
    Node {
        unique_id: n.unique_id.clone(),
        resource_type: n.resource_type.to_string(),
        name: n.name.clone(),
        package_name: n.package.clone(),
        path: n.file.path.clone(),
        original_file_path: n.file.original_file_path.clone(),
        patch_path: n
            .patch
            .as_ref()
            .map(|p| format!("{}://{}", p.package, p.file)),
        fqn: n.fqn.clone(),
        language: "sql".into(),
        database: n.database.clone(),
        schema: n.schema.clone(),
        alias: n.alias.clone(),
        relation_name: if no_relation {
            None
        } else {
            n.relation.as_ref().map(|r| r.render())
        },
        materialized,
        enabled: true,
        tags: n.tags.clone(),
        meta,
        description,
        columns,
        refs: n.rec.refs.clone(),
        sources: n.rec.sources.clone(),
        depends_on: DependsOn {
            nodes: deps.clone().unwrap_or_default(),
            // dbt's MacroGenerator adds depth-0 macros at parse AND at compile time
            macros: {
                let mut m = n.rec.macros.clone();
                m.extend(compile_macros.iter().cloned());
                m
            },
        },
        raw_code: n.raw_code.clone(),
        compiled_code: injected.clone(),
        checksum: n.file.checksum.clone(),
        version: n.version.clone(),
        latest_version: n.latest_version.clone(),
        access: cfg
            .get("access")
            .and_then(Value::as_str)
            .unwrap_or("protected")
            .to_string(),
        group: cfg.get("group").and_then(Value::as_str).map(str::to_string),
        contract_enforced: cfg
            .get("contract")
            .and_then(|c| c.get("enforced"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        compile_status: status,
        compile_error,
        needs_warehouse,
        tests: Vec::new(),
        test_metadata: None,
        column_name: None,
        attached_node: None,
        extra_ctes: Vec::new(),
        compile_macros,
        own_outcome: None,
        config: node_config_json(n.resource_type, cfg),
    }
}

/// Adds generic test nodes, reusing the previous pass's tests when neither the workspace
/// nor the set of tested nodes changed. The cached tests are kept without their ephemeral
/// CTEs (an ephemeral model's SQL is not in the key): `inject_all_test_ctes` adds them.
fn attach_tests(
    ws: &Workspace,
    scope: &Arc<Scope>,
    nodes: &mut BTreeMap<String, Node>,
    sources: &[crate::ir::catalog::Source],
    opts: &ParseOptions,
    cache: &mut Cache,
    errors: &mut Vec<NodeError>,
) -> (Vec<Disabled>, HashMap<String, Vec<String>>) {
    // relations are part of the key: compiled test SQL names them
    let tested: Vec<(&String, &Option<Value>, &Option<String>)> = nodes
        .values()
        .map(|n| (&n.unique_id, &n.version, &n.relation_name))
        .collect();
    let tested_text = serde_json::to_string(&tested).unwrap_or_default();
    let source_ids: Vec<&String> = sources
        .iter()
        .filter(|s| s.enabled)
        .map(|s| &s.unique_id)
        .collect();
    let key = fingerprint(&(ws.fingerprint, tested_text, source_ids));
    let tests = match cache.tests.take() {
        Some(t) if t.key == key => t,
        _ => {
            let mut nodes = tests_gen::build_tests(ws, scope, nodes, sources, opts);
            let invoked = tests_compile::compile_tests(ws, scope, &mut nodes);
            Tests {
                key,
                nodes,
                invoked,
            }
        }
    };
    let disabled = tests_gen::attach(nodes, &tests.nodes, errors);
    let invoked = tests
        .nodes
        .iter()
        .zip(&tests.invoked)
        .filter(|(_, m)| !m.is_empty())
        .map(|(t, m)| (t.unique_id.clone(), m.clone()))
        .collect();
    cache.tests = Some(tests);
    (disabled, invoked)
}

/// The stored config: models always carry `access`; seeds dbt's default `delimiter`.
fn node_config_json(resource_type: &str, cfg: &Map<String, Value>) -> Map<String, Value> {
    let mut c = cfg.clone();
    match resource_type {
        "model" => {
            c.entry("access").or_insert(Value::from("protected"));
        }
        "seed" => {
            c.entry("delimiter").or_insert(Value::from(","));
        }
        _ => {}
    }
    c
}
