//! In-place updates of a previous parse. When only model, seed, snapshot or macro files were
//! edited (no files added or removed, no YAML, docs or project change), only what depends on
//! the edit is redone: edited nodes are re-rendered and re-named; an edited macro re-renders
//! exactly the nodes and generic tests whose renders called it (at any depth, through
//! macro-calls-macro chains and `adapter.dispatch`, as recorded while rendering); models whose
//! refs now point at a different relation are recompiled, and nodes that inline a changed
//! ephemeral model get their CTEs re-injected; everything else is kept. Anything broader
//! returns `false` so the caller falls back to a full (memoised) rebuild, whose output this
//! must always equal (`tests/incremental_equals_fresh.rs`).

pub mod build;
pub mod cache;
pub mod engine;
mod macros;
mod propagate;
mod recompile;
mod reparse;

use crate::compile::{Compiled, Deps};
use crate::incremental::cache::Cache;
use crate::incremental::macros::update_macros;
use crate::incremental::recompile::{
    reassemble, recompile_generic_tests, recompile_nodes, reinject_set,
};
use crate::incremental::reparse::{recompile_set, reparse_edits};
use crate::ir::catalog::Catalog;
use crate::ir::error::{scrub_root, NodeError};
use crate::ir::options::ParseOptions;
use crate::jinja::scope::Scope;
use crate::load::{Changes, FileKind, Loaded, SourceFile};
use crate::parse::{ParsedNode, Workspace};
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
