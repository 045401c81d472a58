//! Node edits applied in place: the edited files' nodes (and the callers of changed macros)
//! re-rendered and re-named, checked to be the same nodes as before, with the scope's ref
//! lookup moved to their new relations.

use crate::compile::deps::is_ephemeral;
use crate::incremental::State;
use crate::ir::options::ParseOptions;
use crate::load::{Loaded, SourceFile};
use crate::parse::discover::{discover_file, versioned_files};
use crate::parse::relations::name_node;
use crate::parse::render::parse_node;
use crate::parse::ParsedNode;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// A re-parsed node and whether what `ref()` to it yields (relation, ephemeral) changed.
pub(super) struct Edit {
    pub(super) index: usize,
    pub(super) node: ParsedNode,
    pub(super) ref_changed: bool,
}

/// Re-renders and re-names the nodes of every edited file and the enabled nodes at
/// `rerender` (whose parse-time render called an edited macro); `None` when one is not a
/// plain edit (a node appears, disappears, is disabled or changes identity).
pub(super) fn reparse_edits(
    state: &mut State,
    loaded: &Loaded,
    files: &[Arc<SourceFile>],
    rerender: &[usize],
    opts: &ParseOptions,
) -> Option<Vec<Edit>> {
    let ws = state.ws.clone();
    let versioned = versioned_files(&ws);
    let mut found: Vec<(usize, ParsedNode)> = Vec::new();
    for f in files {
        let package = &loaded.projects.get(f.project)?.name;
        let nodes = discover_file(&ws, &versioned, f, package);
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
        let node = discover_file(&ws, &versioned, &old.file, package)
            .into_iter()
            .find(|n| n.unique_id == old.unique_id)?;
        found.push((i, node));
    }
    let done: Vec<Option<Edit>> = crate::ir::par::map(found, |(index, mut node)| {
        // a patch adopted from another package (`foreign_patch`) stays: YAML is unchanged
        if node.patch.is_none() {
            if let Some(p) = &state.enabled[index].patch {
                node.columns = p.columns.clone();
                node.patch = Some(p.clone());
            }
        }
        parse_node(&ws, &mut node, opts, &HashMap::new(), (true, None));
        if !node.is_enabled() {
            return None;
        }
        let _named = name_node(&ws, &mut node, opts, &HashMap::new());
        let old = &state.enabled[index];
        if !same_identity(old, &node) {
            return None;
        }
        let ref_changed = old.relation != node.relation || is_ephemeral(old) != is_ephemeral(&node);
        Some(Edit {
            index,
            node,
            ref_changed,
        })
    });
    let mut edits: Vec<Edit> = done.into_iter().collect::<Option<_>>()?;
    update_ref_targets(state, &edits);
    edits.sort_by_key(|e| e.index);
    Some(edits)
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
pub(super) fn recompile_set(state: &State, edits: &[Edit]) -> BTreeSet<usize> {
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
