//! Ephemeral CTE injection over the compiled nodes: each node's final SQL with the CTEs of
//! the ephemeral models it inlines (recursively, memoised per node), for models and for the
//! generic tests' `extra_ctes`. The text operations are in `ctes`.

use crate::compile::ctes::{cte_sql, extend_ctes, inject_ctes, InjectedCte};
use crate::compile::Compiled;
use crate::ir::catalog::Node;
use crate::parse::ParsedNode;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Injects ephemeral CTEs into every compiled node; returns the final SQL per node.
pub fn inject_all(nodes: &[ParsedNode], compiled: &[Compiled]) -> Vec<Option<String>> {
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
pub fn inject_all_test_ctes(
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
