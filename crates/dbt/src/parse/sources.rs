//! Source catalog entries from the YAML source definitions: fqn, config, relation and
//! rendered descriptions, plus the scope's `source()` lookup.

use crate::ir::catalog::Source;
use crate::ir::options::ParseOptions;
use crate::jinja::relation::Relation;
use crate::jinja::scope::SourceTarget;
use crate::parse::config::{self, ConfigSources};
use crate::parse::descriptions::{render_description, Descriptions};
use crate::parse::properties::SourceTableDef;
use crate::parse::Workspace;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Source lookup by (source name, table name).
pub type SourceIndex = HashMap<(String, String), Vec<SourceTarget>>;

/// Builds source catalog entries and the scope's source lookup.
/// Source descriptions are rendered through `memo` (which records the macros they call).
pub fn build_sources(
    ws: &Workspace,
    opts: &ParseOptions,
    memo: &mut Descriptions,
) -> (Vec<Source>, SourceIndex) {
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
        out.push(Source {
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
