//! A load for callers that know which files changed (git-sync knows the diff between two
//! commits): it starts from the previous load's listing and reads only the named paths,
//! instead of walking the project and stat-ing every file. Anything that could change the
//! listing itself — a file added or deleted where the project reads files, a project or
//! package file — is left to a full [`load_cached`](super::load_cached).

use super::{checksum, Changes, FileCache, Loaded, SourceFile, ALL_EXTS};
use crate::load::safe_fs::Checkout;
use std::path::{Component, Path};
use std::sync::Arc;

/// Files that decide which projects and packages there are, and where their files live.
const PROJECT_FILES: &[&str] = &[
    "dbt_project.yml",
    "packages.yml",
    "dependencies.yml",
    "package-lock.yml",
];

/// Applies the edits of `changed` (paths relative to `dir`; every other file is taken to be
/// as the previous load through `cache` read it) to that load. `None` when this cannot be
/// done without a full load: no previous load of `dir`, a path outside it, a project file,
/// or a file added or deleted under a directory the project reads.
pub fn load_changed<P: AsRef<Path>>(
    dir: &Path,
    cache: &mut FileCache,
    changed: &[P],
) -> Option<(Loaded, Changes)> {
    let checkout = Checkout::new(dir).ok()?;
    let last = cache.last.as_mut()?;
    if last.root != checkout.root() {
        return None;
    }
    let mut loaded = last.loaded.clone();
    let mut changes = Changes::default();
    for rel in changed {
        let rel = rel.as_ref();
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return None;
        }
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if PROJECT_FILES.contains(&name) {
            return None;
        }
        let abs = checkout.root().join(rel);
        let Some(&i) = last.positions.get(&abs) else {
            let read_here = last.bases.iter().any(|b| abs.starts_with(b));
            let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or_default();
            if read_here && ALL_EXTS.contains(&ext) {
                return None; // a new file (or one the last load could not read)
            }
            continue; // not a file the project reads
        };
        let old = loaded.files.get(i)?.clone();
        // deleted (or unreadable now): the listing changes, as a full load would find
        let text = checkout.read(&abs).ok()?;
        if text == old.text {
            continue;
        }
        let meta = std::fs::metadata(&abs).ok()?;
        let file = Arc::new(SourceFile {
            kind: old.kind,
            project: old.project,
            original_file_path: old.original_file_path.clone(),
            path: old.path.clone(),
            checksum: checksum(&text),
            text,
        });
        cache
            .entries
            .insert(abs, (meta.len(), meta.modified().ok(), file.clone()));
        loaded.files[i] = file;
        if !changes.modified.contains(&i) {
            changes.modified.push(i);
        }
    }
    changes.modified.sort_unstable();
    last.loaded = loaded.clone();
    Some((loaded, changes))
}
