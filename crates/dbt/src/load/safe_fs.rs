//! Bounded, checkout-confined file access. Every file the engine reads goes through here so a
//! hostile checkout cannot make us follow a symlink out of the tree, walk outside the project,
//! or load an unbounded file into memory.

use crate::ir::error::ProjectError;
use rayon::prelude::*;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// Largest file the engine will read.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// A file found while walking a directory, with its path relative to the walk's base.
#[derive(Debug, Clone)]
pub struct FoundFile {
    pub abs: PathBuf,
    /// relative to the directory that was walked, with `/` separators
    pub rel: String,
    /// size in bytes when listed
    pub len: u64,
    /// modification time when listed
    pub mtime: Option<SystemTime>,
}

/// The confinement root: canonical path of the checkout.
#[derive(Debug, Clone)]
pub struct Checkout {
    root: PathBuf,
}

impl Checkout {
    pub fn new(dir: &Path) -> Result<Self, ProjectError> {
        let root = dir.canonicalize().map_err(|source| ProjectError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Joins a project-relative path (from dbt_project.yml) and refuses escapes like `../x`.
    pub fn join(&self, base: &Path, rel: &str) -> Result<PathBuf, ProjectError> {
        let rel_path = Path::new(rel);
        if rel_path.is_absolute()
            || rel_path
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
        {
            return Err(ProjectError::OutsideCheckout(base.join(rel)));
        }
        let joined = base.join(rel_path);
        self.confine(&joined)?;
        Ok(joined)
    }

    /// Checks that `path` (if it exists) resolves inside the checkout.
    pub fn confine(&self, path: &Path) -> Result<(), ProjectError> {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(_) => return Ok(()),
        };
        let canon = path.canonicalize().map_err(|source| ProjectError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !canon.starts_with(&self.root) {
            if meta.file_type().is_symlink() {
                return Err(ProjectError::SymlinkEscape(path.to_path_buf()));
            }
            return Err(ProjectError::OutsideCheckout(path.to_path_buf()));
        }
        Ok(())
    }

    /// Reads a text file, refusing symlink escapes and files over [`MAX_FILE_BYTES`].
    pub fn read(&self, path: &Path) -> Result<String, ProjectError> {
        read_bounded(self, path, MAX_FILE_BYTES)
    }

    /// Recursively lists files under `dir` whose extension is in `exts`, sorted by path, with
    /// their size and mtime. Directories are read in parallel. Symlinks are never followed: a
    /// symlink inside the checkout is reported as an error only when it escapes, otherwise it
    /// is skipped like dbt skips unreadable entries.
    pub fn walk(&self, dir: &Path, exts: &[&str]) -> (Vec<FoundFile>, Vec<ProjectError>) {
        let (mut files, errors) = self.walk_dir(dir.to_path_buf(), String::new(), exts);
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
        (files, errors)
    }

    fn walk_dir(
        &self,
        current: PathBuf,
        prefix: String,
        exts: &[&str],
    ) -> (Vec<FoundFile>, Vec<ProjectError>) {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        let mut subdirs = Vec::new();
        let Ok(entries) = std::fs::read_dir(&current) else {
            return (files, errors);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_symlink() {
                if let Err(e) = self.confine(&entry.path()) {
                    errors.push(e);
                }
                continue;
            }
            if ft.is_dir() {
                subdirs.push((entry.path(), rel));
            } else if ft.is_file() && has_ext(&name, exts) {
                let meta = entry.metadata().ok();
                files.push(FoundFile {
                    abs: entry.path(),
                    rel,
                    len: meta.as_ref().map_or(0, |m| m.len()),
                    mtime: meta.and_then(|m| m.modified().ok()),
                });
            }
        }
        let nested: Vec<(Vec<FoundFile>, Vec<ProjectError>)> = subdirs
            .into_par_iter()
            .map(|(path, rel)| self.walk_dir(path, rel, exts))
            .collect();
        for (f, e) in nested {
            files.extend(f);
            errors.extend(e);
        }
        (files, errors)
    }
}

fn has_ext(name: &str, exts: &[&str]) -> bool {
    exts.iter().any(|e| {
        name.len() > e.len() + 1
            && name.ends_with(e)
            && name.as_bytes()[name.len() - e.len() - 1] == b'.'
    })
}

/// Reads `path` after checking confinement and size.
pub fn read_bounded(checkout: &Checkout, path: &Path, limit: u64) -> Result<String, ProjectError> {
    checkout.confine(path)?;
    let meta = std::fs::metadata(path).map_err(|source| ProjectError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > limit {
        return Err(ProjectError::FileTooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| ProjectError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_matching() {
        assert!(has_ext("a.sql", &["sql"]));
        assert!(!has_ext("sql", &["sql"]));
        assert!(!has_ext("a.mysql", &["sql"]));
        assert!(has_ext("b.yaml", &["yml", "yaml"]));
    }

    #[test]
    fn join_refuses_parent_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkout::new(dir.path()).unwrap();
        assert!(matches!(
            c.join(c.root(), "../etc"),
            Err(ProjectError::OutsideCheckout(_))
        ));
        assert!(c.join(c.root(), "/etc").is_err());
        assert!(c.join(c.root(), "models").is_ok());
    }

    #[test]
    fn huge_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkout::new(dir.path()).unwrap();
        let p = c.root().join("big.sql");
        std::fs::write(&p, vec![b'x'; 2048]).unwrap();
        assert!(matches!(
            read_bounded(&c, &p, 1024),
            Err(ProjectError::FileTooLarge { .. })
        ));
        assert!(read_bounded(&c, &p, 4096).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_escape_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.sql"), "select 1").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let c = Checkout::new(dir.path()).unwrap();
        let link = c.root().join("link.sql");
        std::os::unix::fs::symlink(outside.path().join("secret.sql"), &link).unwrap();
        assert!(matches!(c.read(&link), Err(ProjectError::SymlinkEscape(_))));
        let (files, errors) = c.walk(c.root(), &["sql"]);
        assert!(files.is_empty());
        assert_eq!(errors.len(), 1);
    }
}
