//! A macro edit applied in place: the edited files' macros swapped into a new workspace,
//! scope and Jinja environment (the YAML-derived parts kept), reporting which macros changed
//! so the update re-renders only their callers; or `None` when the edit is broader.

use crate::incremental::cache::Cache;
use crate::incremental::State;
use crate::ir::error::NodeError;
use crate::ir::options::ParseOptions;
use crate::jinja::scope::{MacroDef, Scope, DBT_PACKAGE};
use crate::jinja::{describe, extract_blocks};
use crate::load::{FileKind, Loaded, SourceFile};
use crate::parse::workspace::{workspace_errors, workspace_fingerprint};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Swaps in the edited macro files' macros (new workspace, scope and Jinja environment, with
/// the YAML-derived parts kept) and returns the unique ids of the macros that changed.
/// `None` when the edit is broader than new macro bodies: macros or docs blocks added,
/// removed or renamed, a file that no longer extracts, a macro defined in two files, or a
/// changed macro that relation naming, a description or a disabled node's render called.
pub(super) fn update_macros(
    state: &mut State,
    loaded: &Loaded,
    files: &[Arc<SourceFile>],
    opts: &ParseOptions,
    cache: &mut Cache,
) -> Option<BTreeSet<String>> {
    let old_ws = state.ws.clone();
    if naming_calls_user_macros(&old_ws.scope) {
        return None;
    }
    let mut macros = old_ws.scope.macros.clone();
    let mut infos = old_ws.macro_infos.clone();
    let mut changed: Vec<Arc<MacroDef>> = Vec::new();
    for f in files {
        let package = &loaded.projects.get(f.project)?.name;
        let old = state.files.iter().find(|o| {
            o.kind == FileKind::Macro
                && o.project == f.project
                && o.original_file_path == f.original_file_path
        })?;
        let before = extract_blocks(package, &old.original_file_path, &old.text).ok()?;
        let after = extract_blocks(package, &f.original_file_path, &f.text).ok()?;
        if format!("{:?}", before.docs) != format!("{:?}", after.docs) {
            return None;
        }
        let ids = |defs: &[MacroDef]| {
            let mut v: Vec<String> = defs.iter().map(|m| m.unique_id.clone()).collect();
            v.sort_unstable();
            v
        };
        if ids(&before.macros) != ids(&after.macros) {
            return None;
        }
        for m in after.macros {
            let current = macros.get(&m.package, &m.name)?;
            if current.original_file_path != m.original_file_path {
                return None;
            }
            if format!("{:?}", **current) == format!("{m:?}") {
                continue;
            }
            for info in infos.iter_mut().filter(|i| {
                i.unique_id == m.unique_id && i.original_file_path == m.original_file_path
            }) {
                info.line = m.line;
            }
            let m = Arc::new(m);
            changed.push(m.clone());
            macros
                .by_package
                .entry(m.package.clone())
                .or_default()
                .insert(m.name.clone(), m);
        }
    }
    let changed_ids: BTreeSet<String> = changed.iter().map(|m| m.unique_id.clone()).collect();
    if changed_ids
        .iter()
        .any(|id| state.disabled_invoked.contains(id) || cache.descriptions.invoked.contains(id))
    {
        return None;
    }
    // from here on the edit is applied: update the workspace in place (it is cloned only if
    // something still shares it; the YAML-derived parts are large)
    drop(old_ws);
    cache.workspace = None;
    let fingerprint = workspace_fingerprint(loaded, opts);
    let ws = Arc::make_mut(&mut state.ws);
    ws.env_errors.retain(|e| {
        e.unique_id
            .as_ref()
            .is_none_or(|id| !changed_ids.contains(id))
    });
    for m in &changed {
        if let Err(e) = ws
            .env
            .add_template_owned(m.unique_id.clone(), m.source.clone())
        {
            ws.env.remove_template(&m.unique_id);
            ws.env_errors.push(NodeError::new(
                Some(m.unique_id.clone()),
                &m.original_file_path,
                e.line(),
                describe(&e),
            ));
        }
    }
    ws.env_errors.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    Arc::make_mut(&mut state.scope).macros = macros.clone();
    Arc::make_mut(&mut ws.scope).macros = macros;
    ws.macro_infos = infos;
    ws.errors = workspace_errors(&ws.macro_errors, &ws.property_errors, &ws.env_errors);
    ws.fingerprint = fingerprint;
    state.catalog.macros = ws
        .macro_infos
        .iter()
        .map(|m| (m.unique_id.clone(), m.clone()))
        .collect();
    cache.workspace = Some(state.ws.clone());
    // descriptions memoised under the old workspace fingerprint no longer match
    cache.descriptions.rendered.clear();
    Some(changed_ids)
}

/// Whether relation naming may render a project's own macros (an override of a
/// `generate_*_name` macro or of its dispatched implementation): naming is not traced, so
/// macro edits then take the full rebuild.
fn naming_calls_user_macros(scope: &Scope) -> bool {
    const GENERATE: [&str; 3] = [
        "generate_schema_name",
        "generate_alias_name",
        "generate_database_name",
    ];
    scope.macros.all().any(|m| {
        m.package != DBT_PACKAGE
            && GENERATE
                .iter()
                .any(|g| m.name == *g || m.name.ends_with(&format!("__{g}")))
    })
}
