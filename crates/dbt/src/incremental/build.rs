//! One full parse + compile, stage by stage: workspace, discovery, parse-time render, naming,
//! sources, dependency resolution, compile-time render, CTE injection, catalog nodes, generic
//! tests, errors. Per-node results are taken from and written back to the `Cache`, so a
//! rebuild after a small change re-renders only what changed; the `State` it returns is
//! what an in-place update (`incremental::apply`) starts from.

use crate::compile::assemble::{assemble, AssembleInputs};
use crate::compile::deps::{ref_index, resolve_deps};
use crate::compile::inject::{inject_all, inject_all_test_ctes};
use crate::compile::render::compile_all;
use crate::compile::{graph, Deps};
use crate::data_tests::compile as tests_compile;
use crate::data_tests::generate as tests_gen;
use crate::incremental::cache::{Cache, Tests};
use crate::incremental::State;
use crate::ir::catalog::{Catalog, Disabled, Node, Source, TargetInfo};
use crate::ir::error::NodeError;
use crate::ir::fingerprint::fingerprint;
use crate::ir::options::ParseOptions;
use crate::jinja::scope::Scope;
use crate::jinja::{NodeTemplates, PreparedSource};
use crate::load::Loaded;
use crate::parse::descriptions::Descriptions;
use crate::parse::discover::discover_nodes;
use crate::parse::relations::name_relations;
use crate::parse::render::parse_render;
use crate::parse::sources::build_sources;
use crate::parse::workspace::{build_workspace, workspace_fingerprint};
use crate::parse::{ParsedNode, Workspace};
use rayon::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Parses and compiles everything in `loaded`.
pub fn build_catalog(loaded: &Loaded, opts: &ParseOptions) -> Catalog {
    let mut cache = Cache::one_shot();
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
    let fp = workspace_fingerprint(loaded, opts);
    let ws = match cache.workspace.take() {
        Some(ws) if ws.fingerprint == fp => ws,
        _ => {
            cache.descriptions = Descriptions::default();
            Arc::new(build_workspace(loaded, opts, fp))
        }
    };
    cache.workspace = Some(ws.clone());
    let mut nodes = discover_nodes(&ws, loaded);
    let keep = !cache.one_shot;
    // a one-shot parse renders every node twice: each template is made once
    let sources: Vec<PreparedSource> = if keep {
        Vec::new()
    } else {
        nodes
            .par_iter()
            .filter(|n| n.resource_type != "seed")
            .map(|n| PreparedSource::new(&n.unique_id, &n.file.original_file_path, &n.raw_code))
            .collect()
    };
    let templates = (!keep).then(|| NodeTemplates::new(&ws.env, &sources));
    cache.parse = parse_render(
        &ws,
        &mut nodes,
        opts,
        &std::mem::take(&mut cache.parse),
        (keep, templates.as_ref()),
    );
    let (mut enabled, disabled_nodes): (Vec<ParsedNode>, Vec<ParsedNode>) =
        nodes.into_iter().partition(ParsedNode::is_enabled);
    let adopted = crate::parse::foreign_patch::adopt(&ws, &mut enabled, opts);
    cache.parse.extend(adopted);
    cache.naming = name_relations(&ws, &mut enabled, opts, &std::mem::take(&mut cache.naming));
    let (sources, source_index) = build_sources(&ws, opts, &mut cache.descriptions);
    let mut scope: Scope = (*ws.scope).clone();
    scope.refs = ref_index(&enabled);
    scope.sources = source_index;
    let deps: Vec<Deps> = enabled.iter().map(|n| resolve_deps(&scope, n)).collect();
    if graph::wanted(loaded) {
        scope.graph = Some(graph::build(&enabled, &deps, &sources));
    }
    let scope = Arc::new(scope);
    let previous = std::mem::take(&mut cache.compile);
    let (compiled, keyed) = compile_all(
        &ws,
        &scope,
        &enabled,
        &deps,
        &previous,
        (keep, templates.as_ref()),
    );
    drop(templates);
    cache.compile = keyed;
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
    let disabled_refs: Vec<tests_gen::DisabledNode<'_>> = disabled_nodes
        .iter()
        .map(|n| (n.unique_id.as_str(), n.package.as_str(), n.name.as_str()))
        .collect();
    let (disabled_tests, test_invoked) = attach_tests(
        &ws,
        &scope,
        &mut out_nodes,
        (&disabled_refs, &sources),
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

/// Adds generic test nodes, reusing the previous pass's tests when neither the workspace
/// nor the set of tested nodes changed. The cached tests are kept without their ephemeral
/// CTEs (an ephemeral model's SQL is not in the key): `inject_all_test_ctes` adds them.
fn attach_tests(
    ws: &Workspace,
    scope: &Arc<Scope>,
    nodes: &mut BTreeMap<String, Node>,
    // the disabled nodes YAML tests may name, and the sources
    (disabled, sources): (&[tests_gen::DisabledNode<'_>], &[Source]),
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
    let key = fingerprint(&(ws.fingerprint, tested_text, source_ids, disabled));
    let tests = match cache.tests.take() {
        Some(t) if t.key == key => t,
        _ => {
            let mut nodes = tests_gen::build_tests(ws, scope, nodes, disabled, sources, opts);
            let invoked = tests_compile::compile_tests(ws, scope, &mut nodes);
            Tests {
                key,
                nodes,
                invoked,
            }
        }
    };
    let invoked = tests
        .nodes
        .iter()
        .zip(&tests.invoked)
        .filter(|(_, m)| !m.is_empty())
        .map(|(t, m)| (t.unique_id.clone(), m.clone()))
        .collect();
    let disabled = if cache.one_shot {
        tests_gen::attach(nodes, tests.nodes, errors)
    } else {
        let disabled = tests_gen::attach(nodes, tests.nodes.clone(), errors);
        cache.tests = Some(tests);
        disabled
    };
    (disabled, invoked)
}
