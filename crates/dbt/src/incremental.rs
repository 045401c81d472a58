//! In-place updates of a previous parse. When only model files were edited (no files added
//! or removed, no macro, YAML or project change), the edited models are re-rendered and
//! re-named, models whose refs now point at a different relation are recompiled, and nodes
//! that inline a changed ephemeral model get their CTEs re-injected; everything else,
//! including the generic tests, is kept. Anything broader returns `false` so the caller
//! falls back to a full (memoised) rebuild, whose output this must always equal.

use crate::cache::Cache;
use crate::catalog::Catalog;
use crate::error::{scrub_root, NodeError};
use crate::jinja::scope::Scope;
use crate::loader::{Changes, FileKind, Loaded};
use crate::options::ParseOptions;
use crate::parser::{self, ParsedNode, Workspace};
use crate::pipeline::{
    assemble, compile_node, id_index, inject_one, inject_test_ctes, is_ephemeral, resolve_deps,
    AssembleInputs, Compiled, Deps,
};
use crate::tests_compile;
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// Everything a parse produced that an in-place update needs, plus the catalog itself.
pub struct State {
    /// fingerprint of the inputs not covered by file contents (projects, loader errors)
    pub inputs: String,
    /// the loader's file-level errors of the parse this state reflects
    pub file_errors: Vec<NodeError>,
    /// the checkout root, scrubbed from every error message
    pub root: std::path::PathBuf,
    pub ws: Arc<Workspace>,
    pub scope: Arc<Scope>,
    /// enabled models, seeds and snapshots, in discovery order
    pub enabled: Vec<ParsedNode>,
    pub deps: Vec<Deps>,
    pub compiled: Vec<Compiled>,
    /// errors of each enabled node, in the same order
    pub node_errors: Vec<Vec<NodeError>>,
    pub test_errors: Vec<NodeError>,
    pub catalog: Catalog,
}

impl State {
    /// What besides file contents a parse depends on: project files and loader errors.
    pub fn inputs_key(loaded: &Loaded) -> String {
        format!("{:?}|{:?}", loaded.projects, loaded.errors)
    }

    /// Whether some node's compiled SQL read `graph` (and so depends on every node).
    pub fn uses_graph(&self) -> bool {
        self.compiled.iter().any(|c| c.uses_graph)
    }

    /// Rebuilds `catalog.errors`, the complete current list: file errors of the loader, then
    /// workspace errors, then per node, then tests; no message or path names the checkout.
    pub fn refresh_errors(&mut self) {
        let mut errors = self.file_errors.clone();
        errors.extend(self.ws.errors.iter().cloned());
        errors.extend(self.node_errors.iter().flatten().cloned());
        errors.extend(self.test_errors.iter().cloned());
        for e in &mut errors {
            e.file = scrub_root(&e.file, &self.root);
            e.message = scrub_root(&e.message, &self.root);
        }
        self.catalog.errors = errors;
    }
}

/// Applies `changes` to `state` in place. Returns `false` when the change is not a plain
/// edit of enabled model files (or touches `graph`); `state` must then be rebuilt.
pub fn apply(
    state: &mut State,
    loaded: &Loaded,
    changes: &Changes,
    opts: &ParseOptions,
    cache: &mut Cache,
) -> bool {
    if changes.structural || State::inputs_key(loaded) != state.inputs || state.uses_graph() {
        return false;
    }
    let Some(edits) = reparse_edits(state, loaded, changes, opts) else {
        return false;
    };
    let recompile = recompile_set(state, &edits);
    let moved_ids: Vec<String> = edits
        .iter()
        .filter(|e| e.ref_changed)
        .map(|e| e.node.unique_id.clone())
        .collect();
    for e in edits {
        state.enabled[e.index] = e.node;
    }
    recompile_nodes(state, &recompile);
    if state.uses_graph() {
        // an edited node now reads `graph`, which this update does not refresh
        return false;
    }
    let reinject = reinject_set(state, &recompile);
    reassemble(state, &reinject, cache);
    let reinjected: HashSet<String> = reinject
        .iter()
        .map(|&i| state.enabled[i].unique_id.clone())
        .collect();
    recompile_generic_tests(state, &moved_ids, &reinjected);
    state.refresh_errors();
    true
}

/// A re-parsed model and whether what `ref()` to it yields (relation, ephemeral) changed.
struct Edit {
    index: usize,
    node: ParsedNode,
    ref_changed: bool,
}

/// Re-renders and re-names every edited model; `None` when one is not a plain edit.
fn reparse_edits(
    state: &mut State,
    loaded: &Loaded,
    changes: &Changes,
    opts: &ParseOptions,
) -> Option<Vec<Edit>> {
    let ws = state.ws.clone();
    let versioned = parser::versioned_files(&ws);
    let mut edits = Vec::new();
    for &fi in &changes.modified {
        let f = loaded.files.get(fi)?;
        if f.kind != FileKind::Model {
            return None;
        }
        let index = state.enabled.iter().position(|n| {
            n.project_idx == f.project && n.file.original_file_path == f.original_file_path
        })?;
        let package = &loaded.projects.get(f.project)?.name;
        let mut found = parser::discover_file(&ws, &versioned, f, package);
        let mut node = found.pop().filter(|_| found.is_empty())?;
        parser::parse_node(&ws, &mut node, opts, &HashMap::new());
        if !is_enabled(&node) {
            return None;
        }
        let _named = parser::name_node(&ws, &mut node, opts, &HashMap::new());
        let old = &state.enabled[index];
        if !same_identity(old, &node) {
            return None;
        }
        let ref_changed = old.relation != node.relation || is_ephemeral(old) != is_ephemeral(&node);
        edits.push(Edit {
            index,
            node,
            ref_changed,
        });
    }
    update_ref_targets(state, &edits);
    edits.sort_by_key(|e| e.index);
    Some(edits)
}

fn is_enabled(n: &ParsedNode) -> bool {
    n.config
        .get("enabled")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true)
}

/// Same node as far as ref resolution and tests are concerned.
fn same_identity(old: &ParsedNode, new: &ParsedNode) -> bool {
    old.unique_id == new.unique_id
        && old.name == new.name
        && old.package == new.package
        && old.version == new.version
        && old.latest_version == new.latest_version
}

/// Points the scope's ref lookup at the edited models' new relations.
fn update_ref_targets(state: &mut State, edits: &[Edit]) {
    if !edits.iter().any(|e| e.ref_changed) {
        return;
    }
    let scope = Arc::make_mut(&mut state.scope);
    for e in edits.iter().filter(|e| e.ref_changed) {
        let Some(targets) = scope.refs.get_mut(&e.node.name) else {
            continue;
        };
        for t in targets
            .iter_mut()
            .filter(|t| t.unique_id == e.node.unique_id)
        {
            t.relation = e.node.relation.clone();
            t.ephemeral = is_ephemeral(&e.node);
        }
    }
}

/// The edited nodes plus every node that depends on an edited node whose ref target moved.
fn recompile_set(state: &State, edits: &[Edit]) -> BTreeSet<usize> {
    let mut out: BTreeSet<usize> = edits.iter().map(|e| e.index).collect();
    let moved: Vec<&str> = edits
        .iter()
        .filter(|e| e.ref_changed)
        .map(|e| e.node.unique_id.as_str())
        .collect();
    if moved.is_empty() {
        return out;
    }
    for (i, d) in state.deps.iter().enumerate() {
        if d.as_ref()
            .is_ok_and(|ids| ids.iter().any(|id| moved.contains(&id.as_str())))
        {
            out.insert(i);
        }
    }
    out
}

fn recompile_nodes(state: &mut State, set: &BTreeSet<usize>) {
    let (ws, scope) = (&state.ws, &state.scope);
    let done: Vec<(usize, Deps, Compiled)> = set
        .par_iter()
        .map(|&i| {
            let n = &state.enabled[i];
            let deps = resolve_deps(scope, n);
            let compiled = compile_node(ws, scope, n, &deps);
            (i, deps, compiled)
        })
        .collect();
    for (i, deps, compiled) in done {
        state.deps[i] = deps;
        state.compiled[i] = compiled;
    }
}

/// Recompiled nodes plus every node that (transitively) inlines a recompiled ephemeral model.
fn reinject_set(state: &State, recompiled: &BTreeSet<usize>) -> BTreeSet<usize> {
    let mut out = recompiled.clone();
    let mut inlined_by: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, c) in state.compiled.iter().enumerate() {
        for id in &c.ctes {
            inlined_by.entry(id.as_str()).or_default().push(i);
        }
    }
    let mut stack: Vec<usize> = recompiled.iter().copied().collect();
    while let Some(i) = stack.pop() {
        let Some(users) = inlined_by.get(state.enabled[i].unique_id.as_str()) else {
            continue;
        };
        for &u in users {
            if out.insert(u) {
                stack.push(u);
            }
        }
    }
    out
}

/// Generic tests name the relations they test and inline the ephemeral models they ref:
/// recompile (and re-inject) those on a moved relation or on a re-injected ephemeral model.
fn recompile_generic_tests(state: &mut State, moved: &[String], reinjected: &HashSet<String>) {
    if moved.is_empty() && reinjected.is_empty() {
        return;
    }
    let (ws, scope) = (&state.ws, &state.scope);
    let by_id = id_index(&state.enabled);
    let mut memo = HashMap::new();
    state
        .catalog
        .nodes
        .values_mut()
        .filter(|n| n.test_metadata.is_some())
        .filter(|n| {
            n.depends_on.nodes.iter().any(|d| moved.contains(d))
                || n.extra_ctes.iter().any(|c| reinjected.contains(c))
        })
        .for_each(|t| {
            tests_compile::compile_test(ws, scope, t);
            inject_test_ctes(t, &state.enabled, &state.compiled, &by_id, &mut memo);
        });
}

/// Re-injects CTEs and rebuilds the catalog nodes of `set`, keeping their attached tests.
fn reassemble(state: &mut State, set: &BTreeSet<usize>, cache: &mut Cache) {
    let by_id = id_index(&state.enabled);
    let mut memo = HashMap::new();
    for &i in set {
        let injected = inject_one(i, &state.enabled, &state.compiled, &by_id, &mut memo);
        let inputs = AssembleInputs {
            deps: &state.deps[i],
            compiled: &state.compiled[i],
            injected: &injected,
        };
        let mut errs = Vec::new();
        let mut node = assemble(
            &state.ws,
            &state.enabled[i],
            &inputs,
            &mut cache.descriptions,
            &mut errs,
        );
        if let Some(old) = state.catalog.nodes.get(&node.unique_id) {
            node.tests = old.tests.clone();
        }
        state.node_errors[i] = errs;
        state.catalog.nodes.insert(node.unique_id.clone(), node);
    }
}
