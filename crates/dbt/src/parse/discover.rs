//! Node discovery: the models, seeds, singular tests and snapshots each file defines, with
//! their fqn, YAML patch and (for versioned models) version, before any rendering.

use crate::ir::catalog::ColumnDef;
use crate::jinja;
use crate::jinja::context::Recording;
use crate::load::{FileKind, Loaded, SourceFile};
use crate::parse::properties::{NodePatch, VersionDef};
use crate::parse::{version_key, ParsedNode, Workspace};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Python's `str.strip()`-ed file stem.
fn stem(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.').map_or(file, |(s, _)| s)
}

fn dirs_of(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = path.split('/').map(str::to_string).collect();
    parts.pop();
    parts
}

/// Discovers model, seed and snapshot nodes (before rendering).
pub fn discover_nodes(ws: &Workspace, loaded: &Loaded) -> Vec<ParsedNode> {
    let versioned = versioned_files(ws);
    let mut nodes = Vec::new();
    for f in &loaded.files {
        let package = &loaded.projects[f.project].name;
        nodes.extend(discover_file(ws, &versioned, f, package));
    }
    nodes
}

/// The nodes one file defines (none for macro, docs and property files).
pub fn discover_file(
    ws: &Workspace,
    versioned: &Versioned,
    f: &Arc<SourceFile>,
    package: &str,
) -> Vec<ParsedNode> {
    match f.kind {
        FileKind::Model | FileKind::Seed | FileKind::Test => {
            let resource_type = match f.kind {
                FileKind::Model => "model",
                FileKind::Seed => "seed",
                _ => "test",
            };
            let file_stem = stem(&f.path).to_string();
            let mut fqn = vec![package.to_string()];
            fqn.extend(dirs_of(&f.path));
            let vkey = (package.to_string(), file_stem.clone());
            let mut node = blank_node(ws, f, package, resource_type, &file_stem, fqn);
            if resource_type == "model" {
                if let Some((model, v)) = versioned.get(&vkey) {
                    apply_version(ws, &mut node, model, v);
                }
            }
            vec![node]
        }
        FileKind::Snapshot => snapshot_nodes(ws, f, package),
        _ => Vec::new(),
    }
}

fn blank_node(
    ws: &Workspace,
    f: &Arc<SourceFile>,
    package: &str,
    resource_type: &'static str,
    name: &str,
    mut fqn: Vec<String>,
) -> ParsedNode {
    fqn.push(name.to_string());
    let patch = ws
        .patches
        .get(&(package.to_string(), name.to_string(), resource_type))
        .cloned();
    ParsedNode {
        parse_key: 0,
        unique_id: format!("{resource_type}.{package}.{name}"),
        resource_type,
        name: name.to_string(),
        package: package.to_string(),
        project_idx: ws
            .projects
            .iter()
            .position(|p| p.name == package)
            .unwrap_or(0),
        raw_code: if resource_type == "seed" {
            String::new()
        } else {
            f.text.trim().to_string()
        },
        file: f.clone(),
        fqn,
        version: None,
        latest_version: None,
        columns: patch
            .as_ref()
            .map(|p| p.columns.clone())
            .unwrap_or_default(),
        patch,
        version_config: Map::new(),
        config: Map::new(),
        tags: Vec::new(),
        rec: Recording::default(),
        parse_error: None,
        relation: None,
        database: None,
        schema: String::new(),
        alias: String::new(),
    }
}

/// `(package, file stem)` of versioned model files → `(model name, version)`.
pub type Versioned = HashMap<(String, String), (String, Value)>;

/// Maps `(package, file stem)` of versioned model files to `(model name, version)`.
pub fn versioned_files(ws: &Workspace) -> Versioned {
    let mut out = HashMap::new();
    for ((package, name, kind), p) in &ws.patches {
        if *kind != "model" {
            continue;
        }
        for v in &p.versions {
            let file = v
                .defined_in
                .clone()
                .unwrap_or_else(|| format!("{name}_v{}", version_key(&v.v)));
            out.insert((package.clone(), file), (name.clone(), v.v.clone()));
        }
    }
    out
}

fn apply_version(ws: &Workspace, node: &mut ParsedNode, model: &str, v: &Value) {
    let Some(patch) = ws
        .patches
        .get(&(node.package.clone(), model.to_string(), "model"))
        .cloned()
    else {
        return;
    };
    let key = version_key(v);
    node.name = model.to_string();
    node.unique_id = format!("model.{}.{model}.v{key}", node.package);
    node.fqn.pop();
    node.fqn.push(model.to_string());
    node.fqn.push(format!("v{key}"));
    node.version = Some(v.clone());
    node.latest_version = patch.latest_version.clone().or_else(|| {
        patch.versions.iter().map(|x| x.v.clone()).max_by(|a, b| {
            a.as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b.as_f64().unwrap_or(0.0))
        })
    });
    let vdef = patch.versions.iter().find(|x| &x.v == v);
    node.version_config = vdef.map(|d| d.config.clone()).unwrap_or_default();
    node.columns = version_columns(ws, &patch, vdef, &node.package, &key);
    node.patch = Some(patch);
}

fn version_columns(
    ws: &Workspace,
    patch: &NodePatch,
    vdef: Option<&VersionDef>,
    package: &str,
    key: &str,
) -> Vec<ColumnDef> {
    let spec = ws
        .version_columns
        .get(&(package.to_string(), patch.name.clone(), key.to_string()));
    let (include_all, include_list, exclude) = match spec {
        Some((Value::String(s), ex)) if s == "all" || s == "*" => (true, Vec::new(), ex.clone()),
        Some((Value::Array(items), ex)) => (
            false,
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            ex.clone(),
        ),
        _ => (true, Vec::new(), Vec::new()),
    };
    let own = vdef.map(|d| d.columns.clone()).unwrap_or_default();
    let mut cols: Vec<ColumnDef> = patch
        .columns
        .iter()
        .filter(|c| (include_all || include_list.contains(&c.name)) && !exclude.contains(&c.name))
        .map(|c| {
            own.iter()
                .find(|o| o.name == c.name)
                .cloned()
                .unwrap_or_else(|| c.clone())
        })
        .collect();
    for c in own {
        if !cols.iter().any(|x| x.name == c.name) {
            cols.push(c);
        }
    }
    cols
}

fn snapshot_nodes(ws: &Workspace, f: &Arc<SourceFile>, package: &str) -> Vec<ParsedNode> {
    let Ok(blocks) = jinja::blocks::find_blocks(&f.text) else {
        return Vec::new();
    };
    blocks
        .into_iter()
        .filter(|b| b.kind == "snapshot")
        .map(|b| {
            let mut fqn = vec![package.to_string()];
            fqn.extend(dirs_of(&f.path));
            fqn.push(stem(&f.path).to_string());
            let mut node = blank_node(ws, f, package, "snapshot", &b.name, fqn);
            node.fqn.pop();
            node.fqn.push(b.name.clone());
            node.raw_code = f.text[b.body.0..b.body.1].to_string();
            node
        })
        .collect()
}
