//! Which files differ between two commits of a work dir, so the dbt engine re-reads only
//! those (`Engine::parse_changed`) instead of stat-ing the whole checkout after a fetch.
//! Local only: both commits must already be in the work dir's object store (the previous
//! sync's commit stays there after the next depth-1 fetch); if one is not, the caller
//! parses in full.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Tree};

use super::GitError;

/// Paths (relative to the repository root) added, deleted or modified between commits
/// `from` and `to`; a rename gives both its old and its new path.
pub fn changed_paths(work_dir: &Path, from: &str, to: &str) -> Result<Vec<PathBuf>, GitError> {
    let repo = Repository::open(work_dir).map_err(|e| local("opening the work dir", &e))?;
    let old = tree_of(&repo, from)?;
    let new = tree_of(&repo, to)?;
    let diff = repo
        .diff_tree_to_tree(Some(&old), Some(&new), None)
        .map_err(|e| local("comparing commits", &e))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path() {
                if !paths.iter().any(|q| q == p) {
                    paths.push(p.to_path_buf());
                }
            }
        }
    }
    Ok(paths)
}

fn tree_of<'r>(repo: &'r Repository, sha: &str) -> Result<Tree<'r>, GitError> {
    let oid = Oid::from_str(sha).map_err(|e| local("reading a commit id", &e))?;
    repo.find_commit(oid)
        .and_then(|c| c.tree())
        .map_err(|e| local("reading a commit", &e))
}

fn local(action: &str, err: &git2::Error) -> GitError {
    GitError::Other(format!("{action}: {}", err.message()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn commit(repo: &Repository, files: &[(&str, Option<&str>)]) -> String {
        let root = repo.workdir().unwrap().to_path_buf();
        let mut index = repo.index().unwrap();
        for (path, text) in files {
            match text {
                Some(t) => {
                    let p = root.join(path);
                    fs::create_dir_all(p.parent().unwrap()).unwrap();
                    fs::write(&p, t).unwrap();
                    index.add_path(Path::new(path)).unwrap();
                }
                None => {
                    fs::remove_file(root.join(path)).unwrap();
                    index.remove_path(Path::new(path)).unwrap();
                }
            }
        }
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parents: Vec<git2::Commit<'_>> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &parents)
            .unwrap()
            .to_string()
    }

    #[test]
    fn lists_added_modified_and_deleted_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let a = commit(
            &repo,
            &[
                ("dbt/models/a.sql", Some("select 1")),
                ("dbt/models/b.sql", Some("select 2")),
                ("README.md", Some("hi")),
            ],
        );
        let b = commit(
            &repo,
            &[
                ("dbt/models/a.sql", Some("select 10")),
                ("dbt/models/b.sql", None),
                ("dbt/models/c.sql", Some("select 3")),
            ],
        );
        let mut got = changed_paths(dir.path(), &a, &b).unwrap();
        got.sort();
        let want: Vec<PathBuf> = ["dbt/models/a.sql", "dbt/models/b.sql", "dbt/models/c.sql"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(got, want);
        assert!(changed_paths(dir.path(), &b, &b).unwrap().is_empty());
    }

    #[test]
    fn an_unknown_commit_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let a = commit(&repo, &[("x.sql", Some("select 1"))]);
        let missing = "0123456789012345678901234567890123456789";
        assert!(matches!(
            changed_paths(dir.path(), missing, &a),
            Err(GitError::Other(_))
        ));
    }
}
