//! Work directories that are reused between syncs of one connection.
//!
//! Reusing the directory keeps the second and later syncs incremental (only new
//! objects travel), but the directory must really belong to the connection: a stale
//! repository for another URL is wiped and started over, a broken one too, and a
//! symlink is refused outright so a work dir can never be pointed at someone else's
//! files.

use std::fs;
use std::io;
use std::path::Path;

use git2::Repository;

use super::errors::GitError;

/// Name of the remote the module fetches through.
pub const REMOTE: &str = "origin";

/// Opens the repository in `dir` if it was created for `url`, otherwise (re)creates it.
pub fn open_or_init(dir: &Path, url: &str) -> Result<Repository, GitError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(GitError::Other(format!(
            "work dir {} is a symlink; refusing to use it",
            dir.display()
        ))),
        Ok(meta) if !meta.is_dir() => Err(GitError::Other(format!(
            "work dir {} is not a directory",
            dir.display()
        ))),
        Ok(_) => match reusable(dir, url) {
            Some(repo) => Ok(repo),
            None => {
                tracing::info!(work_dir = %dir.display(), "resetting work dir");
                fs::remove_dir_all(dir).map_err(|e| io_error("resetting", dir, &e))?;
                init(dir, url)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => init(dir, url),
        Err(e) => Err(io_error("inspecting", dir, &e)),
    }
}

/// The existing repository, if it is a plain (non-bare) one whose `.git` is a real
/// directory inside `dir` and whose remote points at `url`.
fn reusable(dir: &Path, url: &str) -> Option<Repository> {
    let dot_git = fs::symlink_metadata(dir.join(".git")).ok()?;
    if !dot_git.is_dir() {
        return None;
    }
    let repo = Repository::open(dir).ok()?;
    if repo.is_bare() {
        return None;
    }
    let same_url = repo
        .find_remote(REMOTE)
        .ok()
        .is_some_and(|remote| remote.url() == Some(url));
    same_url.then_some(repo)
}

fn init(dir: &Path, url: &str) -> Result<Repository, GitError> {
    fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, &e))?;
    let repo = Repository::init(dir).map_err(|e| {
        GitError::Other(format!(
            "initialising work dir {}: {}",
            dir.display(),
            e.message()
        ))
    })?;
    repo.remote(REMOTE, url)
        .map_err(|e| GitError::Other(format!("configuring remote: {}", e.message())))?;
    Ok(repo)
}

fn io_error(action: &str, dir: &Path, err: &io::Error) -> GitError {
    GitError::Other(format!("{action} work dir {}: {err}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_reuses_and_resets() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("conn-1");
        let repo = open_or_init(&dir, "https://h/a.git").unwrap();
        assert_eq!(
            repo.find_remote(REMOTE).unwrap().url(),
            Some("https://h/a.git")
        );
        fs::write(dir.join("marker"), "x").unwrap();

        open_or_init(&dir, "https://h/a.git").unwrap();
        assert!(dir.join("marker").exists(), "same url reuses the dir");

        let repo = open_or_init(&dir, "https://h/b.git").unwrap();
        assert!(!dir.join("marker").exists(), "another url resets the dir");
        assert_eq!(
            repo.find_remote(REMOTE).unwrap().url(),
            Some("https://h/b.git")
        );
    }

    #[test]
    fn resets_a_directory_that_is_not_a_repository() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("junk"), "x").unwrap();
        open_or_init(tmp.path(), "https://h/a.git").unwrap();
        assert!(!tmp.path().join("junk").exists());
        assert!(tmp.path().join(".git").is_dir());
    }

    #[test]
    fn refuses_symlinks_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("precious"), "x").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let Err(err) = open_or_init(&link, "https://h/a.git") else {
            panic!("a symlinked work dir must be refused");
        };
        assert!(err.to_string().contains("symlink"), "{err}");
        assert!(target.join("precious").exists());

        let file = tmp.path().join("file");
        fs::write(&file, "x").unwrap();
        assert!(open_or_init(&file, "https://h/a.git").is_err());
    }
}
