//! One model sync, end to end: claim the queued run, get credentials, fetch the branch
//! (off the async threads, with timeouts), parse the dbt project at the commit with
//! `crates/dbt`, and record the snapshot with its event. A failure at any step fails
//! the run with a message the user can act on.

use crate::credentials_client::CredentialsClient;
use crate::error::GitSyncError;
use crate::git::{self, FetchRequest, GitAuth};
use crate::git_auth;
use crate::settings::Settings;
use crate::store::runs::SyncResult;
use crate::store::{ConnectionRecord, GitSyncStore};
use backflow_dbt::{Engine, ParseOptions};
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
}

#[derive(Clone)]
pub struct SyncRunner {
    store: GitSyncStore,
    credentials: CredentialsClient,
    work_root: PathBuf,
    fetch_timeout: Duration,
    /// One incremental dbt engine per connection: re-parsing after a push only redoes
    /// the files that changed.
    engines: Arc<Mutex<HashMap<String, (ParseOptions, Engine)>>>,
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

    /// Runs the sync a command asks for. Storage errors are returned (the command is
    /// retried); everything else ends the run as failed.
    #[tracing::instrument(name = "sync.run", skip_all, fields(run_id = %command.run_id, connection_id = tracing::field::Empty))]
    pub async fn run(&self, command: &pb::SyncCommand) -> Result<SyncOutcome, GitSyncError> {
        let Some((run, connection)) = self
            .store
            .claim_run(&command.workspace_id, &command.run_id)
            .await?
        else {
            return Ok(SyncOutcome::AlreadyHandled);
        };
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
        match self.execute(&connection).await {
            Ok((commit_sha, models, node_errors)) => {
                let model_count = models.len();
                let result = SyncResult {
                    commit_sha: commit_sha.clone(),
                    models,
                    node_errors,
                    duration_ms: elapsed_ms(started),
                };
                self.store.finish_run(&run, &result).await?;
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
            Err(message) => {
                self.store
                    .fail_run(&run, &message, elapsed_ms(started))
                    .await?;
                backflow_platform::metrics::run_finished(
                    "git_sync",
                    "failed",
                    &trigger,
                    started.elapsed(),
                );
                tracing::warn!(connection_id = %connection.id, run_id = %run.id, error = %message, "sync failed");
                Ok(SyncOutcome::Failed(message))
            }
        }
    }

    #[tracing::instrument(name = "sync.execute", skip_all)]
    async fn execute(
        &self,
        connection: &ConnectionRecord,
    ) -> Result<(String, Vec<backflow_proto::catalog::v1::Model>, Vec<String>), String> {
        let auth = self.auth_for(connection).await?;
        let work_dir = self.work_root.join(&connection.id);
        let settings = connection.settings.clone();
        let timeout = self.fetch_timeout;
        let fetch_span = tracing::info_span!("sync.fetch", branch = %settings.branch);
        let fetched = tokio::task::spawn_blocking(move || {
            let _entered = fetch_span.enter();
            git::fetch_branch(&FetchRequest {
                url: &settings.repository_url,
                branch: &settings.branch,
                auth: &auth,
                work_dir: &work_dir,
                timeout,
            })
        })
        .await
        .map_err(|err| format!("fetch task failed: {err}"))?
        .map_err(|err| err.to_string())?;
        let project_dir = project_dir(&fetched.checkout, &connection.settings.project_path);
        let options = ParseOptions {
            target_schema: connection.settings.default_schema.clone(),
            ..ParseOptions::default()
        };
        let (models, node_errors) = self
            .parse(&connection.id, project_dir, options, &fetched.sha)
            .await?;
        Ok((fetched.sha, models, node_errors))
    }

    #[tracing::instrument(name = "sync.parse", skip_all, fields(commit = %commit_sha))]
    async fn parse(
        &self,
        connection_id: &str,
        project_dir: PathBuf,
        options: ParseOptions,
        commit_sha: &str,
    ) -> Result<(Vec<backflow_proto::catalog::v1::Model>, Vec<String>), String> {
        let engine = self
            .engines
            .lock()
            .map_err(|_| "engine cache poisoned".to_string())?
            .remove(connection_id)
            .filter(|(cached, _)| cached == &options)
            .map(|(_, engine)| engine)
            .unwrap_or_else(|| Engine::new(options.clone()));
        let (connection, commit) = (connection_id.to_string(), commit_sha.to_string());
        let (engine, parsed) = tokio::task::spawn_blocking(move || {
            let mut engine = engine;
            let parsed = engine.parse(&project_dir).map(|catalog| {
                let models = crate::snapshot_builder::models_of(catalog, &connection, &commit);
                let errors = catalog
                    .errors
                    .iter()
                    .map(|error| match error.line {
                        Some(line) => format!("{}:{line}: {}", error.file, error.message),
                        None => format!("{}: {}", error.file, error.message),
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
            engines.insert(connection_id.to_string(), (options, engine));
        }
        Ok(parsed)
    }

    /// Builds the git authentication for a connection from its credential.
    #[tracing::instrument(name = "sync.credentials", skip_all)]
    pub async fn auth_for(&self, connection: &ConnectionRecord) -> Result<GitAuth, String> {
        let purpose = format!("git-sync fetch for connection {}", connection.id);
        self.auth_for_settings(&connection.workspace_id, &connection.settings, &purpose)
            .await
    }

    async fn auth_for_settings(
        &self,
        workspace_id: &str,
        settings: &Settings,
        purpose: &str,
    ) -> Result<GitAuth, String> {
        let kind = self
            .credentials
            .kind_of(workspace_id, &settings.credential_id)
            .await
            .map_err(|err| err.to_string())?;
        if kind == SecretKind::GithubApp {
            let token = self
                .credentials
                .github_installation_token(workspace_id, &settings.credential_id, purpose)
                .await
                .map_err(|err| err.to_string())?;
            return Ok(git_auth::auth_from_app_token(token));
        }
        let secret = self
            .credentials
            .resolve(workspace_id, &settings.credential_id, purpose)
            .await
            .map_err(|err| err.to_string())?;
        git_auth::auth_from_secret(
            &secret,
            settings.protocol,
            settings.provider,
            &settings.repository_url,
        )
        .map_err(|err| err.to_string())
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
            .await?;
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
