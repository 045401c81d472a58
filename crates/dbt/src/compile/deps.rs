//! Dependency resolution: each node's recorded `ref()` and `source()` calls resolved to the
//! unique ids of depends_on.nodes (or the error dbt reports), and the scope's ref lookup.

use crate::compile::Deps;
use crate::jinja::scope::{RefTarget, Scope};
use crate::parse::{version_key, ParsedNode};
use serde_json::Value;
use std::collections::HashMap;

pub(crate) fn ref_index(nodes: &[ParsedNode]) -> HashMap<String, Vec<RefTarget>> {
    let mut index: HashMap<String, Vec<RefTarget>> = HashMap::new();
    for n in nodes.iter().filter(|n| n.resource_type != "test") {
        let version = n.version.as_ref().map(version_key);
        let latest = n.latest_version.as_ref().map(version_key);
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
