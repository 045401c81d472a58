//! Error types. Whole-project failures (not a dbt project, unreadable root, path escapes) are
//! `ProjectError`; everything that concerns one file or node is a `NodeError` recorded in the
//! catalog so the rest of the project still loads.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// A failure that stops the whole project from loading.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("not a dbt project: {0} has no dbt_project.yml")]
    NotADbtProject(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("path {0} leaves the project checkout")]
    OutsideCheckout(PathBuf),
    #[error("symlink {0} points outside the project checkout; refusing to follow it")]
    SymlinkEscape(PathBuf),
    #[error("file {path} is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("invalid dbt_project.yml in {file}: {message}")]
    InvalidProject { file: String, message: String },
    #[error("invalid yaml in {file} at line {line}: {message}")]
    Yaml {
        file: String,
        line: usize,
        message: String,
    },
    #[error("invalid --vars: {0}")]
    InvalidVars(String),
    #[error("cannot serialize manifest: {0}")]
    Serialize(String),
}

impl ProjectError {
    /// The file or directory this error is about, when it names one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::NotADbtProject(p)
            | Self::Io { path: p, .. }
            | Self::OutsideCheckout(p)
            | Self::SymlinkEscape(p)
            | Self::FileTooLarge { path: p, .. } => Some(p),
            _ => None,
        }
    }

    /// The same error with every path made relative to `root` (`.` for `root` itself), so
    /// messages never show the checkout's location on disk. Paths outside `root` are kept.
    pub fn relative_to(self, root: &Path) -> Self {
        let rel = |p: PathBuf| relative_path(root, &p).map_or(p, PathBuf::from);
        let rel_text = |s: String| scrub_root(&s, root);
        match self {
            Self::NotADbtProject(p) => Self::NotADbtProject(rel(p)),
            Self::Io { path, source } => Self::Io {
                path: rel(path),
                source,
            },
            Self::OutsideCheckout(p) => Self::OutsideCheckout(rel(p)),
            Self::SymlinkEscape(p) => Self::SymlinkEscape(rel(p)),
            Self::FileTooLarge { path, size, limit } => Self::FileTooLarge {
                path: rel(path),
                size,
                limit,
            },
            Self::InvalidProject { file, message } => Self::InvalidProject {
                file: rel_text(file),
                message: rel_text(message),
            },
            Self::Yaml {
                file,
                line,
                message,
            } => Self::Yaml {
                file: rel_text(file),
                line,
                message: rel_text(message),
            },
            other => other,
        }
    }
}

/// `path` relative to `root` with `/` separators (`.` for `root` itself), or `None` when
/// `path` is not under `root`.
pub fn relative_path(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// `text` with every mention of `root` (as a prefix of a path or alone) removed.
pub fn scrub_root(text: &str, root: &Path) -> String {
    let root = root.to_string_lossy();
    let root = root.trim_end_matches('/');
    if root.is_empty() || !text.contains(root) {
        return text.to_string();
    }
    text.replace(&format!("{root}/"), "").replace(root, ".")
}

/// A failure attached to one file or node; the project keeps loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeError {
    /// unique id of the node, when the error belongs to one
    pub unique_id: Option<String>,
    /// project-relative file path (original_file_path)
    pub file: String,
    /// 1-based line, when known
    pub line: Option<usize>,
    pub message: String,
}

impl NodeError {
    pub fn new(
        unique_id: Option<String>,
        file: &str,
        line: Option<usize>,
        message: String,
    ) -> Self {
        Self {
            unique_id,
            file: file.to_string(),
            line,
            message,
        }
    }
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}
