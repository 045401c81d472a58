//! Project-wide parse inputs: every project's rendered config trees, macros and docs, property
//! (YAML) files, and the Jinja environment and scope built from them. Everything a node's
//! parse or compile reads besides its own file lives in the `Workspace`, under one fingerprint.

use crate::ir::catalog::MacroInfo;
use crate::ir::error::NodeError;
use crate::ir::fingerprint::fingerprint;
use crate::ir::options::ParseOptions;
use crate::jinja::scope::{MacroIndex, Scope};
use crate::jinja::{self, build_env, extract_blocks};
use crate::load::{FileKind, Loaded, SourceFile};
use crate::parse::project_render::{render_properties, render_tree};
use crate::parse::properties::{
    apply_source_override, parse_properties, version_include_exclude, NodePatch, Properties,
    SourceTableDef,
};
use crate::parse::{test_macro_config, version_key};
use crate::yaml;
use minijinja::Environment;
use rayon::prelude::*;
use serde_json::{Map, Value};
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
#[derive(Clone)]
pub struct Workspace {
    pub projects: Vec<ProjectTrees>,
    pub root: String,
    pub scope: Arc<Scope>,
    pub env: Environment<'static>,
    pub macro_infos: Vec<MacroInfo>,
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
        package_versions: loaded
            .projects
            .iter()
            .filter_map(|p| Some((p.name.clone(), p.version.clone()?)))
            .collect(),
    };
    let (env, compile_errors) = build_env(&scope.macros);
    let mut scope = scope;
    scope.test_configs = test_macro_config::collect(&env, &scope);
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
    fingerprint(&(parts, projects, format!("{opts:?}")))
}

fn collect_macros(
    loaded: &Loaded,
    opts: &ParseOptions,
    errors: &mut Vec<NodeError>,
) -> (MacroIndex, Docs, Vec<MacroInfo>) {
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
                    infos.push(MacroInfo {
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
    // dbt strips a file's text before reading it (so a block scalar ending the file loses its
    // final newline); line numbers still count the stripped leading lines
    let text = f.text.trim_start();
    let skipped_lines = f.text[..f.text.len() - text.len()].matches('\n').count();
    let doc = yaml::load(text.trim_end()).map_err(|e| {
        NodeError::new(
            None,
            &f.original_file_path,
            Some(e.line + skipped_lines),
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
