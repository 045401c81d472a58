//! Reads every file a parse needs (macros, docs, YAML, models, seeds, snapshots) of the root
//! project and its packages, confined to the checkout and size-bounded. Per-file failures
//! become `NodeError`s; only a missing or broken dbt_project.yml stops the load.

mod changed;
pub mod project;
pub mod safe_fs;

pub use changed::load_changed;

use crate::ir::error::{relative_path, NodeError, ProjectError};
use crate::load::project::{load_packages, load_project, Project};
use crate::load::safe_fs::{Checkout, FoundFile};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Kinds of files the parser cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Macro,
    Docs,
    Properties,
    Model,
    Seed,
    Snapshot,
    /// a singular data test (`tests/**/*.sql` outside `generic/`)
    Test,
}

/// One file read from a project.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub kind: FileKind,
    /// index into `Loaded::projects`
    pub project: usize,
    /// path relative to the project dir (dbt's original_file_path)
    pub original_file_path: String,
    /// path relative to the resource path it was found under (dbt's `path`)
    pub path: String,
    pub text: String,
    /// sha256 of the stripped text (dbt's checksum)
    pub checksum: String,
}

/// Everything read from disk for one parse.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// root first, then packages
    pub projects: Vec<Project>,
    pub files: Vec<Arc<SourceFile>>,
    pub errors: Vec<NodeError>,
}

/// dbt's checksum: sha256 of the contents after Python's `str.strip()`.
pub fn checksum(text: &str) -> String {
    hex::encode(Sha256::digest(text.trim().as_bytes()))
}

/// Files read by earlier loads, keyed by absolute path, with the size and mtime they had.
#[derive(Debug, Default)]
pub struct FileCache {
    entries: HashMap<PathBuf, Stamped>,
    /// when the previous scan started; entries modified shortly before it are re-checked
    scanned_at: Option<SystemTime>,
    /// what the previous load found, for [`load_changed`]
    last: Option<Listing>,
}

/// The outcome of a load and where its files came from, so a load told which paths changed
/// can start from it without walking the project again.
#[derive(Debug)]
struct Listing {
    /// the checkout root (canonical) the paths below are under
    root: PathBuf,
    loaded: Loaded,
    /// position in `loaded.files` by absolute path
    positions: HashMap<PathBuf, usize>,
    /// every directory the load walked (absolute): a new file can only matter under one
    bases: Vec<PathBuf>,
}

/// A file with the size and mtime it had when read.
type Stamped = (u64, Option<SystemTime>, Arc<SourceFile>);

/// Files modified this close to a scan may change again without a visible mtime change
/// (coarse file-system clocks), so they are compared by content on the next scan.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// How the files of a load differ from the previous load through the same cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// indices into `Loaded::files` whose content changed
    pub modified: Vec<usize>,
    /// files were added or removed, or this is the first load
    pub structural: bool,
}

/// Loads the root project at `dir` and its installed packages.
pub fn load(dir: &Path) -> Result<(Checkout, Loaded), ProjectError> {
    load_cached(dir, &mut FileCache::default()).map(|(c, l, _)| (c, l))
}

/// Like [`load`], but files whose size and mtime are unchanged are taken from `cache`; also
/// reports which files changed since the previous load through `cache`.
pub fn load_cached(
    dir: &Path,
    cache: &mut FileCache,
) -> Result<(Checkout, Loaded, Changes), ProjectError> {
    if !dir.join("dbt_project.yml").is_file() {
        return Err(ProjectError::NotADbtProject(dir.to_path_buf()));
    }
    let checkout = Checkout::new(dir)?;
    let root = load_project(&checkout, checkout.root())?;
    let (packages, pkg_errors) = load_packages(&checkout, &root);
    let mut errors: Vec<NodeError> = pkg_errors
        .into_iter()
        .map(|e| file_error(&checkout, e))
        .collect();
    let mut projects = vec![root];
    projects.extend(packages);
    cache.last = None;
    let mut found = Vec::new();
    let mut bases = Vec::new();
    for (idx, project) in projects.iter().enumerate() {
        list_project_files(&checkout, idx, project, &mut found, &mut errors, &mut bases);
    }
    let previous = std::mem::take(&mut cache.entries);
    let trusted_before = cache
        .scanned_at
        .replace(SystemTime::now())
        .and_then(|t| t.checked_sub(RACY_WINDOW));
    let results: Vec<Result<Scanned, NodeError>> = found
        .into_par_iter()
        .map(|f| {
            let prev = previous.get(&f.abs);
            scan_one(&checkout, f, prev, trusted_before)
        })
        .collect();
    let mut files = Vec::with_capacity(results.len());
    let mut positions = HashMap::with_capacity(results.len());
    let mut changes = Changes {
        modified: Vec::new(),
        structural: previous.is_empty(),
    };
    for r in results {
        match r {
            Ok(s) => {
                match s.state {
                    FileState::Same => {}
                    FileState::Modified => changes.modified.push(files.len()),
                    FileState::New => changes.structural = true,
                }
                positions.insert(s.abs.clone(), files.len());
                files.push(s.stamped.2.clone());
                cache.entries.insert(s.abs, s.stamped);
            }
            Err(e) => errors.push(e),
        }
    }
    if cache.entries.len() != previous.len() {
        changes.structural = true;
    }
    let loaded = Loaded {
        projects,
        files,
        errors,
    };
    cache.last = Some(Listing {
        root: checkout.root().to_path_buf(),
        loaded: loaded.clone(),
        positions,
        bases,
    });
    Ok((checkout, loaded, changes))
}

/// How one file compares with its cached version.
enum FileState {
    Same,
    Modified,
    New,
}

struct Scanned {
    abs: PathBuf,
    stamped: Stamped,
    state: FileState,
}

/// Stats one file; reads it only when it is new, its size or mtime moved, or its mtime is
/// too close to the previous scan to be trusted.
fn scan_one(
    checkout: &Checkout,
    f: Found,
    previous: Option<&Stamped>,
    trusted_before: Option<SystemTime>,
) -> Result<Scanned, NodeError> {
    let (len, mtime) = (f.len, f.mtime);
    let abs = f.abs.clone();
    let Some((l, t, hit)) = previous.filter(|p| p.2.kind == f.kind) else {
        let sf = Arc::new(read_one(checkout, f)?);
        return Ok(Scanned {
            abs,
            stamped: (len, mtime, sf),
            state: FileState::New,
        });
    };
    let trusted = matches!((mtime, trusted_before), (Some(m), Some(b)) if m < b);
    if *l == len && *t == mtime && trusted {
        return Ok(Scanned {
            abs,
            stamped: (len, mtime, hit.clone()),
            state: FileState::Same,
        });
    }
    let sf = read_one(checkout, f)?;
    let (sf, state) = if sf.text == hit.text {
        (hit.clone(), FileState::Same)
    } else {
        (Arc::new(sf), FileState::Modified)
    };
    Ok(Scanned {
        abs,
        stamped: (len, mtime, sf),
        state,
    })
}

/// A per-file problem as a `NodeError` naming the file relative to the checkout, with no
/// absolute path in the message.
fn file_error(checkout: &Checkout, e: ProjectError) -> NodeError {
    let root = checkout.root();
    let file = match &e {
        ProjectError::InvalidProject { file, .. } | ProjectError::Yaml { file, .. } => {
            crate::ir::error::scrub_root(file, root)
        }
        other => other
            .path()
            .and_then(|p| relative_path(root, p))
            .unwrap_or_default(),
    };
    NodeError::new(None, &file, None, e.relative_to(root).to_string())
}

struct Found {
    kind: FileKind,
    project: usize,
    abs: std::path::PathBuf,
    original_file_path: String,
    path: String,
    len: u64,
    mtime: Option<SystemTime>,
}

fn list_project_files(
    checkout: &Checkout,
    idx: usize,
    project: &Project,
    out: &mut Vec<Found>,
    errors: &mut Vec<NodeError>,
    bases: &mut Vec<PathBuf>,
) {
    let generic: Vec<String> = project
        .test_paths
        .iter()
        .map(|p| format!("{}/generic", p.trim_end_matches('/')))
        .collect();
    let groups: [(&[String], FileKind, &[&str]); 8] = [
        (&project.macro_paths, FileKind::Macro, &["sql"]),
        (&generic, FileKind::Macro, &["sql"]),
        (&project.test_paths, FileKind::Test, &["sql"]),
        (&project.docs_paths, FileKind::Docs, &["md"]),
        (&project.model_paths, FileKind::Model, &["sql"]),
        (&project.seed_paths, FileKind::Seed, &["csv"]),
        (&project.snapshot_paths, FileKind::Snapshot, &["sql"]),
        (&yaml_dirs(project), FileKind::Properties, &["yml", "yaml"]),
    ];
    let mut seen_props = std::collections::HashSet::new();
    let mut walked: HashMap<PathBuf, Vec<FoundFile>> = HashMap::new();
    for (dirs, kind, exts) in groups {
        for dir in dirs {
            let base = match checkout.join(&project.dir, dir) {
                Ok(b) => b,
                Err(e) => {
                    errors.push(file_error(checkout, e));
                    continue;
                }
            };
            let listed = walked.entry(base.clone()).or_insert_with(|| {
                bases.push(base.clone());
                let (files, walk_errors) = checkout.walk(&base, ALL_EXTS);
                errors.extend(walk_errors.into_iter().map(|e| file_error(checkout, e)));
                files
            });
            let files = listed.iter().filter(|f| has_any_ext(&f.rel, exts)).cloned();
            for f in files {
                let original = format!("{}/{}", dir.trim_end_matches('/'), f.rel);
                if kind == FileKind::Properties && !seen_props.insert(original.clone()) {
                    continue;
                }
                if kind == FileKind::Test && f.rel.starts_with("generic/") {
                    continue;
                }
                out.push(Found {
                    kind,
                    project: idx,
                    abs: f.abs,
                    original_file_path: original,
                    path: f.rel,
                    len: f.len,
                    mtime: f.mtime,
                });
            }
        }
    }
}

/// Every extension any file group uses: a directory is walked once for all groups.
const ALL_EXTS: &[&str] = &["sql", "md", "csv", "yml", "yaml"];

fn has_any_ext(name: &str, exts: &[&str]) -> bool {
    exts.iter().any(|e| {
        name.len() > e.len() + 1
            && name.ends_with(e)
            && name.as_bytes()[name.len() - e.len() - 1] == b'.'
    })
}

/// dbt reads property files from model, seed, snapshot, analysis and macro paths.
fn yaml_dirs(p: &Project) -> Vec<String> {
    let mut dirs = Vec::new();
    for d in p
        .model_paths
        .iter()
        .chain(&p.seed_paths)
        .chain(&p.snapshot_paths)
        .chain(&p.analysis_paths)
        .chain(&p.macro_paths)
    {
        if !dirs.contains(d) {
            dirs.push(d.clone());
        }
    }
    dirs
}

fn read_one(checkout: &Checkout, f: Found) -> Result<SourceFile, NodeError> {
    let text = checkout.read(&f.abs).map_err(|e| {
        let message = e.relative_to(checkout.root()).to_string();
        NodeError::new(None, &f.original_file_path, None, message)
    })?;
    Ok(SourceFile {
        kind: f.kind,
        project: f.project,
        checksum: checksum(&text),
        original_file_path: f.original_file_path,
        path: f.path,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_strips_like_python() {
        assert_eq!(checksum("  select 1\n\n"), checksum("select 1"));
    }

    #[test]
    fn missing_project_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(dir.path()),
            Err(ProjectError::NotADbtProject(_))
        ));
    }
}
