//! The parse pipeline: macros and docs, property files, model/seed/snapshot discovery, the
//! parse-time render (execute = false) that records refs, sources and `config()` calls, config
//! precedence and relation naming. Produces `ParsedNode`s ready for compilation.

pub mod config;
pub mod naming;
pub mod project_render;
pub mod properties;
pub mod static_refs;
pub mod test_macro_config;

use crate::incremental::cache::{self, Cache, ParseRender};
use crate::ir::error::NodeError;
use crate::ir::options::ParseOptions;
use crate::jinja::context::{NodeFacts, Recording, RenderCtx};
use crate::jinja::relation::Relation;
use crate::jinja::scope::{MacroIndex, Scope, SourceTarget};
use crate::jinja::{self, build_env, extract_blocks, render};
use crate::load::project::Project;
use crate::load::{FileKind, Loaded, SourceFile};
use crate::parse::config::ConfigSources;
use crate::parse::project_render::{render_properties, render_tree};
use crate::parse::properties::{
    apply_source_override, parse_properties, version_include_exclude, ColumnDef, NodePatch,
    Properties, SourceTableDef,
};
use crate::yaml;
use minijinja::Environment;
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Config trees of one project with Jinja already rendered.
#[derive(Debug, Clone)]
pub struct ProjectTrees {
    pub name: String,
    pub trees: Map<String, Value>,
    pub quoting: Map<String, Value>,
}

/// Project-wide state shared by the parse and compile passes.
pub struct Workspace {
    pub projects: Vec<ProjectTrees>,
    pub root: String,
    pub scope: Arc<Scope>,
    pub env: Environment<'static>,
    pub macro_infos: Vec<crate::ir::catalog::MacroInfo>,
    pub patches: HashMap<(String, String, &'static str), NodePatch>,
    pub source_defs: Vec<SourceTableDef>,
    pub version_columns: HashMap<(String, String, String), (Value, Vec<String>)>,
    /// errors found building the workspace (macros, YAML); never the loader's file errors,
    /// which the fingerprint does not cover: `macro_errors`, `property_errors`, `env_errors`
    pub errors: Vec<NodeError>,
    /// macro and docs files whose blocks could not be extracted
    pub macro_errors: Vec<NodeError>,
    /// property (YAML) files
    pub property_errors: Vec<NodeError>,
    /// macros whose templates do not compile, by unique id
    pub env_errors: Vec<NodeError>,
    /// fingerprint of every project-wide input (macros, docs, YAML, project files, options)
    pub fingerprint: u64,
}

/// A node after the parse-time render, before compilation.
#[derive(Debug, Clone)]
pub struct ParsedNode {
    /// fingerprint of everything the parse-time result depends on
    pub parse_key: u64,
    pub unique_id: String,
    pub resource_type: &'static str,
    pub name: String,
    pub package: String,
    pub project_idx: usize,
    pub file: Arc<SourceFile>,
    pub raw_code: String,
    pub fqn: Vec<String>,
    pub version: Option<Value>,
    pub latest_version: Option<Value>,
    pub patch: Option<NodePatch>,
    pub version_config: Map<String, Value>,
    pub columns: Vec<ColumnDef>,
    pub config: Map<String, Value>,
    pub tags: Vec<String>,
    pub rec: Recording,
    pub parse_error: Option<(Option<usize>, String)>,
    pub relation: Option<Relation>,
    pub database: Option<String>,
    pub schema: String,
    pub alias: String,
}

/// Collects macros, docs and property files, and builds the parse-time scope.
pub fn build_workspace(loaded: &Loaded, opts: &ParseOptions, fingerprint: u64) -> Workspace {
    let root = loaded
        .projects
        .first()
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let projects: Vec<ProjectTrees> = loaded
        .projects
        .iter()
        .map(|p| ProjectTrees {
            name: p.name.clone(),
            trees: match render_tree(&Value::Object(p.configs.clone()), opts, &root) {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            quoting: p.quoting.clone(),
        })
        .collect();
    // loader errors are not covered by the fingerprint: the caller reports them per parse
    let mut macro_errors = Vec::new();
    let (macros, docs, macro_infos) = collect_macros(loaded, opts, &mut macro_errors);
    let mut ws_patches = HashMap::new();
    let mut source_defs = Vec::new();
    let mut version_columns = HashMap::new();
    let mut property_errors = Vec::new();
    let yaml_scope = Arc::new(Scope {
        root_package: root.clone(),
        packages: loaded.projects.iter().map(|p| p.name.clone()).collect(),
        target: opts.target_map(),
        adapter: opts.adapter,
        cli_vars: opts.vars.clone().into_iter().collect(),
        project_vars: loaded
            .projects
            .iter()
            .map(|p| (p.name.clone(), p.vars.clone()))
            .collect(),
        env: opts.env.clone(),
        ..Scope::default()
    });
    collect_properties(
        loaded,
        &yaml_scope,
        &mut ws_patches,
        &mut source_defs,
        &mut version_columns,
        &mut property_errors,
    );
    let scope = Scope {
        root_package: root.clone(),
        macros,
        dispatch: loaded
            .projects
            .first()
            .map(|p| p.dispatch.iter().cloned().collect())
            .unwrap_or_default(),
        packages: loaded.projects.iter().map(|p| p.name.clone()).collect(),
        target: opts.target_map(),
        adapter: opts.adapter,
        cli_vars: opts.vars.clone().into_iter().collect(),
        project_vars: loaded
            .projects
            .iter()
            .map(|p| (p.name.clone(), p.vars.clone()))
            .collect(),
        env: opts.env.clone(),
        docs,
        refs: HashMap::new(),
        sources: HashMap::new(),
        graph: None,
        test_configs: HashMap::new(),
    };
    let (env, compile_errors) = build_env(&scope.macros);
    let mut scope = scope;
    scope.test_configs = crate::parse::test_macro_config::collect(&env, &scope);
    let env_errors: Vec<NodeError> = compile_errors
        .into_iter()
        .map(|e| NodeError::new(Some(e.unique_id), &e.file, e.line, e.message))
        .collect();
    let errors = workspace_errors(&macro_errors, &property_errors, &env_errors);
    Workspace {
        fingerprint,
        projects,
        root,
        scope: Arc::new(scope),
        env,
        macro_infos,
        patches: ws_patches,
        source_defs,
        version_columns,
        errors,
        macro_errors,
        property_errors,
        env_errors,
    }
}

/// The workspace's error list, in the order a full build finds them.
pub fn workspace_errors(
    macro_errors: &[NodeError],
    property_errors: &[NodeError],
    env_errors: &[NodeError],
) -> Vec<NodeError> {
    let mut errors = macro_errors.to_vec();
    errors.extend_from_slice(property_errors);
    errors.extend_from_slice(env_errors);
    errors
}

type Docs = HashMap<String, Vec<(String, String)>>;

pub fn workspace_fingerprint(loaded: &Loaded, opts: &ParseOptions) -> u64 {
    let mut parts: Vec<(&str, &str)> = loaded
        .files
        .iter()
        .filter(|f| {
            !matches!(
                f.kind,
                FileKind::Model | FileKind::Seed | FileKind::Snapshot | FileKind::Test
            )
        })
        .map(|f| (f.original_file_path.as_str(), f.checksum.as_str()))
        .collect();
    parts.sort_unstable();
    let projects: Vec<String> = loaded
        .projects
        .iter()
        .map(|p| {
            format!(
                "{}|{:?}|{:?}|{:?}|{:?}",
                p.name, p.configs, p.vars, p.dispatch, p.quoting
            )
        })
        .collect();
    cache::fingerprint(&(parts, projects, format!("{opts:?}")))
}

fn collect_macros(
    loaded: &Loaded,
    opts: &ParseOptions,
    errors: &mut Vec<NodeError>,
) -> (MacroIndex, Docs, Vec<crate::ir::catalog::MacroInfo>) {
    let mut index = MacroIndex::default();
    for m in jinja::builtin_macros() {
        index.insert(m);
    }
    for m in jinja::adapter_macros(opts.adapter) {
        index.insert_internal(m);
    }
    let mut docs: Docs = HashMap::new();
    let mut infos = Vec::new();
    for f in &loaded.files {
        if !matches!(f.kind, FileKind::Macro | FileKind::Docs) {
            continue;
        }
        let package = &loaded.projects[f.project].name;
        match extract_blocks(package, &f.original_file_path, &f.text) {
            Ok(blocks) => {
                for d in blocks.docs {
                    docs.entry(d.name)
                        .or_default()
                        .push((package.clone(), d.text));
                }
                if f.kind != FileKind::Macro {
                    continue;
                }
                for m in blocks.macros {
                    infos.push(crate::ir::catalog::MacroInfo {
                        unique_id: m.unique_id.clone(),
                        name: m.name.clone(),
                        package_name: m.package.clone(),
                        original_file_path: m.original_file_path.clone(),
                        line: m.line,
                    });
                    index.insert(m);
                }
            }
            Err(e) => errors.push(NodeError::new(
                None,
                &f.original_file_path,
                Some(e.line),
                e.message,
            )),
        }
    }
    (index, docs, infos)
}

fn collect_properties(
    loaded: &Loaded,
    yaml_scope: &Arc<Scope>,
    patches: &mut HashMap<(String, String, &'static str), NodePatch>,
    sources: &mut Vec<SourceTableDef>,
    version_columns: &mut HashMap<(String, String, String), (Value, Vec<String>)>,
    errors: &mut Vec<NodeError>,
) {
    let files: Vec<&Arc<SourceFile>> = loaded
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Properties)
        .collect();
    let read: Vec<Result<Option<(Value, Properties)>, NodeError>> = files
        .par_iter()
        .map(|f| read_properties(f, &loaded.projects[f.project].name, yaml_scope))
        .collect();
    let mut overrides = Vec::new();
    for (f, r) in files.iter().zip(read) {
        let package = &loaded.projects[f.project].name;
        let (doc, props) = match r {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for (kind, list) in [
            ("model", props.models),
            ("seed", props.seeds),
            ("snapshot", props.snapshots),
        ] {
            for p in list {
                for v in &p.versions {
                    if let Some(spec) = version_include_exclude(&doc, &p.name, &v.v) {
                        version_columns
                            .insert((package.clone(), p.name.clone(), version_key(&v.v)), spec);
                    }
                }
                let key = (package.clone(), p.name.clone(), kind);
                if patches.contains_key(&key) {
                    errors.push(NodeError::new(
                        None,
                        &f.original_file_path,
                        None,
                        format!("{kind} '{}' is patched more than once", p.name),
                    ));
                    continue;
                }
                patches.insert(key, p);
            }
        }
        sources.extend(props.sources);
        overrides.extend(props.source_overrides);
    }
    for o in &overrides {
        apply_source_override(sources, o);
    }
}

/// Loads, renders and parses one property file; `None` for an empty file.
fn read_properties(
    f: &SourceFile,
    package: &str,
    yaml_scope: &Arc<Scope>,
) -> Result<Option<(Value, Properties)>, NodeError> {
    let doc = yaml::load(&f.text).map_err(|e| {
        NodeError::new(
            None,
            &f.original_file_path,
            Some(e.line),
            format!("invalid yaml: {}", e.message),
        )
    })?;
    if doc.is_null() {
        return Ok(None);
    }
    let doc = render_properties(&doc, yaml_scope, package, &f.original_file_path);
    if !doc.is_object() {
        return Err(NodeError::new(
            None,
            &f.original_file_path,
            Some(1),
            "property file must be a mapping".into(),
        ));
    }
    let props = parse_properties(&doc, &f.original_file_path, package);
    Ok(Some((doc, props)))
}

/// `1` → "1", `1.5` → "1.5", `"a"` → "a": how dbt prints a version in ids and names.
pub fn version_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

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
    vdef: Option<&crate::parse::properties::VersionDef>,
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

/// Config tree key for a resource type.
fn tree_key(resource_type: &str) -> &'static str {
    match resource_type {
        "seed" => "seeds",
        "snapshot" => "snapshots",
        "test" => "tests",
        _ => "models",
    }
}

fn default_materialized(resource_type: &str) -> &'static str {
    match resource_type {
        "seed" => "seed",
        "snapshot" => "snapshot",
        _ => "view",
    }
}

/// The node's config from project trees, YAML patch and (optionally) SQL `config()` calls.
pub fn node_config(
    ws: &Workspace,
    node: &ParsedNode,
    sql_calls: &[Map<String, Value>],
    include_patch: bool,
) -> Map<String, Value> {
    let key = tree_key(node.resource_type);
    let own = ws.projects.get(node.project_idx);
    let root = ws.projects.first();
    let own_tree = own.and_then(|p| p.trees.get(key)).unwrap_or(&Value::Null);
    let root_tree = if node.project_idx != 0 {
        root.and_then(|p| p.trees.get(key))
    } else {
        None
    };
    let mut patch = Map::new();
    if include_patch {
        if let Some(p) = &node.patch {
            patch = p.config.clone();
            // a property file's top-level `meta:` lands in config.meta too (under its `config:` meta)
            if !p.meta.is_empty() {
                let mut meta = p.meta.clone();
                if let Some(Value::Object(m)) = patch.get("meta") {
                    meta.extend(m.clone());
                }
                patch.insert("meta".into(), Value::Object(meta));
            }
        }
        config::merge_into(&mut patch, &node.version_config);
    }
    let defaults = if node.resource_type == "test" {
        config::test_defaults()
    } else {
        config::model_defaults(default_materialized(node.resource_type))
    };
    let mut config = config::calculate(
        defaults,
        &ConfigSources {
            own_tree,
            root_tree,
            fqn: &node.fqn,
            patch: Some(&patch),
            sql_calls,
        },
    );
    if let Some(Value::String(s)) = config.get_mut("severity") {
        *s = s.to_uppercase();
    }
    config
}

/// The `model` dict the Jinja context exposes for a node.
pub fn model_dict(node: &ParsedNode, config: &Map<String, Value>) -> Value {
    json!({
        "name": node.name,
        "unique_id": node.unique_id,
        "package_name": node.package,
        "resource_type": node.resource_type,
        "original_file_path": node.file.original_file_path,
        "path": node.file.path,
        "fqn": node.fqn,
        "version": node.version.as_ref().map(version_key),
        "latest_version": node.latest_version.as_ref().map(version_key),
        "config": config,
        "tags": config.get("tags").cloned().unwrap_or(json!([])),
        "raw_code": node.raw_code,
        "language": "sql",
        "database": node.database,
        "schema": node.schema,
        "alias": node.alias,
    })
}

/// Renders every node with execute = false to record refs, sources, config calls and macros.
/// Results are reused from `cache` when the node text and the workspace are unchanged.
pub fn parse_render(
    ws: &Workspace,
    nodes: &mut [ParsedNode],
    opts: &ParseOptions,
    cache: &mut Cache,
) {
    let previous = std::mem::take(&mut cache.parse);
    let fresh: Vec<Option<(u64, ParseRender)>> = nodes
        .par_iter_mut()
        .map(|node| parse_node(ws, node, opts, &previous))
        .collect();
    cache.parse = fresh.into_iter().flatten().collect();
}

/// The parse-time render of one node (taken from `previous` when its key is there).
pub fn parse_node(
    ws: &Workspace,
    node: &mut ParsedNode,
    opts: &ParseOptions,
    previous: &HashMap<u64, ParseRender>,
) -> Option<(u64, ParseRender)> {
    if node.resource_type == "seed" {
        node.config = node_config(ws, node, &[], true);
        take_render_error(node);
        return None;
    }
    let key = cache::fingerprint(&(
        ws.fingerprint,
        &node.unique_id,
        &node.file.checksum,
        &node.raw_code,
    ));
    node.parse_key = key;
    let result = match previous.get(&key) {
        Some(hit) => hit.clone(),
        None => render_for_parse(ws, node, opts),
    };
    node.rec = result.rec.clone();
    node.parse_error = result.error.clone();
    node.config = result.config.clone();
    take_render_error(node);
    node.tags = result.tags.clone();
    Some((key, result))
}

/// A project config value that failed to render (see `project_render`) is the node's error.
fn take_render_error(node: &mut ParsedNode) {
    if let Some(msg) = node
        .config
        .remove(crate::parse::project_render::RENDER_ERROR_KEY)
    {
        let msg = msg.as_str().map_or_else(|| msg.to_string(), str::to_string);
        node.parse_error.get_or_insert((None, msg));
    }
}

fn render_for_parse(ws: &Workspace, node: &ParsedNode, opts: &ParseOptions) -> ParseRender {
    let pre = node_config(ws, node, &[], true);
    let facts = NodeFacts {
        unique_id: node.unique_id.clone(),
        name: node.name.clone(),
        package: node.package.clone(),
        resource_type: node.resource_type.to_string(),
        this: Some(Relation::table(
            opts.adapter,
            &opts.target_database,
            &opts.target_schema,
            &node.name,
            opts.adapter.spec().quote_policy,
        )),
        model: model_dict(node, &pre),
        config: pre,
    };
    let rc = RenderCtx::new(ws.scope.clone(), facts, false);
    let result = render(&ws.env, &rc, &node.file.original_file_path, &node.raw_code);
    let mut rec = rc.take_recording();
    if result.is_err() {
        crate::parse::static_refs::complete(&node.raw_code, &mut rec.refs, &mut rec.sources);
    }
    let pre_tags = tags_of(&node_config(ws, node, &rec.config_calls, false));
    let config = node_config(ws, node, &rec.config_calls, true);
    let tags = merge_tags(pre_tags, &config, node.patch.as_ref());
    if result.is_ok() {
        hook_macros(ws, node, &rc, &config, &mut rec);
    }
    ParseRender {
        rec,
        error: result.err().map(|e| (e.line, e.message)),
        config,
        tags,
    }
}

/// dbt renders a node's hooks at parse time (`capture_macros=True`): the macros they call
/// become depends_on.macros of the node.
fn hook_macros(
    ws: &Workspace,
    node: &ParsedNode,
    rc: &Arc<RenderCtx>,
    config: &Map<String, Value>,
    rec: &mut crate::jinja::context::Recording,
) {
    for key in ["pre-hook", "post-hook"] {
        let Some(Value::Array(hooks)) = config.get(key) else {
            continue;
        };
        for h in hooks {
            let sql = match h {
                Value::String(s) => s.as_str(),
                Value::Object(m) => m.get("sql").and_then(Value::as_str).unwrap_or_default(),
                _ => "",
            };
            if !sql.contains("{{") && !sql.contains("{%") {
                continue;
            }
            // the hook's output and errors do not matter here, only the calls it makes
            let _ = render(&ws.env, rc, &node.file.original_file_path, sql);
            for m in rc.take_recording().macros {
                if !rec.macros.contains(&m) {
                    rec.macros.push(m);
                }
            }
        }
    }
}

fn tags_of(config: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(Value::Array(items)) = config.get("tags") {
        for t in items.iter().filter_map(Value::as_str) {
            if !out.iter().any(|x| x == t) {
                out.push(t.to_string());
            }
        }
    }
    out
}

/// Node tags grow like dbt's: tags known at SQL parse time first, then tags added by the patch.
fn merge_tags(
    mut tags: Vec<String>,
    config: &Map<String, Value>,
    patch: Option<&NodePatch>,
) -> Vec<String> {
    let extra = patch.map(|p| p.tags.clone()).unwrap_or_default();
    for t in tags_of(config).into_iter().chain(extra) {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags
}

/// dbt's `create_from_node`: default policy, then the ROOT project's `quoting:` (the runtime
/// config's, for package models too), then the node's `quoting` config.
fn quote_policy(ws: &Workspace, node_cfg: &Map<String, Value>) -> [bool; 3] {
    let project = ws.projects.first().map(|p| &p.quoting);
    let default = ws.scope.adapter.spec().quote_policy;
    let get = |i: usize, k: &str| {
        node_cfg
            .get("quoting")
            .and_then(|q| q.get(k))
            .and_then(Value::as_bool)
            .or_else(|| project.and_then(|q| q.get(k)).and_then(Value::as_bool))
            .unwrap_or(default[i])
    };
    [get(0, "database"), get(1, "schema"), get(2, "identifier")]
}

/// Resolves database, schema and alias for every node via the generate_*_name macros,
/// reusing cached answers when the node's config and the workspace are unchanged.
pub fn name_relations(
    ws: &Workspace,
    nodes: &mut [ParsedNode],
    opts: &ParseOptions,
    cache: &mut Cache,
) {
    let previous = std::mem::take(&mut cache.naming);
    let fresh: Vec<(u64, cache::Naming)> = nodes
        .par_iter_mut()
        .map(|node| name_node(ws, node, opts, &previous))
        .collect();
    cache.naming = fresh.into_iter().collect();
}

/// Names one node (taken from `previous` when its key is there).
pub fn name_node(
    ws: &Workspace,
    node: &mut ParsedNode,
    opts: &ParseOptions,
    previous: &HashMap<u64, cache::Naming>,
) -> (u64, cache::Naming) {
    let key = cache::fingerprint(&(ws.fingerprint, &node.unique_id, node.parse_key));
    let named = match previous.get(&key) {
        Some(hit) => hit.clone(),
        None => name_one(ws, node, opts),
    };
    apply_naming(ws, node, opts, &named);
    (key, named)
}

fn name_one(ws: &Workspace, node: &ParsedNode, opts: &ParseOptions) -> cache::Naming {
    let cfg = &node.config;
    let get = |k: &str| cfg.get(k).cloned().unwrap_or(Value::Null);
    if node.resource_type == "snapshot" {
        let text =
            |k: &str, default: &str| get(k).as_str().map_or(default.to_string(), str::to_string);
        return Ok((
            text("target_database", &opts.target_database),
            text("target_schema", &opts.target_schema),
            text("alias", &node.name),
        ));
    }
    let mut facts = NodeFacts {
        unique_id: node.unique_id.clone(),
        name: node.name.clone(),
        package: node.package.clone(),
        resource_type: node.resource_type.to_string(),
        this: None,
        model: model_dict(node, cfg),
        config: cfg.clone(),
    };
    name_via_macros(ws, &mut facts, &get)
}

fn apply_naming(ws: &Workspace, node: &mut ParsedNode, opts: &ParseOptions, named: &cache::Naming) {
    match named {
        Ok((db, schema, alias)) => {
            let quote = quote_policy(ws, &node.config);
            node.relation = Some(Relation::table(ws.scope.adapter, db, schema, alias, quote));
            node.database = Some(db.clone());
            node.schema = schema.clone();
            node.alias = alias.clone();
        }
        Err(e) => {
            node.parse_error.get_or_insert((e.line, e.message.clone()));
            node.schema = opts.target_schema.clone();
            node.alias = node.name.clone();
            node.database = Some(opts.target_database.clone());
        }
    }
}

fn name_via_macros(
    ws: &Workspace,
    facts: &mut NodeFacts,
    get: &dyn Fn(&str) -> Value,
) -> Result<(String, String, String), jinja::RenderError> {
    let db = naming::generate(&ws.env, &ws.scope, facts, "database", &get("database"))?;
    set_model_field(facts, "database", &db);
    let schema = naming::generate(&ws.env, &ws.scope, facts, "schema", &get("schema"))?;
    set_model_field(facts, "schema", &schema);
    let alias = naming::generate(&ws.env, &ws.scope, facts, "alias", &get("alias"))?;
    Ok((db, schema, alias))
}

fn set_model_field(facts: &mut NodeFacts, key: &str, value: &str) {
    if let Value::Object(m) = &mut facts.model {
        m.insert(key.to_string(), Value::from(value));
    }
}

/// Source lookup by (source name, table name).
pub type SourceIndex = HashMap<(String, String), Vec<SourceTarget>>;

/// Builds source catalog entries and the scope's source lookup.
/// Source descriptions are rendered through `memo` (which records the macros they call).
pub fn build_sources(
    ws: &Workspace,
    opts: &ParseOptions,
    memo: &mut cache::Descriptions,
) -> (Vec<crate::ir::catalog::Source>, SourceIndex) {
    let mut out = Vec::new();
    let mut index: SourceIndex = HashMap::new();
    for d in &ws.source_defs {
        let project_idx = ws
            .projects
            .iter()
            .position(|p| p.name == d.package)
            .unwrap_or(0);
        let mut fqn = vec![d.package.clone()];
        fqn.extend(source_dirs(&d.file));
        fqn.push(d.source_name.clone());
        fqn.push(d.name.clone());
        let config = source_config(ws, d, project_idx, &fqn);
        let enabled = config
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let database = d
            .database
            .clone()
            .unwrap_or_else(|| opts.target_database.clone());
        let default = opts.adapter.spec().quote_policy;
        let q = |i: usize, k: &str| {
            d.quoting
                .get(k)
                .and_then(Value::as_bool)
                .unwrap_or(default[i])
        };
        let relation = Relation::table(
            opts.adapter,
            &database,
            &d.schema,
            &d.identifier,
            [q(0, "database"), q(1, "schema"), q(2, "identifier")],
        );
        let unique_id = format!("source.{}.{}.{}", d.package, d.source_name, d.name);
        if enabled {
            index
                .entry((d.source_name.clone(), d.name.clone()))
                .or_default()
                .push(SourceTarget {
                    unique_id: unique_id.clone(),
                    package: d.package.clone(),
                    relation: relation.clone(),
                });
        }
        out.push(crate::ir::catalog::Source {
            unique_id,
            package_name: d.package.clone(),
            source_name: d.source_name.clone(),
            name: d.name.clone(),
            identifier: d.identifier.clone(),
            database: Some(database),
            schema: d.schema.clone(),
            relation_name: relation.render(),
            loader: d.loader.clone(),
            loaded_at_field: d.loaded_at_field.clone(),
            tags: d.tags.clone(),
            meta: d.meta.clone(),
            source_meta: d.source_meta.clone(),
            // dbt renders `doc()` / Jinja in source, table and column descriptions
            source_description: render_description(ws, &d.package, &d.source_description, memo),
            description: render_description(ws, &d.package, &d.description, memo),
            enabled,
            original_file_path: d.file.clone(),
            fqn,
            columns: d
                .columns
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c.description = render_description(ws, &d.package, &c.description, memo);
                    c
                })
                .collect(),
            quoting: d.quoting.clone(),
            config,
        });
    }
    (out, index)
}

fn source_dirs(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.split('/').map(str::to_string).collect();
    parts.pop();
    if !parts.is_empty() {
        parts.remove(0);
    }
    parts
}

fn source_config(
    ws: &Workspace,
    d: &SourceTableDef,
    project_idx: usize,
    fqn: &[String],
) -> Map<String, Value> {
    let own_tree = ws
        .projects
        .get(project_idx)
        .and_then(|p| p.trees.get("sources"))
        .unwrap_or(&Value::Null);
    let root_tree = if project_idx != 0 {
        ws.projects.first().and_then(|p| p.trees.get("sources"))
    } else {
        None
    };
    let mut base = Map::new();
    base.insert("enabled".into(), Value::Bool(true));
    config::calculate(
        base,
        &ConfigSources {
            own_tree,
            root_tree,
            fqn,
            patch: Some(&d.config),
            sql_calls: &[],
        },
    )
}

/// Renders `{{ doc(...) }}` (and other Jinja) inside a description, memoised in `memo`.
pub fn render_description(
    ws: &Workspace,
    package: &str,
    text: &str,
    memo: &mut cache::Descriptions,
) -> String {
    if !text.contains("{{") && !text.contains("{%") {
        return text.to_string();
    }
    let key = cache::fingerprint(&(ws.fingerprint, package, text));
    if let Some(hit) = memo.rendered.get(&key) {
        return hit.clone();
    }
    let facts = NodeFacts {
        package: package.to_string(),
        ..NodeFacts::default()
    };
    let rc = RenderCtx::new(ws.scope.clone(), facts, false);
    let rendered = render(&ws.env, &rc, "description", text).unwrap_or_else(|_| text.to_string());
    memo.invoked.extend(rc.take_recording().invoked);
    memo.rendered.insert(key, rendered.clone());
    rendered
}

/// Project names by index, for callers that need the root project's settings.
pub fn project_names(projects: &[Project]) -> Vec<String> {
    projects.iter().map(|p| p.name.clone()).collect()
}
