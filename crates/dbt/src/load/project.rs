//! dbt_project.yml loading for the root project and every installed package. Keeps the raw
//! config trees (`models:`, `seeds:`, ...) so config precedence can be computed per node later.

use crate::ir::error::ProjectError;
use crate::load::safe_fs::Checkout;
use crate::yaml;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// One dbt project: the root or a package under `dbt_packages/`.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    /// absolute directory of the project
    pub dir: PathBuf,
    pub model_paths: Vec<String>,
    pub macro_paths: Vec<String>,
    pub seed_paths: Vec<String>,
    pub snapshot_paths: Vec<String>,
    pub analysis_paths: Vec<String>,
    pub test_paths: Vec<String>,
    pub docs_paths: Vec<String>,
    pub packages_install_path: String,
    pub vars: Map<String, Value>,
    /// `models:`, `seeds:`, `snapshots:`, `sources:`, `tests:` config trees
    pub configs: Map<String, Value>,
    /// `dispatch:` search orders by macro namespace
    pub dispatch: Vec<(String, Vec<String>)>,
    /// `quoting:` at project level
    pub quoting: Map<String, Value>,
    /// `version:` as written (a string, or a number YAML read as one)
    pub version: Option<String>,
}

/// Loads `dir/dbt_project.yml`. `dir` must already be confined to the checkout.
pub fn load_project(checkout: &Checkout, dir: &Path) -> Result<Project, ProjectError> {
    let file = dir.join("dbt_project.yml");
    if !file.is_file() {
        return Err(ProjectError::NotADbtProject(dir.to_path_buf()));
    }
    let text = checkout.read(&file)?;
    let display = file.display().to_string();
    let doc = yaml::load(&text).map_err(|e| ProjectError::Yaml {
        file: display.clone(),
        line: e.line,
        message: e.message,
    })?;
    let Value::Object(map) = doc else {
        return Err(invalid(&display, "top level must be a mapping"));
    };
    let name = match map.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid(&display, "missing `name`")),
    };
    let paths = |key: &str, default: &str| string_list(map.get(key), default);
    // dbt 1.x still reads the pre-1.0 names when the new one is absent
    let renamed = |key: &str, old: &str, default: &str| {
        string_list(map.get(key).or_else(|| map.get(old)), default)
    };
    let model_paths = renamed("model-paths", "source-paths", "models");
    let macro_paths = paths("macro-paths", "macros");
    let seed_paths = renamed("seed-paths", "data-paths", "seeds");
    let snapshot_paths = paths("snapshot-paths", "snapshots");
    let analysis_paths = paths("analysis-paths", "analyses");
    let test_paths = paths("test-paths", "tests");
    let docs_paths = match map.get("docs-paths") {
        Some(v) => string_list(Some(v), ""),
        None => [
            &model_paths,
            &seed_paths,
            &snapshot_paths,
            &analysis_paths,
            &macro_paths,
            &test_paths,
        ]
        .iter()
        .flat_map(|v| v.iter().cloned())
        .collect(),
    };
    let mut configs = Map::new();
    for key in [
        "models",
        "seeds",
        "snapshots",
        "sources",
        "tests",
        "analyses",
    ] {
        if let Some(v) = map.get(key) {
            configs.insert(key.to_string(), v.clone());
        }
    }
    Ok(Project {
        name,
        dir: dir.to_path_buf(),
        model_paths,
        macro_paths,
        seed_paths,
        snapshot_paths,
        analysis_paths,
        test_paths,
        docs_paths,
        packages_install_path: map
            .get("packages-install-path")
            .and_then(Value::as_str)
            .unwrap_or("dbt_packages")
            .to_string(),
        vars: as_map(map.get("vars")),
        configs,
        dispatch: parse_dispatch(map.get("dispatch")),
        quoting: as_map(map.get("quoting")),
        version: match map.get("version") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        },
    })
}

fn invalid(file: &str, message: &str) -> ProjectError {
    ProjectError::InvalidProject {
        file: file.to_string(),
        message: message.to_string(),
    }
}

fn as_map(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

fn string_list(v: Option<&Value>, default: &str) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ if default.is_empty() => Vec::new(),
        _ => vec![default.to_string()],
    }
}

fn parse_dispatch(v: Option<&Value>) -> Vec<(String, Vec<String>)> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let ns = item.get("macro_namespace")?.as_str()?.to_string();
            Some((ns, string_list(item.get("search_order"), "")))
        })
        .collect()
}

/// Finds installed packages: every directory with a dbt_project.yml under the root's
/// packages-install-path, sorted by directory name.
pub fn load_packages(checkout: &Checkout, root: &Project) -> (Vec<Project>, Vec<ProjectError>) {
    let mut projects = Vec::new();
    let mut errors = Vec::new();
    let dir = match checkout.join(&root.dir, &root.packages_install_path) {
        Ok(d) => d,
        Err(e) => return (projects, vec![e]),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return (projects, errors);
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    for pkg_dir in dirs {
        if let Err(e) = checkout.confine(&pkg_dir) {
            errors.push(e);
            continue;
        }
        if !pkg_dir.join("dbt_project.yml").is_file() {
            continue;
        }
        match load_project(checkout, &pkg_dir) {
            Ok(p) if p.name != root.name => projects.push(p),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    (projects, errors)
}
