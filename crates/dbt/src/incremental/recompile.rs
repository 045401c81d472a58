//! Downstream of an in-place edit: nodes whose inputs moved recompiled, ephemeral CTEs
//! re-injected where an inlined model changed, catalog nodes rebuilt, and the generic tests
//! that name a moved relation, inline a re-injected model or call a changed macro recompiled.

use crate::compile::assemble::{assemble, AssembleInputs};
use crate::compile::deps::resolve_deps;
use crate::compile::inject::{id_index, inject_one, inject_test_ctes};
use crate::compile::render::compile_node;
use crate::compile::{Compiled, Deps};
use crate::data_tests::compile as tests_compile;
use crate::incremental::cache::Cache;
use crate::incremental::State;
use crate::ir::catalog::Node;
use std::collections::{BTreeSet, HashMap, HashSet};

pub(super) fn recompile_nodes(state: &mut State, set: &BTreeSet<usize>) {
    let (ws, scope) = (&state.ws, &state.scope);
    let set: Vec<usize> = set.iter().copied().collect();
    let done: Vec<(usize, Deps, Compiled)> = crate::ir::par::map(set, |i| {
        let n = &state.enabled[i];
        let deps = resolve_deps(scope, n);
        let compiled = compile_node(ws, scope, n, &deps, None);
        (i, deps, compiled)
    });
    for (i, deps, compiled) in done {
        state.deps[i] = deps;
        state.compiled[i] = compiled;
    }
}

/// Recompiled nodes plus every node that (transitively) inlines a recompiled ephemeral model.
pub(super) fn reinject_set(state: &State, recompiled: &BTreeSet<usize>) -> BTreeSet<usize> {
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
pub(super) fn recompile_generic_tests(
    state: &mut State,
    moved: &[String],
    reinjected: &HashSet<String>,
    changed_macros: &BTreeSet<String>,
) {
    if moved.is_empty() && reinjected.is_empty() && changed_macros.is_empty() {
        return;
    }
    let (ws, scope) = (&state.ws, &state.scope);
    let mut memo = HashMap::new();
    let test_invoked = &mut state.test_invoked;
    // tests whose compilation called a changed macro, found from the (short) list of tests
    // that call any macro rather than by hashing every test's id
    let calls_changed: HashSet<&str> = if changed_macros.is_empty() {
        HashSet::new()
    } else {
        test_invoked
            .iter()
            .filter(|(_, m)| m.iter().any(|id| changed_macros.contains(id)))
            .map(|(t, _)| t.as_str())
            .collect()
    };
    let stale: Vec<&mut Node> = state
        .catalog
        .nodes
        .values_mut()
        .filter(|n| n.test_metadata.is_some())
        .filter(|n| {
            (!moved.is_empty() && n.depends_on.nodes.iter().any(|d| moved.contains(d)))
                || (!reinjected.is_empty() && n.extra_ctes.iter().any(|c| reinjected.contains(c)))
                || (!calls_changed.is_empty() && calls_changed.contains(n.unique_id.as_str()))
        })
        .collect();
    // the id index serves CTE injection only: built when a recompiled test inlines a model
    let mut by_id: Option<HashMap<&str, usize>> = None;
    stale.into_iter().for_each(|t| {
        let invoked = tests_compile::compile_test(ws, scope, t);
        if !t.extra_ctes.is_empty() {
            let index = by_id.get_or_insert_with(|| id_index(&state.enabled));
            inject_test_ctes(t, &state.enabled, &state.compiled, index, &mut memo);
        }
        if invoked.is_empty() {
            test_invoked.remove(&t.unique_id);
        } else {
            test_invoked.insert(t.unique_id.clone(), invoked);
        }
    });
}

/// Re-injects CTEs and rebuilds the catalog nodes of `set`, keeping their attached tests.
pub(super) fn reassemble(state: &mut State, set: &BTreeSet<usize>, cache: &mut Cache) {
    // the index serves CTE injection only
    let by_id = if set.iter().any(|&i| !state.compiled[i].ctes.is_empty()) {
        id_index(&state.enabled)
    } else {
        HashMap::new()
    };
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
