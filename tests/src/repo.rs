//! Real git repositories for tests, driven with the git CLI: a bare "remote" and a
//! working clone to commit and push from.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestRepo {
    pub root: PathBuf,
    pub bare: PathBuf,
    pub work: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Backflow Test",
            "-c",
            "user.email=test@backflow.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()?;
    if !output.status.success() {
        anyhow::bail!("git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

impl TestRepo {
    /// A bare repository `<root>/<name>.git` with one commit of `files` on `main`.
    pub fn create(name: &str, files: &[(&str, &str)]) -> anyhow::Result<Self> {
        let repo = Self::empty(name)?;
        repo.commit(files, "initial dbt project")?;
        Ok(repo)
    }

    /// A bare repository and a working clone with no commit yet.
    pub fn empty(name: &str) -> anyhow::Result<Self> {
        let root = std::env::temp_dir().join(format!(
            "backflow-repo-{}-{}",
            std::process::id(),
            backflow_platform::new_id()
        ));
        let bare = root.join(format!("{name}.git"));
        let work = root.join("work");
        std::fs::create_dir_all(&bare)?;
        std::fs::create_dir_all(&work)?;
        git(&bare, &["init", "--bare", "-q"])?;
        git(&work, &["init", "-q"])?;
        git(&work, &["checkout", "-q", "-b", "main"])?;
        let bare_path = bare.display().to_string();
        git(&work, &["remote", "add", "origin", &bare_path])?;
        Ok(Self { root, bare, work })
    }

    /// Writes `files`, commits and pushes; returns the new commit sha.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> anyhow::Result<String> {
        for (path, text) in files {
            let full = self.work.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(full, text)?;
        }
        self.commit_work_tree(message)
    }

    /// Commits whatever is in the working tree and pushes; returns the new sha.
    pub fn commit_work_tree(&self, message: &str) -> anyhow::Result<String> {
        git(&self.work, &["add", "-A"])?;
        git(&self.work, &["commit", "-q", "-m", message])?;
        git(&self.work, &["push", "-q", "origin", "main"])?;
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

impl Drop for TestRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
