//! YAML property files (`schema.yml`): model/seed/snapshot patches with columns, tests and
//! versions, and source definitions. Pure data extraction; no rendering happens here.

use crate::ir::catalog::ColumnDef;
use serde_json::{Map, Value};

/// One entry of a model's `versions:` list.
#[derive(Debug, Clone)]
pub struct VersionDef {
    /// the `v:` value as written (int, float or string)
    pub v: Value,
    pub defined_in: Option<String>,
    pub config: Map<String, Value>,
    pub columns: Vec<ColumnDef>,
}

/// A `models:` (or seeds/snapshots) entry patching a node.
#[derive(Debug, Clone)]
pub struct NodePatch {
    pub name: String,
    /// original_file_path of the YAML file
    pub file: String,
    pub package: String,
    pub description: String,
    pub config: Map<String, Value>,
    pub meta: Map<String, Value>,
    pub columns: Vec<ColumnDef>,
    pub tests: Vec<Value>,
    pub latest_version: Option<Value>,
    pub versions: Vec<VersionDef>,
}

/// One source table.
#[derive(Debug, Clone)]
pub struct SourceTableDef {
    pub source_name: String,
    pub name: String,
    pub file: String,
    pub package: String,
    pub source_description: String,
    pub description: String,
    pub database: Option<String>,
    pub schema: String,
    pub identifier: String,
    pub loader: String,
    pub loaded_at_field: Option<String>,
    pub tags: Vec<String>,
    pub meta: Map<String, Value>,
    pub source_meta: Map<String, Value>,
    pub quoting: Map<String, Value>,
    pub config: Map<String, Value>,
    pub columns: Vec<ColumnDef>,
    pub tests: Vec<Value>,
}

/// Everything one YAML file declares.
#[derive(Debug, Clone, Default)]
pub struct Properties {
    pub models: Vec<NodePatch>,
    pub seeds: Vec<NodePatch>,
    pub snapshots: Vec<NodePatch>,
    pub sources: Vec<SourceTableDef>,
    /// `sources:` entries with `overrides: <package>`, which patch a package's source
    pub source_overrides: Vec<Map<String, Value>>,
}

fn s(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn obj(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

fn list(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_array).cloned().unwrap_or_default()
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(|i| s(Some(i))).collect(),
        _ => Vec::new(),
    }
}

fn tests_of(entry: &Map<String, Value>) -> Vec<Value> {
    let mut t = list(entry.get("tests"));
    t.extend(list(entry.get("data_tests")));
    t
}

pub fn parse_columns(v: Option<&Value>) -> Vec<ColumnDef> {
    list(v)
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|c| {
            Some(ColumnDef {
                name: s(c.get("name"))?,
                description: s(c.get("description")).unwrap_or_default(),
                data_type: s(c.get("data_type")),
                meta: obj(c.get("meta")),
                tags: string_list(c.get("tags")),
                quote: c.get("quote").and_then(Value::as_bool),
                constraints: constraints(c.get("constraints")),
                tests: tests_of(c),
            })
        })
        .collect()
}

/// dbt's `ColumnLevelConstraint`s: `type` plus `name`, `expression`, `warn_unenforced` and
/// `warn_unsupported` defaults.
fn constraints(v: Option<&Value>) -> Vec<Value> {
    list(v)
        .iter()
        .filter_map(Value::as_object)
        .map(|c| {
            let mut out = Map::new();
            out.insert("type".into(), c.get("type").cloned().unwrap_or(Value::Null));
            for (key, default) in [
                ("name", Value::Null),
                ("expression", Value::Null),
                ("warn_unenforced", Value::Bool(true)),
                ("warn_unsupported", Value::Bool(true)),
            ] {
                out.insert(key.into(), c.get(key).cloned().unwrap_or(default));
            }
            Value::Object(out)
        })
        .collect()
}

fn parse_patch(entry: &Map<String, Value>, file: &str, package: &str) -> Option<NodePatch> {
    let versions = list(entry.get("versions"))
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|v| {
            Some(VersionDef {
                v: v.get("v")?.clone(),
                defined_in: s(v.get("defined_in")),
                config: obj(v.get("config")),
                columns: Vec::new(),
            })
            .map(|mut def| {
                def.columns = parse_columns(v.get("columns"));
                def
            })
        })
        .collect();
    Some(NodePatch {
        name: s(entry.get("name"))?,
        file: file.to_string(),
        package: package.to_string(),
        description: s(entry.get("description")).unwrap_or_default(),
        config: patch_config(entry),
        meta: obj(entry.get("meta")),
        columns: parse_columns(entry.get("columns")),
        tests: tests_of(entry),
        latest_version: entry.get("latest_version").cloned(),
        versions,
    })
}

/// A patch's `config:` plus the top-level `access:`, `group:` and `docs:` properties, which
/// dbt moves into the config (a value inside `config:` wins).
fn patch_config(entry: &Map<String, Value>) -> Map<String, Value> {
    let mut config = obj(entry.get("config"));
    for key in ["access", "group", "docs"] {
        if let Some(v) = entry.get(key).filter(|v| !v.is_null()) {
            config.entry(key).or_insert_with(|| v.clone());
        }
    }
    config
}

/// Raw version columns (with `include`/`exclude`) for a version entry, read separately because
/// `parse_columns` drops entries without a name.
pub fn version_include_exclude(
    doc: &Value,
    model: &str,
    v: &Value,
) -> Option<(Value, Vec<String>)> {
    let models = doc.get("models")?.as_array()?;
    let entry = models
        .iter()
        .find(|m| m.get("name").and_then(Value::as_str) == Some(model))?;
    let version = entry
        .get("versions")?
        .as_array()?
        .iter()
        .find(|x| x.get("v") == Some(v))?;
    let cols = version.get("columns")?.as_array()?;
    let spec = cols.iter().find(|c| c.get("include").is_some())?;
    Some((
        spec.get("include").cloned().unwrap_or(Value::Null),
        string_list(spec.get("exclude")),
    ))
}

fn parse_sources(entry: &Map<String, Value>, file: &str, package: &str) -> Vec<SourceTableDef> {
    let Some(source_name) = s(entry.get("name")) else {
        return Vec::new();
    };
    let source_quoting = obj(entry.get("quoting"));
    let source_config = obj(entry.get("config"));
    list(entry.get("tables"))
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|t| {
            let name = s(t.get("name"))?;
            let mut quoting = source_quoting.clone();
            quoting.extend(obj(t.get("quoting")));
            let mut config = source_config.clone();
            config.extend(obj(t.get("config")));
            let mut tags = string_list(entry.get("tags"));
            for tag in string_list(t.get("tags")) {
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            tags.sort();
            Some(SourceTableDef {
                source_name: source_name.clone(),
                identifier: s(t.get("identifier")).unwrap_or_else(|| name.clone()),
                name,
                file: file.to_string(),
                package: package.to_string(),
                source_description: s(entry.get("description")).unwrap_or_default(),
                description: s(t.get("description")).unwrap_or_default(),
                database: s(entry.get("database")).or_else(|| s(entry.get("catalog"))),
                schema: s(entry.get("schema")).unwrap_or_else(|| source_name.clone()),
                loader: s(entry.get("loader")).unwrap_or_default(),
                loaded_at_field: s(t.get("loaded_at_field"))
                    .or_else(|| s(entry.get("loaded_at_field"))),
                tags,
                meta: obj(t.get("meta")),
                source_meta: obj(entry.get("meta")),
                quoting,
                config,
                columns: parse_columns(t.get("columns")),
                tests: tests_of(t),
            })
        })
        .collect()
}

/// Extracts everything a property file declares.
pub fn parse_properties(doc: &Value, file: &str, package: &str) -> Properties {
    let patches = |key: &str| -> Vec<NodePatch> {
        list(doc.get(key))
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|e| parse_patch(e, file, package))
            .collect()
    };
    Properties {
        models: patches("models"),
        seeds: patches("seeds"),
        snapshots: patches("snapshots"),
        sources: list(doc.get("sources"))
            .iter()
            .filter_map(Value::as_object)
            .filter(|e| !e.contains_key("overrides"))
            .flat_map(|e| parse_sources(e, file, package))
            .collect(),
        source_overrides: list(doc.get("sources"))
            .iter()
            .filter_map(Value::as_object)
            .filter(|e| e.contains_key("overrides"))
            .cloned()
            .collect(),
    }
}

/// Applies a root `sources:` entry with `overrides: <package>` to that package's source:
/// source-level properties given in the override replace the package's, and listed tables
/// replace the matching tables' properties.
pub fn apply_source_override(defs: &mut [SourceTableDef], entry: &Map<String, Value>) {
    let (Some(package), Some(name)) = (s(entry.get("overrides")), s(entry.get("name"))) else {
        return;
    };
    let listed = list(entry.get("tables"));
    let tables: Vec<&Map<String, Value>> = listed.iter().filter_map(Value::as_object).collect();
    for d in defs
        .iter_mut()
        .filter(|d| d.package == package && d.source_name == name)
    {
        override_source_level(d, entry);
        if let Some(t) = tables
            .iter()
            .find(|t| s(t.get("name")).as_deref() == Some(&d.name))
        {
            override_table_level(d, t);
        }
    }
}

fn override_source_level(d: &mut SourceTableDef, e: &Map<String, Value>) {
    if let Some(v) = s(e.get("schema")) {
        d.schema = v;
    }
    if let Some(v) = s(e.get("database")).or_else(|| s(e.get("catalog"))) {
        d.database = Some(v);
    }
    if let Some(v) = s(e.get("loader")) {
        d.loader = v;
    }
    if let Some(v) = s(e.get("description")) {
        d.source_description = v;
    }
    if e.contains_key("meta") {
        d.source_meta = obj(e.get("meta"));
    }
    if let Some(v) = s(e.get("loaded_at_field")) {
        d.loaded_at_field = Some(v);
    }
    d.quoting.extend(obj(e.get("quoting")));
    d.config.extend(obj(e.get("config")));
}

fn override_table_level(d: &mut SourceTableDef, t: &Map<String, Value>) {
    if let Some(v) = s(t.get("identifier")) {
        d.identifier = v;
    }
    if let Some(v) = s(t.get("description")) {
        d.description = v;
    }
    if t.contains_key("meta") {
        d.meta = obj(t.get("meta"));
    }
    if let Some(v) = s(t.get("loaded_at_field")) {
        d.loaded_at_field = Some(v);
    }
    if t.contains_key("columns") {
        d.columns = parse_columns(t.get("columns"));
    }
    if t.contains_key("tests") || t.contains_key("data_tests") {
        d.tests = tests_of(t);
    }
    d.quoting.extend(obj(t.get("quoting")));
    d.config.extend(obj(t.get("config")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_models_sources_and_versions() {
        let doc = crate::yaml::load(
            "models:\n  - name: m\n    latest_version: 2\n    columns:\n      - name: a\n        tests: [unique]\n    versions:\n      - v: 1\n        columns:\n          - include: all\n            exclude: [a]\n      - v: 2\nsources:\n  - name: s\n    tables:\n      - name: t\n        identifier: real_t\n",
        )
        .unwrap();
        let p = parse_properties(&doc, "models/x.yml", "pkg");
        assert_eq!(p.models[0].versions.len(), 2);
        assert_eq!(p.models[0].columns[0].tests.len(), 1);
        assert_eq!(p.sources[0].identifier, "real_t");
        assert_eq!(p.sources[0].schema, "s");
        let (inc, exc) = version_include_exclude(&doc, "m", &Value::from(1)).unwrap();
        assert_eq!(inc, Value::from("all"));
        assert_eq!(exc, vec!["a".to_string()]);
    }
}
