//! In-place updates of a previous parse. When only model, seed, snapshot or macro files were
//! edited (no files added or removed, no YAML, docs or project change), only what depends on
//! the edit is redone: edited nodes are re-rendered and re-named; an edited macro re-renders
//! exactly the nodes and generic tests whose renders called it (at any depth, through
//! macro-calls-macro chains and `adapter.dispatch`, as recorded while rendering); models whose
//! refs now point at a different relation are recompiled, and nodes that inline a changed
//! ephemeral model get their CTEs re-injected; everything else is kept. Anything broader
//! returns `false` so the caller falls back to a full (memoised) rebuild, whose output this
//! must always equal (`tests/incremental_equals_fresh.rs`).

mod propagate;

pub mod cache;
pub mod engine;

use crate::compile::{
    assemble, compile_node, id_index, inject_one, inject_test_ctes, is_ephemeral, resolve_deps,
    AssembleInputs, Compiled, Deps,
};
use crate::data_tests::compile as tests_compile;
use crate::incremental::cache::Cache;
use crate::ir::catalog::Catalog;
use crate::ir::error::{scrub_root, NodeError};
use crate::ir::options::ParseOptions;
use crate::jinja::scope::{MacroDef, Scope, DBT_PACKAGE};
use crate::jinja::{describe, extract_blocks};
use crate::load::{Changes, FileKind, Loaded, SourceFile};
use crate::parse::{self, ParsedNode, Workspace};
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
    /// the files read for the parse this state reflects (the old texts of the next edit)
    pub files: Vec<Arc<SourceFile>>,
    /// macros the parse-time renders of disabled nodes called
    pub disabled_invoked: BTreeSet<String>,
    /// macros each generic test's compilation called, by test id (tests calling none omitted)
    pub test_invoked: HashMap<String, Vec<String>>,
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
        let skips = propagate::propagate_failures(&mut self.catalog.nodes);
        let nodes = &self.catalog.nodes;
        // a node dbt skips reports no error of its own (it is never compiled)
        let own = |e: &&NodeError| {
            e.unique_id
                .as_ref()
                .and_then(|id| nodes.get(id))
                .is_none_or(|n| n.own_outcome.is_none())
        };
        let mut errors = self.file_errors.clone();
        errors.extend(self.ws.errors.iter().cloned());
        errors.extend(self.node_errors.iter().flatten().filter(own).cloned());
        errors.extend(self.test_errors.iter().filter(own).cloned());
        errors.extend(skips);
        for e in &mut errors {
            e.file = scrub_root(&e.file, &self.root);
            e.message = scrub_root(&e.message, &self.root);
        }
        self.catalog.errors = errors;
    }
}

/// Applies `changes` to `state` in place. Returns `false` when the change is not a plain
/// edit of enabled model, seed, snapshot or macro files (or touches `graph`); `state` must
/// then be rebuilt.
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
    // nodes are updated in place below: start from their own results (refresh_errors
    // propagates failures again at the end)
    propagate::restore_own(&mut state.catalog.nodes);
    let mut node_files = Vec::new();
    let mut macro_files = Vec::new();
    for &fi in &changes.modified {
        let Some(f) = loaded.files.get(fi) else {
            return false;
        };
        match f.kind {
            FileKind::Model | FileKind::Seed | FileKind::Snapshot => node_files.push(f.clone()),
            FileKind::Macro => macro_files.push(f.clone()),
            _ => return false,
        }
    }
    let changed_macros = if macro_files.is_empty() {
        BTreeSet::new()
    } else {
        match update_macros(state, loaded, &macro_files, opts, cache) {
            Some(changed) => changed,
            None => return false,
        }
    };
    let calls_changed = |invoked: &[String]| invoked.iter().any(|m| changed_macros.contains(m));
    let rerender: Vec<usize> = (0..state.enabled.len())
        .filter(|&i| calls_changed(&state.enabled[i].rec.invoked))
        .collect();
    let Some(edits) = reparse_edits(state, loaded, &node_files, &rerender, opts) else {
        return false;
    };
    let mut recompile = recompile_set(state, &edits);
    recompile
        .extend((0..state.compiled.len()).filter(|&i| calls_changed(&state.compiled[i].invoked)));
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
    recompile_generic_tests(state, &moved_ids, &reinjected, &changed_macros);
    state.files = loaded.files.clone();
    state.refresh_errors();
    true
}

/// Swaps in the edited macro files' macros (new workspace, scope and Jinja environment, with
/// the YAML-derived parts kept) and returns the unique ids of the macros that changed.
/// `None` when the edit is broader than new macro bodies: macros or docs blocks added,
/// removed or renamed, a file that no longer extracts, a macro defined in two files, or a
/// changed macro that relation naming, a description or a disabled node's render called.
fn update_macros(
    state: &mut State,
    loaded: &Loaded,
    files: &[Arc<SourceFile>],
    opts: &ParseOptions,
    cache: &mut Cache,
) -> Option<BTreeSet<String>> {
    let old_ws = state.ws.clone();
    if naming_calls_user_macros(&old_ws.scope) {
        return None;
    }
    let mut macros = old_ws.scope.macros.clone();
    let mut infos = old_ws.macro_infos.clone();
    let mut changed: Vec<Arc<MacroDef>> = Vec::new();
    for f in files {
        let package = &loaded.projects.get(f.project)?.name;
        let old = state.files.iter().find(|o| {
            o.kind == FileKind::Macro
                && o.project == f.project
                && o.original_file_path == f.original_file_path
        })?;
        let before = extract_blocks(package, &old.original_file_path, &old.text).ok()?;
        let after = extract_blocks(package, &f.original_file_path, &f.text).ok()?;
        if format!("{:?}", before.docs) != format!("{:?}", after.docs) {
            return None;
        }
        let ids = |defs: &[MacroDef]| {
            let mut v: Vec<String> = defs.iter().map(|m| m.unique_id.clone()).collect();
            v.sort_unstable();
            v
        };
        if ids(&before.macros) != ids(&after.macros) {
            return None;
        }
        for m in after.macros {
            let current = macros.get(&m.package, &m.name)?;
            if current.original_file_path != m.original_file_path {
                return None;
            }
            if format!("{:?}", **current) == format!("{m:?}") {
                continue;
            }
            for info in infos.iter_mut().filter(|i| {
                i.unique_id == m.unique_id && i.original_file_path == m.original_file_path
            }) {
                info.line = m.line;
            }
            let m = Arc::new(m);
            changed.push(m.clone());
            macros
                .by_package
                .entry(m.package.clone())
                .or_default()
                .insert(m.name.clone(), m);
        }
    }
    let changed_ids: BTreeSet<String> = changed.iter().map(|m| m.unique_id.clone()).collect();
    if changed_ids
        .iter()
        .any(|id| state.disabled_invoked.contains(id) || cache.descriptions.invoked.contains(id))
    {
        return None;
    }
    let mut env = old_ws.env.clone();
    let mut env_errors: Vec<NodeError> = old_ws
        .env_errors
        .iter()
        .filter(|e| {
            e.unique_id
                .as_ref()
                .is_none_or(|id| !changed_ids.contains(id))
        })
        .cloned()
        .collect();
    for m in &changed {
        if let Err(e) = env.add_template_owned(m.unique_id.clone(), m.source.clone()) {
            env.remove_template(&m.unique_id);
            env_errors.push(NodeError::new(
                Some(m.unique_id.clone()),
                &m.original_file_path,
                e.line(),
                describe(&e),
            ));
        }
    }
    env_errors.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    let mut scope = (*old_ws.scope).clone();
    scope.macros = macros;
    Arc::make_mut(&mut state.scope).macros = scope.macros.clone();
    let ws = Workspace {
        projects: old_ws.projects.clone(),
        root: old_ws.root.clone(),
        scope: Arc::new(scope),
        env,
        macro_infos: infos,
        patches: old_ws.patches.clone(),
        source_defs: old_ws.source_defs.clone(),
        version_columns: old_ws.version_columns.clone(),
        errors: parse::workspace_errors(&old_ws.macro_errors, &old_ws.property_errors, &env_errors),
        macro_errors: old_ws.macro_errors.clone(),
        property_errors: old_ws.property_errors.clone(),
        env_errors,
        fingerprint: parse::workspace_fingerprint(loaded, opts),
    };
    let ws = Arc::new(ws);
    state.catalog.macros = ws
        .macro_infos
        .iter()
        .map(|m| (m.unique_id.clone(), m.clone()))
        .collect();
    state.ws = ws.clone();
    cache.workspace = Some(ws);
    // descriptions memoised under the old workspace fingerprint no longer match
    cache.descriptions.rendered.clear();
    Some(changed_ids)
}

/// Whether relation naming may render a project's own macros (an override of a
/// `generate_*_name` macro or of its dispatched implementation): naming is not traced, so
/// macro edits then take the full rebuild.
fn naming_calls_user_macros(scope: &Scope) -> bool {
    const GENERATE: [&str; 3] = [
        "generate_schema_name",
        "generate_alias_name",
        "generate_database_name",
    ];
    scope.macros.all().any(|m| {
        m.package != DBT_PACKAGE
            && GENERATE
                .iter()
                .any(|g| m.name == *g || m.name.ends_with(&format!("__{g}")))
    })
}

/// A re-parsed node and whether what `ref()` to it yields (relation, ephemeral) changed.
struct Edit {
    index: usize,
    node: ParsedNode,
    ref_changed: bool,
}

/// Re-renders and re-names the nodes of every edited file and the enabled nodes at
/// `rerender` (whose parse-time render called an edited macro); `None` when one is not a
/// plain edit (a node appears, disappears, is disabled or changes identity).
fn reparse_edits(
    state: &mut State,
    loaded: &Loaded,
    files: &[Arc<SourceFile>],
    rerender: &[usize],
    opts: &ParseOptions,
) -> Option<Vec<Edit>> {
    let ws = state.ws.clone();
    let versioned = parse::versioned_files(&ws);
    let mut found: Vec<(usize, ParsedNode)> = Vec::new();
    for f in files {
        let package = &loaded.projects.get(f.project)?.name;
        let nodes = parse::discover_file(&ws, &versioned, f, package);
        let olds: Vec<usize> = (0..state.enabled.len())
            .filter(|&i| {
                let n = &state.enabled[i];
                n.project_idx == f.project && n.file.original_file_path == f.original_file_path
            })
            .collect();
        if nodes.len() != olds.len() {
            return None;
        }
        for node in nodes {
            let index = *olds
                .iter()
                .find(|&&i| state.enabled[i].unique_id == node.unique_id)?;
            found.push((index, node));
        }
    }
    for &i in rerender {
        if found.iter().any(|(j, _)| *j == i) {
            continue;
        }
        let old = &state.enabled[i];
        let package = &loaded.projects.get(old.project_idx)?.name;
        let node = parse::discover_file(&ws, &versioned, &old.file, package)
            .into_iter()
            .find(|n| n.unique_id == old.unique_id)?;
        found.push((i, node));
    }
    let done: Vec<Option<Edit>> = found
        .into_par_iter()
        .map(|(index, mut node)| {
            parse::parse_node(&ws, &mut node, opts, &HashMap::new());
            if !is_enabled(&node) {
                return None;
            }
            let _named = parse::name_node(&ws, &mut node, opts, &HashMap::new());
            let old = &state.enabled[index];
            if !same_identity(old, &node) {
                return None;
            }
            let ref_changed =
                old.relation != node.relation || is_ephemeral(old) != is_ephemeral(&node);
            Some(Edit {
                index,
                node,
                ref_changed,
            })
        })
        .collect();
    let mut edits: Vec<Edit> = done.into_iter().collect::<Option<_>>()?;
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

/// Generic tests name the relations they test, inline the ephemeral models they ref and
/// render test macros: recompile (and re-inject) those on a moved relation, on a re-injected
/// ephemeral model or whose compilation called a changed macro.
fn recompile_generic_tests(
    state: &mut State,
    moved: &[String],
    reinjected: &HashSet<String>,
    changed_macros: &BTreeSet<String>,
) {
    if moved.is_empty() && reinjected.is_empty() && changed_macros.is_empty() {
        return;
    }
    let (ws, scope) = (&state.ws, &state.scope);
    let by_id = id_index(&state.enabled);
    let mut memo = HashMap::new();
    let test_invoked = &mut state.test_invoked;
    let stale: Vec<&mut crate::ir::catalog::Node> = state
        .catalog
        .nodes
        .values_mut()
        .filter(|n| n.test_metadata.is_some())
        .filter(|n| {
            n.depends_on.nodes.iter().any(|d| moved.contains(d))
                || n.extra_ctes.iter().any(|c| reinjected.contains(c))
                || test_invoked
                    .get(&n.unique_id)
                    .is_some_and(|m| m.iter().any(|id| changed_macros.contains(id)))
        })
        .collect();
    stale.into_iter().for_each(|t| {
        let invoked = tests_compile::compile_test(ws, scope, t);
        inject_test_ctes(t, &state.enabled, &state.compiled, &by_id, &mut memo);
        if invoked.is_empty() {
            test_invoked.remove(&t.unique_id);
        } else {
            test_invoked.insert(t.unique_id.clone(), invoked);
        }
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
