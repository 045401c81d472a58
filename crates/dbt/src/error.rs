//! Error types. Whole-project failures (not a dbt project, unreadable root, path escapes) are
//! `ProjectError`; everything that concerns one file or node is a `NodeError` recorded in the
//! catalog so the rest of the project still loads.

use serde::Serialize;
use std::path::PathBuf;

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
