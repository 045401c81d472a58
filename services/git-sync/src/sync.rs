//! One model sync, end to end: claim the queued run, get credentials, fetch the branch
//! (off the async threads, with timeouts), parse the dbt project at the commit with
//! `crates/dbt`, and record the snapshot with its event. A failure at any step fails
//! the run with a message the user can act on.

use crate::error::GitSyncError;
use crate::git::{self, FetchRequest, GitAuth, GitError};
use crate::git_auth;
use crate::settings::Settings;
use crate::store::{ConnectionRecord, GitSyncStore};
use crate::store::{RunFailure, SyncResult};
use backflow_dbt::{Engine, ParseOptions};
use backflow_platform::credentials_client::CredentialsClient;
use backflow_proto::credentials::v1::SecretKind;
use backflow_proto::gitsync::v1 as pb;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a sync command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Succeeded {
        commit_sha: String,
        model_count: usize,
    },
    Failed(String),
    /// Another worker has the run, or it finished before.
    AlreadyHandled,
    /// The run's lease lapsed while it ran and a reaper failed it; the result was
    /// dropped (a new run was queued by the reaper).
    LeaseLost,
}

/// A step that failed, before it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StepFailure {
    message: String,
    transient: bool,
    /// Known once the fetch got the commit.
    commit_sha: String,
}

impl StepFailure {
    fn new(message: impl Into<String>, transient: bool) -> Self {
        Self {
            message: message.into(),
            transient,
            commit_sha: String::new(),
        }
    }
}

/// What a fetch needs from the credential, and its version (for quiet polling).
pub struct Access {
    pub auth: GitAuth,
    pub credential_version: String,
}

#[derive(Clone)]
pub struct SyncRunner {
    store: GitSyncStore,
    credentials: CredentialsClient,
    work_root: PathBuf,
    fetch_timeout: Duration,
    /// One incremental dbt engine per connection: re-parsing after a push only redoes
    /// the files that changed.
    engines: Arc<Mutex<HashMap<String, CachedEngine>>>,
}

/// A connection's dbt engine, with the options and the commit it last parsed.
struct CachedEngine {
    options: ParseOptions,
    engine: Engine,
    commit_sha: String,
}

impl std::fmt::Debug for SyncRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncRunner")
            .field("work_root", &self.work_root)
            .finish_non_exhaustive()
    }
}

impl SyncRunner {
    pub fn new(
        store: GitSyncStore,
        credentials: CredentialsClient,
        work_root: PathBuf,
        fetch_timeout: Duration,
    ) -> Self {
        Self {
            store,
            credentials,
            work_root,
            fetch_timeout,
            engines: Arc::default(),
        }
    }

    pub fn credentials(&self) -> &CredentialsClient {
        &self.credentials
    }

    pub fn fetch_timeout(&self) -> Duration {
        self.fetch_timeout
    }

    /// Where a connection's working copy lives.
    pub fn work_dir(&self, connection_id: &str) -> PathBuf {
        self.work_root.join(connection_id)
    }

    /// Forgets a deleted connection: its cached engine and its work dir.
    pub async fn forget(&self, connection_id: &str) {
        if let Ok(mut engines) = self.engines.lock() {
            engines.remove(connection_id);
        }
        let dir = self.work_dir(connection_id);
        let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        })
        .await;
        match removed {
            Ok(Ok(())) => tracing::info!(connection_id, "work dir removed"),
            Ok(Err(error)) => tracing::warn!(connection_id, %error, "cannot remove work dir"),
            Err(error) => tracing::warn!(connection_id, %error, "work dir removal task failed"),
        }
    }

    /// Runs the sync a command asks for. Storage errors are returned (the command is
    /// retried); everything else ends the run as failed. The run's lease is renewed
    /// while it runs.
    #[tracing::instrument(name = "sync.run", skip_all, fields(run_id = %command.run_id, connection_id = tracing::field::Empty))]
    pub async fn run(&self, command: &pb::SyncCommand) -> Result<SyncOutcome, GitSyncError> {
        let Some((run, connection)) = self
            .store
            .claim_run(&command.workspace_id, &command.run_id)
            .await?
        else {
            return Ok(SyncOutcome::AlreadyHandled);
        };
        let _renewal = self.store.run_leases().keep_renewed(&run.id);
        let started = Instant::now();
        tracing::Span::current().record("connection_id", connection.id.as_str());
        tracing::info!(connection_id = %connection.id, run_id = %run.id, "sync started");
        let trigger = pb::SyncTrigger::try_from(run.trigger)
            .map(|trigger| {
                trigger
                    .as_str_name()
                    .trim_start_matches("SYNC_TRIGGER_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_else(|_| "unknown".into());
        let mut credential_version = String::new();
        match self.execute(&connection, &mut credential_version).await {
            Ok((commit_sha, models, node_errors)) => {
                let model_count = models.len();
                let result = SyncResult {
                    commit_sha: commit_sha.clone(),
                    models,
                    node_errors,
                    duration_ms: elapsed_ms(started),
                };
                if self.store.finish_run(&run, &result).await?.is_none() {
                    tracing::warn!(connection_id = %connection.id, run_id = %run.id, "sync result dropped: the run was reaped");
                    return Ok(SyncOutcome::LeaseLost);
                }
                backflow_platform::metrics::run_finished(
                    "git_sync",
                    "succeeded",
                    &trigger,
                    started.elapsed(),
                );
                tracing::info!(connection_id = %connection.id, run_id = %run.id, commit = %commit_sha, model_count, duration_ms = result.duration_ms, "sync succeeded");
                Ok(SyncOutcome::Succeeded {
                    commit_sha,
                    model_count,
                })
            }
            Err(step) => {
                let failure = RunFailure {
                    message: step.message.clone(),
                    commit_sha: step.commit_sha,
                    transient: step.transient,
                    credential_version,
                };
                if !self
                    .store
                    .fail_run(&run, &failure, elapsed_ms(started))
                    .await?
                {
                    return Ok(SyncOutcome::LeaseLost);
                }
                backflow_platform::metrics::run_finished(
                    "git_sync",
                    "failed",
                    &trigger,
                    started.elapsed(),
                );
                tracing::warn!(connection_id = %connection.id, run_id = %run.id, error = %step.message, transient = step.transient, "sync failed");
                Ok(SyncOutcome::Failed(step.message))
            }
        }
    }

    #[tracing::instrument(name = "sync.execute", skip_all)]
    async fn execute(
        &self,
        connection: &ConnectionRecord,
        credential_version: &mut String,
    ) -> Result<(String, Vec<backflow_proto::catalog::v1::Model>, Vec<String>), StepFailure> {
        let options = self.parse_options(connection).await?;
        let access = self.access_for(connection).await?;
        *credential_version = access.credential_version;
        let auth = access.auth;
        let work_dir = self.work_dir(&connection.id);
        let settings = connection.settings.clone();
        let timeout = self.fetch_timeout;
        let fetch_span = tracing::info_span!("sync.fetch", branch = %settings.branch);
        let scrub = PathScrubber::new(&self.work_root, &work_dir);
        let dir = work_dir.clone();
        let fetched = tokio::task::spawn_blocking(move || {
            let _entered = fetch_span.enter();
            git::fetch_branch(&FetchRequest {
                url: &settings.repository_url,
                branch: &settings.branch,
                auth: &auth,
                work_dir: &dir,
                timeout,
            })
        })
        .await
        .map_err(|err| StepFailure::new(format!("fetch task failed: {err}"), true))?
        .map_err(|err| {
            let transient = matches!(err, GitError::Timeout { .. } | GitError::Network(_));
            StepFailure::new(scrub.clean(&err.to_string()), transient)
        })?;
        let project_path = connection.settings.project_path.clone();
        let (models, errors) = self
            .parse(&connection.id, &fetched, &project_path, options)
            .await
            .map_err(|message| StepFailure {
                message: scrub.clean(&message),
                transient: false,
                commit_sha: fetched.sha.clone(),
            })?;
        let node_errors = errors
            .into_iter()
            .map(|error| {
                let file = repository_relative(&project_path, &error.file);
                let message = scrub.clean(&error.message);
                match error.line {
                    Some(line) => format!("{file}:{line}: {message}"),
                    None => format!("{file}: {message}"),
                }
            })
            .collect();
        Ok((fetched.sha, models, node_errors))
    }

    /// What the dbt project is parsed with: the default schema from the connection, the
    /// adapter and target database from its warehouse source (as the catalog announced it).
    async fn parse_options(
        &self,
        connection: &ConnectionRecord,
    ) -> Result<ParseOptions, StepFailure> {
        let source_id = &connection.settings.warehouse_source_id;
        let source = self
            .store
            .known_source(&connection.workspace_id, source_id)
            .await
            .map_err(|err| StepFailure::new(err.to_string(), true))?
            .ok_or_else(|| {
                StepFailure::new(
                    format!("warehouse source {source_id} is unknown to git-sync: it was deleted, or the catalog has not announced it yet"),
                    true,
                )
            })?;
        let defaults = ParseOptions::default();
        Ok(ParseOptions {
            target_schema: connection.settings.default_schema.clone(),
            adapter: source.adapter(),
            target_database: if source.database.is_empty() {
                defaults.target_database.clone()
            } else {
                source.database
            },
            ..defaults
        })
    }

    /// Parses the project at the fetched commit. With the engine of the connection's
    /// previous sync, only the files the git diff between the two commits names are read
    /// again; otherwise (first sync, new options, no diff) the whole project is.
    #[tracing::instrument(name = "sync.parse", skip_all, fields(commit = %fetched.sha))]
    async fn parse(
        &self,
        connection_id: &str,
        fetched: &git::FetchedCommit,
        project_path: &str,
        options: ParseOptions,
    ) -> Result<(Vec<backflow_proto::catalog::v1::Model>, Vec<FileError>), String> {
        let cached = self
            .engines
            .lock()
            .map_err(|_| "engine cache poisoned".to_string())?
            .remove(connection_id)
            .filter(|cached| cached.options == options);
        let (engine, previous) = match cached {
            Some(c) => (c.engine, Some(c.commit_sha)),
            None => (Engine::new(options.clone()), None),
        };
        let (connection, commit) = (connection_id.to_string(), fetched.sha.clone());
        let (checkout, project_path) = (fetched.checkout.clone(), project_path.to_string());
        let (engine, parsed) = tokio::task::spawn_blocking(move || {
            let mut engine = engine;
            let project_dir = project_dir(&checkout, &project_path);
            let changed = previous.and_then(|from| {
                git::changed_paths(&checkout, &from, &commit)
                    .map_err(|err| tracing::info!(error = %err, "no diff from the previous commit: full parse"))
                    .ok()
                    .and_then(|paths| project_relative(&paths, &project_path))
            });
            let parsed = match changed {
                Some(paths) => {
                    tracing::debug!(changed = paths.len(), "parsing the files the commit changed");
                    engine.parse_changed(&project_dir, &paths)
                }
                None => engine.parse(&project_dir),
            };
            let parsed = parsed.map(|catalog| {
                let models = crate::snapshot_builder::models_of(catalog, &connection, &commit);
                let errors = catalog
                    .errors
                    .iter()
                    .map(|error| FileError {
                        file: error.file.clone(),
                        line: error.line,
                        message: error.message.clone(),
                    })
                    .collect::<Vec<_>>();
                (models, errors)
            });
            (engine, parsed)
        })
        .await
        .map_err(|err| format!("parse task failed: {err}"))?;
        let parsed = parsed.map_err(|err| format!("dbt project: {err}"))?;
        if let Ok(mut engines) = self.engines.lock() {
            let cached = CachedEngine {
                options,
                engine,
                commit_sha: fetched.sha.clone(),
            };
            engines.insert(connection_id.to_string(), cached);
        }
        Ok(parsed)
    }

    /// Builds the git authentication for a connection from its credential.
    pub async fn auth_for(&self, connection: &ConnectionRecord) -> Result<Access, String> {
        self.access_for(connection)
            .await
            .map_err(|failure| failure.message)
    }

    #[tracing::instrument(name = "sync.credentials", skip_all)]
    async fn access_for(&self, connection: &ConnectionRecord) -> Result<Access, StepFailure> {
        let purpose = format!("git-sync fetch for connection {}", connection.id);
        self.auth_for_settings(&connection.workspace_id, &connection.settings, &purpose)
            .await
    }

    async fn auth_for_settings(
        &self,
        workspace_id: &str,
        settings: &Settings,
        purpose: &str,
    ) -> Result<Access, StepFailure> {
        let failed = |err: backflow_platform::credentials_client::CredentialsClientError| {
            StepFailure::new(err.to_string(), err.is_transient())
        };
        let metadata = self
            .credentials
            .metadata(workspace_id, &settings.credential_id)
            .await
            .map_err(failed)?;
        let credential_version = metadata.version;
        if metadata.kind == SecretKind::GithubApp {
            let token = self
                .credentials
                .github_installation_token(workspace_id, &settings.credential_id, purpose)
                .await
                .map_err(failed)?;
            return Ok(Access {
                auth: git_auth::auth_from_app_token(token),
                credential_version,
            });
        }
        let secret = self
            .credentials
            .resolve(workspace_id, &settings.credential_id, purpose)
            .await
            .map_err(failed)?;
        let auth = git_auth::auth_from_secret(
            &secret,
            settings.protocol,
            settings.provider,
            &settings.repository_url,
        )
        .map_err(|err| StepFailure::new(err.to_string(), false))?;
        Ok(Access {
            auth,
            credential_version,
        })
    }

    /// Checks that the settings reach the branch (credential, host key, repository,
    /// branch) without fetching; returns the branch head. Used when settings are saved.
    pub async fn check_access(
        &self,
        workspace_id: &str,
        settings: &Settings,
    ) -> Result<String, String> {
        let auth = self
            .auth_for_settings(workspace_id, settings, "git-sync access check")
            .await
            .map_err(|failure| failure.message)?
            .auth;
        let (url, branch, timeout) = (
            settings.repository_url.clone(),
            settings.branch.clone(),
            self.fetch_timeout,
        );
        tokio::task::spawn_blocking(move || git::remote_head(&url, &branch, &auth, timeout))
            .await
            .map_err(|err| format!("access check task failed: {err}"))?
            .map_err(|err| err.to_string())
    }
}

fn project_dir(checkout: &Path, project_path: &str) -> PathBuf {
    if project_path.is_empty() {
        checkout.to_path_buf()
    } else {
        checkout.join(project_path)
    }
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// One error of the dbt catalog, its file relative to the dbt project.
#[derive(Debug, Clone)]
struct FileError {
    file: String,
    line: Option<usize>,
    message: String,
}

/// Repository-relative paths (a git diff's) made relative to the dbt project; paths
/// outside the project are dropped (the engine never reads them). `None` when the
/// project path is not a plain relative path (`./x`, `a/../b`): then it is parsed in full.
fn project_relative(paths: &[PathBuf], project_path: &str) -> Option<Vec<PathBuf>> {
    let base = Path::new(project_path.trim_end_matches('/'));
    if !base
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    Some(
        paths
            .iter()
            .filter_map(|p| p.strip_prefix(base).ok())
            .map(Path::to_path_buf)
            .collect(),
    )
}

/// A project-relative path made repository-relative (the connection's project path
/// in front).
fn repository_relative(project_path: &str, file: &str) -> String {
    let file = file.trim_start_matches("./");
    if project_path.is_empty() || file.is_empty() {
        file.to_string()
    } else {
        format!("{}/{file}", project_path.trim_end_matches('/'))
    }
}

/// Removes server paths from messages: inside the connection's work dir a path
/// becomes repository-relative; any other path below the work root is hidden.
#[derive(Debug, Clone)]
struct PathScrubber {
    /// (prefix, replacement), longest first.
    replacements: Vec<(String, &'static str)>,
}

impl PathScrubber {
    fn new(work_root: &Path, work_dir: &Path) -> Self {
        let mut replacements = Vec::new();
        for (path, inside, bare) in [
            (work_dir, "", "."),
            (work_root, "<work dir>/", "<work dir>"),
        ] {
            let mut forms = vec![path.to_path_buf()];
            if let Ok(canonical) = std::fs::canonicalize(path) {
                forms.push(canonical);
            }
            if path.is_relative() {
                if let Ok(cwd) = std::env::current_dir() {
                    forms.push(cwd.join(path));
                }
            }
            for form in forms {
                let text = form.display().to_string();
                let text = text.trim_end_matches('/').to_string();
                if text.is_empty() {
                    continue;
                }
                replacements.push((format!("{text}/"), inside));
                replacements.push((text, bare));
            }
        }
        replacements.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Self { replacements }
    }

    fn clean(&self, message: &str) -> String {
        let mut out = message.to_string();
        for (prefix, replacement) in &self.replacements {
            out = out.replace(prefix.as_str(), replacement);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_paths_become_project_relative() {
        let paths: Vec<PathBuf> = ["dbt/models/a.sql", "README.md", "dbtx/b.sql"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(
            project_relative(&paths, "dbt/"),
            Some(vec![PathBuf::from("models/a.sql")])
        );
        assert_eq!(project_relative(&paths, ""), Some(paths.clone()));
        assert_eq!(project_relative(&paths, "./dbt"), None);
        assert_eq!(project_relative(&paths, "/dbt"), None);
    }

    #[test]
    fn paths_become_repository_relative() {
        assert_eq!(repository_relative("", "models/a.sql"), "models/a.sql");
        assert_eq!(
            repository_relative("dbt", "models/a.sql"),
            "dbt/models/a.sql"
        );
        assert_eq!(
            repository_relative("dbt/", "./models/a.sql"),
            "dbt/models/a.sql"
        );
    }

    #[test]
    fn work_dirs_never_show() {
        let scrub = PathScrubber::new(Path::new("/srv/work"), Path::new("/srv/work/c1"));
        assert_eq!(
            scrub.clean("reading /srv/work/c1/dbt/models/a.sql: too big"),
            "reading dbt/models/a.sql: too big"
        );
        assert_eq!(
            scrub.clean("resetting work dir /srv/work/c1: x"),
            "resetting work dir .: x"
        );
        assert_eq!(scrub.clean("/srv/work/c2/x"), "<work dir>/c2/x");
        assert_eq!(
            scrub.clean("creating /srv/work: denied"),
            "creating <work dir>: denied"
        );
    }
}
