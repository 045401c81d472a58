//! Bare repositories with a tiny dbt project, written and pushed with the git CLI.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A bare repository plus the scratch clone used to push commits into it.
pub struct BareRepo {
    pub path: PathBuf,
    scratch: PathBuf,
}

/// Runs git with a neutral identity and config; panics with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Backflow Test",
            "-c",
            "user.email=test@backflow.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl BareRepo {
    /// `git init --bare <root>/<name>.git` and a first commit on `main` holding
    /// `dbt_project.yml` and `models/a.sql`.
    pub fn create(root: &Path, name: &str) -> Self {
        Self::create_with(
            root,
            name,
            &[
                (
                    "dbt_project.yml",
                    "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n",
                ),
                ("models/a.sql", "select 1 as id\n"),
            ],
        )
    }

    /// A bare repository whose first commit on `main` holds `files`.
    pub fn create_with(root: &Path, name: &str, files: &[(&str, &str)]) -> Self {
        let repo = Self::empty(root, name);
        repo.commit(files, "initial dbt project");
        repo
    }

    /// A bare repository and its scratch clone, without commits.
    pub fn empty(root: &Path, name: &str) -> Self {
        let path = root.join(format!("{name}.git"));
        fs::create_dir_all(&path).expect("repo dir");
        git(&path, &["init", "--bare", "-q", "-b", "main"]);
        let scratch = root.join(format!("{name}-scratch"));
        fs::create_dir_all(&scratch).expect("scratch dir");
        git(&scratch, &["init", "-q", "-b", "main"]);
        Self { path, scratch }
    }

    /// The working tree commits are made from (write files here, then
    /// [`commit`](Self::commit) with no files).
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// Writes files, commits and pushes to `main`; returns the new commit sha.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        self.commit_on("main", files, message)
    }

    /// Same as [`commit`](Self::commit) for another branch.
    pub fn commit_on(&self, branch: &str, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            let file = self.scratch.join(path);
            if let Some(parent) = file.parent() {
                fs::create_dir_all(parent).expect("parent dir");
            }
            fs::write(file, content).expect("write file");
        }
        git(&self.scratch, &["add", "-A"]);
        git(&self.scratch, &["commit", "-q", "-m", message]);
        let target = self.path.to_string_lossy().to_string();
        git(
            &self.scratch,
            &["push", "-q", &target, &format!("HEAD:refs/heads/{branch}")],
        );
        self.head(branch)
    }

    /// `git rev-parse <branch>` in the bare repository.
    pub fn head(&self, branch: &str) -> String {
        git(&self.path, &["rev-parse", branch])
    }
}
