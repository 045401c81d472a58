//! All of git-sync's Git network work: fetching one branch of a customer repository
//! into a reusable work dir, and the cheap "what is the branch head now?" poll.
//!
//! It uses libgit2 (through `git2`) over SSH and HTTPS with credentials resolved from
//! the credentials service and held only in memory. The API is synchronous and meant
//! to run on `tokio::task::spawn_blocking`: libgit2 blocks, and every network step is
//! bounded by the request's timeout (socket timeouts plus a deadline checked in every
//! callback). SSH host keys must match the connection's pinned `known_hosts`; nothing
//! is ever accepted on first use.

mod callbacks;
mod diff;
mod errors;
mod known_hosts;
mod url;
mod workdir;

use std::ffi::c_int;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use git2::build::CheckoutBuilder;
use git2::{AutotagOption, Direction, FetchOptions, FetchPrune, Oid, Remote, Repository};

use self::callbacks::{remote_callbacks, CallbackState, Refusal};
pub use self::diff::changed_paths;
pub use self::errors::GitError;
use self::errors::{classify, ErrorContext};
pub use self::known_hosts::{HostKeyVerdict, KnownHosts, KnownHostsError};
use self::url::RemoteUrl;

/// How to authenticate to the Git server. `Debug` never prints secret material.
#[derive(Clone, PartialEq, Eq)]
pub enum GitAuth {
    /// Public repository over HTTPS.
    None,
    /// HTTPS Basic auth: a personal/installation token as the password.
    Token { username: String, token: String },
    /// SSH public key auth with pinned host keys.
    SshKey {
        /// SSH user when the URL names none (usually `git`).
        username: String,
        /// OpenSSH (`BEGIN OPENSSH PRIVATE KEY`) or PEM private key text.
        private_key: String,
        passphrase: Option<String>,
        /// OpenSSH `known_hosts` lines; the server's key must be among them.
        known_hosts: String,
    },
}

impl GitAuth {
    /// Secret strings that must be scrubbed from any message.
    fn secrets(&self) -> Vec<&str> {
        match self {
            GitAuth::None => Vec::new(),
            GitAuth::Token { token, .. } => vec![token.as_str()],
            GitAuth::SshKey {
                private_key,
                passphrase,
                ..
            } => {
                let mut out = vec![private_key.as_str()];
                out.extend(passphrase.as_deref());
                out
            }
        }
    }

    fn known_hosts(&self) -> Result<KnownHosts, GitError> {
        match self {
            GitAuth::SshKey { known_hosts, .. } => KnownHosts::parse(known_hosts)
                .map_err(|e| GitError::Other(format!("invalid pinned host keys: {e}"))),
            _ => Ok(KnownHosts::default()),
        }
    }
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitAuth::None => f.write_str("None"),
            GitAuth::Token { username, .. } => f
                .debug_struct("Token")
                .field("username", username)
                .field("token", &"[redacted]")
                .finish(),
            GitAuth::SshKey {
                username,
                passphrase,
                known_hosts,
                ..
            } => f
                .debug_struct("SshKey")
                .field("username", username)
                .field("private_key", &"[redacted]")
                .field("passphrase", &passphrase.as_ref().map(|_| "[redacted]"))
                .field("known_hosts", known_hosts)
                .finish(),
        }
    }
}

/// One branch fetch for one connection.
#[derive(Debug, Clone, Copy)]
pub struct FetchRequest<'a> {
    pub url: &'a str,
    pub branch: &'a str,
    pub auth: &'a GitAuth,
    /// Reused between syncs of one connection; created if missing.
    pub work_dir: &'a Path,
    /// Budget for the whole network part of the fetch.
    pub timeout: Duration,
}

/// The commit a fetch landed on, checked out in the work dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedCommit {
    pub sha: String,
    /// Working tree at that commit.
    pub checkout: PathBuf,
}

/// Fetches `branch` (single branch, depth 1) into the reusable work dir and
/// force-checks-out the fetched commit (untracked and ignored files are removed).
pub fn fetch_branch(req: &FetchRequest<'_>) -> Result<FetchedCommit, GitError> {
    let started = Instant::now();
    validate_branch(req.branch)?;
    let remote_url = RemoteUrl::parse(req.url)?;
    let known_hosts = req.auth.known_hosts()?;
    let secrets = req.auth.secrets();
    let repo = workdir::open_or_init(req.work_dir, req.url)?;

    let tracking = format!("refs/remotes/{}/{}", workdir::REMOTE, req.branch);
    // A ref left by an earlier sync must not pass for the branch if it is gone now.
    if let Ok(mut stale) = repo.find_reference(&tracking) {
        stale
            .delete()
            .map_err(|e| local_error("clearing the old branch ref", &e))?;
    }

    let state = CallbackState::new(req.timeout, "connecting");
    apply_socket_timeouts(req.timeout);
    let mut remote = repo
        .find_remote(workdir::REMOTE)
        .map_err(|e| local_error("opening the remote", &e))?;
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(remote_callbacks(
            &state,
            req.auth,
            &remote_url,
            &known_hosts,
        ))
        .depth(1)
        .download_tags(AutotagOption::None)
        .prune(FetchPrune::Off)
        .update_fetchhead(false);
    let refspec = format!("+refs/heads/{}:{}", req.branch, tracking);
    remote
        .fetch(&[refspec.as_str()], Some(&mut options), None)
        .map_err(|e| network_error(&e, &state, &remote_url, req.url, &secrets))?;
    drop(options);

    let oid = match repo.refname_to_id(&tracking) {
        Ok(oid) => oid,
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            return Err(GitError::BranchNotFound {
                branch: req.branch.to_string(),
            })
        }
        Err(e) => return Err(local_error("reading the fetched branch", &e)),
    };
    checkout(&repo, oid)?;
    tracing::info!(
        url = req.url,
        branch = req.branch,
        sha = %oid,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "fetched git branch"
    );
    Ok(FetchedCommit {
        sha: oid.to_string(),
        checkout: req.work_dir.to_path_buf(),
    })
}

/// The current commit of `branch` on the server, without fetching anything
/// (the `git ls-remote` equivalent used to poll for new commits).
pub fn remote_head(
    url: &str,
    branch: &str,
    auth: &GitAuth,
    timeout: Duration,
) -> Result<String, GitError> {
    validate_branch(branch)?;
    let remote_url = RemoteUrl::parse(url)?;
    let known_hosts = auth.known_hosts()?;
    let secrets = auth.secrets();
    let state = CallbackState::new(timeout, "connecting");
    apply_socket_timeouts(timeout);

    let mut remote =
        Remote::create_detached(url).map_err(|e| local_error("preparing the remote", &e))?;
    let callbacks = remote_callbacks(&state, auth, &remote_url, &known_hosts);
    let connection = remote
        .connect_auth(Direction::Fetch, Some(callbacks), None)
        .map_err(|e| network_error(&e, &state, &remote_url, url, &secrets))?;
    state.set_step("listing refs");
    let wanted = format!("refs/heads/{branch}");
    let heads = connection
        .list()
        .map_err(|e| network_error(&e, &state, &remote_url, url, &secrets))?;
    heads
        .iter()
        .find(|head| head.name() == wanted)
        .map(|head| head.oid().to_string())
        .ok_or_else(|| GitError::BranchNotFound {
            branch: branch.to_string(),
        })
}

fn validate_branch(branch: &str) -> Result<(), GitError> {
    let valid = !branch.is_empty()
        && !branch.starts_with('-')
        && git2::Reference::is_valid_name(&format!("refs/heads/{branch}"));
    if valid {
        Ok(())
    } else {
        Err(GitError::Other(format!("invalid branch name {branch:?}")))
    }
}

fn checkout(repo: &Repository, oid: Oid) -> Result<(), GitError> {
    let commit = repo
        .find_commit(oid)
        .map_err(|e| local_error("reading the fetched commit", &e))?;
    let mut builder = CheckoutBuilder::new();
    builder.force().remove_untracked(true).remove_ignored(true);
    repo.checkout_tree(commit.as_object(), Some(&mut builder))
        .map_err(|e| local_error("checking out", &e))?;
    repo.set_head_detached(oid)
        .map_err(|e| local_error("moving head", &e))
}

fn network_error(
    err: &git2::Error,
    state: &CallbackState,
    remote: &RemoteUrl,
    url: &str,
    secrets: &[&str],
) -> GitError {
    let host = remote.host.clone();
    match state.refusal() {
        Some(Refusal::HostKey(HostKeyVerdict::Unknown)) => GitError::HostKeyUnknown { host },
        Some(Refusal::HostKey(_)) => GitError::HostKeyMismatch { host },
        Some(Refusal::AuthRejected) => {
            GitError::AuthenticationFailed("the server rejected the credentials".to_string())
        }
        Some(Refusal::AuthUnavailable(why)) => GitError::AuthenticationFailed(why),
        Some(Refusal::TimedOut(step)) => GitError::Timeout {
            step,
            after: state.timeout(),
        },
        None if state.expired() => GitError::Timeout {
            step: state.step(),
            after: state.timeout(),
        },
        None => classify(
            err.class(),
            err.code(),
            err.message(),
            &ErrorContext {
                url,
                step: state.step(),
                timeout: state.timeout(),
                secrets,
            },
        ),
    }
}

fn local_error(action: &str, err: &git2::Error) -> GitError {
    GitError::Other(format!("{action}: {}", err.message()))
}

/// Sets libgit2's socket connect and read timeouts to the request's budget so a
/// server that accepts and then says nothing cannot hold a thread forever.
///
/// libgit2 keeps both as process-wide integers read when a socket is opened (and
/// handed to libssh2 for SSH). git-sync uses one configured timeout for all
/// connections, so the value rarely changes; writes are serialised here.
fn apply_socket_timeouts(timeout: Duration) {
    static CURRENT: AtomicI32 = AtomicI32::new(0);
    static WRITE: Mutex<()> = Mutex::new(());
    let ms = c_int::try_from(timeout.as_millis())
        .unwrap_or(c_int::MAX)
        .max(1);
    if CURRENT.load(Ordering::Acquire) == ms {
        return;
    }
    let _guard = WRITE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // SAFETY: both calls store a plain int in libgit2's global options; libgit2 only
    // reads them when it opens a socket. Writers are serialised by `WRITE`, and a
    // concurrent reader sees either the old or the new value, both valid timeouts.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms);
        let _ = git2::opts::set_server_timeout_in_milliseconds(ms);
    }
    CURRENT.store(ms, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let auth = GitAuth::SshKey {
            username: "git".into(),
            private_key: "-----BEGIN OPENSSH PRIVATE KEY----- abc".into(),
            passphrase: Some("hunter22".into()),
            known_hosts: "h ssh-ed25519 AAAA".into(),
        };
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains("BEGIN") && !shown.contains("hunter22"),
            "{shown}"
        );
        let token = GitAuth::Token {
            username: "x-access-token".into(),
            token: "ghs_secret".into(),
        };
        assert!(!format!("{token:?}").contains("ghs_secret"));
    }

    #[test]
    fn branch_names_are_validated() {
        assert!(validate_branch("main").is_ok());
        assert!(validate_branch("feature/x-1").is_ok());
        for bad in ["", "-x", "a..b", "a b", "x.lock", "a:b"] {
            assert!(validate_branch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_inputs_fail_before_any_network() {
        let tmp = tempfile::tempdir().unwrap();
        let auth = GitAuth::None;
        let req = FetchRequest {
            url: "file:///etc",
            branch: "main",
            auth: &auth,
            work_dir: tmp.path(),
            timeout: Duration::from_secs(1),
        };
        assert!(matches!(fetch_branch(&req), Err(GitError::Other(_))));
        let ssh = GitAuth::SshKey {
            username: "git".into(),
            private_key: String::new(),
            passphrase: None,
            known_hosts: "garbage".into(),
        };
        let err = remote_head("ssh://h/r.git", "main", &ssh, Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("pinned host keys"), "{err}");
    }
}
