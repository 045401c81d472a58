//! What happens downstream of a node that fails to compile, as dbt reports it (its
//! `GraphRunnableTask`, the way `dbt run` / `dbt build` go on past errors): every descendant
//! of a failed node is skipped and not compiled (no compiled SQL; only the macros captured at
//! parse time stay in `depends_on`). When the failed node is an ephemeral model, the skip has
//! a reason — "Compilation Error in `<id>`, caused by compilation error in referenced ephemeral
//! model `<id>`" — and counts as that node's error (dbt exits with an error for it), so a model
//! whose ephemeral upstream failed never looks compiled with the CTE missing. A node below a
//! skipped one is skipped too, and a failing node that is itself skipped does not propagate
//! its own cause (dbt never runs it).
//!
//! The pass is idempotent: it first restores what each node compiled to on its own (kept in
//! [`Node::own_outcome`] when the pass changed it), so the incremental engine can run it again
//! after re-assembling some nodes.

use crate::ir::catalog::{CompileStatus, Node, OwnOutcome};
use crate::ir::error::NodeError;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Marks the descendants of failed nodes as dbt does; returns the errors the skips add.
pub(crate) fn propagate_failures(nodes: &mut BTreeMap<String, Node>) -> Vec<NodeError> {
    restore_own(nodes);
    // nothing failed, nothing to skip: spares the graph walk on every in-place update
    if !nodes
        .values()
        .any(|n| n.compile_status == CompileStatus::Error)
    {
        return Vec::new();
    }
    let order = topological(nodes);
    let children = children(nodes);
    // node -> the failed node that skips it (last one in graph order wins, as in dbt)
    let mut skipped: HashMap<&str, &str> = HashMap::new();
    for id in &order {
        if skipped.contains_key(id.as_str()) {
            continue;
        }
        if nodes.get(id).map(|n| n.compile_status) != Some(CompileStatus::Error) {
            continue;
        }
        let mut stack: Vec<&str> = vec![id.as_str()];
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        while let Some(cur) = stack.pop() {
            for child in children.get(cur).into_iter().flatten() {
                if seen.insert(child) {
                    skipped.insert(child, id.as_str());
                    stack.push(child);
                }
            }
        }
    }
    let mut causes: Vec<(String, String, bool)> = skipped
        .iter()
        .map(|(node, cause)| {
            let ephemeral = nodes
                .get(*cause)
                .is_some_and(|c| c.materialized == "ephemeral");
            (node.to_string(), cause.to_string(), ephemeral)
        })
        .collect();
    causes.sort();
    let mut errors = Vec::new();
    for (id, cause, ephemeral) in causes {
        let Some(n) = nodes.get_mut(&id) else {
            continue;
        };
        let compile_only: BTreeSet<&String> = n.compile_macros.iter().collect();
        let parse_macros: Vec<String> = n
            .depends_on
            .macros
            .iter()
            .filter(|m| !compile_only.contains(m))
            .cloned()
            .collect();
        n.own_outcome = Some(Box::new(OwnOutcome {
            status: n.compile_status,
            error: n.compile_error.take(),
            compiled_code: n.compiled_code.take(),
            macros: std::mem::replace(&mut n.depends_on.macros, parse_macros),
        }));
        n.compile_status = CompileStatus::Skipped;
        if ephemeral {
            let msg = format!(
                "Compilation Error in {id}, caused by compilation error in referenced ephemeral model {cause}"
            );
            errors.push(NodeError::new(
                Some(id.clone()),
                &n.original_file_path,
                None,
                msg.clone(),
            ));
            n.compile_error = Some(msg);
        }
    }
    errors
}

/// Puts back what every node compiled to on its own (undoes [`propagate_failures`]); the
/// incremental engine calls it before it updates nodes in place.
pub(crate) fn restore_own(nodes: &mut BTreeMap<String, Node>) {
    for n in nodes.values_mut() {
        if let Some(own) = n.own_outcome.take() {
            n.compile_status = own.status;
            n.compile_error = own.error;
            n.compiled_code = own.compiled_code;
            n.depends_on.macros = own.macros;
        }
    }
}

/// Each node's dependents (among `nodes`).
fn children(nodes: &BTreeMap<String, Node>) -> HashMap<&str, Vec<&str>> {
    let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, n) in nodes {
        for dep in &n.depends_on.nodes {
            if let Some((parent, _)) = nodes.get_key_value(dep) {
                out.entry(parent.as_str()).or_default().push(id.as_str());
            }
        }
    }
    out
}

/// Node ids parents-first (ties by id); nodes on a cycle come last.
fn topological(nodes: &BTreeMap<String, Node>) -> Vec<String> {
    let children = children(nodes);
    let mut indegree: BTreeMap<&str, usize> = nodes.keys().map(|k| (k.as_str(), 0)).collect();
    for kids in children.values() {
        for k in kids {
            if let Some(d) = indegree.get_mut(k) {
                *d += 1;
            }
        }
    }
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut out = Vec::with_capacity(nodes.len());
    while let Some(id) = ready.pop_first() {
        out.push(id.to_string());
        for k in children.get(id).into_iter().flatten() {
            if let Some(d) = indegree.get_mut(k) {
                *d -= 1;
                if *d == 0 {
                    ready.insert(k);
                }
            }
        }
    }
    if out.len() < nodes.len() {
        let done: BTreeSet<String> = out.iter().cloned().collect();
        out.extend(nodes.keys().filter(|k| !done.contains(*k)).cloned());
    }
    out
}
