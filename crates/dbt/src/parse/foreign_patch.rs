//! dbt applies a YAML entry of package P to the enabled node of that name in P, and when P
//! has none (its node is disabled or missing), to the enabled node of that name in another
//! package: the dbt_project_evaluator pattern of disabling a package's seed from the root
//! and shipping one's own copy gives the root's seed the package's description, columns and
//! `column_types`. An entry whose match is of another resource type is ignored (dbt warns).

use crate::ir::options::ParseOptions;
use crate::parse::render::{parse_node, ParseRender};
use crate::parse::{ParsedNode, Workspace};
use std::collections::{HashMap, HashSet};

/// Gives enabled nodes without a patch of their own the patches other packages wrote for
/// their name, re-rendering them; returns the new parse-time renders (for the parse cache).
pub fn adopt(
    ws: &Workspace,
    enabled: &mut [ParsedNode],
    opts: &ParseOptions,
) -> Vec<(u64, ParseRender)> {
    let mut keys: Vec<&(String, String, &'static str)> = ws.patches.keys().collect();
    keys.sort();
    // which (package, name) has an enabled node, and the first unversioned node of a name
    let owned: HashSet<(String, String)> = enabled
        .iter()
        .map(|n| (n.package.clone(), n.name.clone()))
        .collect();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (i, n) in enabled.iter().enumerate() {
        if n.version.is_none() {
            by_name.entry(n.name.clone()).or_insert(i);
        }
    }
    let mut out = Vec::new();
    for key in keys {
        let (package, name, kind) = (key.0.as_str(), key.1.as_str(), key.2);
        if owned.contains(&(package.to_string(), name.to_string())) {
            continue;
        }
        let Some(node) = by_name.get(name).map(|&i| &mut enabled[i]) else {
            continue;
        };
        if node.resource_type != kind || node.patch.is_some() {
            continue;
        }
        let patch = ws.patches[key].clone();
        node.columns = patch.columns.clone();
        node.patch = Some(patch);
        out.extend(parse_node(ws, node, opts, &HashMap::new(), (true, None)));
    }
    out
}
