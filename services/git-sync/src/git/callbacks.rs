//! The libgit2 callbacks that enforce Backflow's rules during a network operation.
//!
//! libgit2 asks its caller three questions while it talks to a server: "is this host
//! key / certificate acceptable?", "which credentials?" and (through progress
//! callbacks) "keep going?". The answers here are: only a pinned SSH host key is
//! acceptable, credentials come from memory and are offered at most a couple of
//! times (libgit2 would otherwise ask again forever on rejection), and nothing keeps
//! going past the deadline. What happened is recorded in [`CallbackState`] so the
//! error classifier can say precisely why an operation stopped.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use git2::{CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode, RemoteCallbacks};

use super::known_hosts::{HostKeyVerdict, KnownHosts};
use super::url::{RemoteUrl, Scheme};
use super::GitAuth;

/// How many times the same credential is offered before giving up.
pub const MAX_AUTH_ATTEMPTS: u32 = 2;

/// Why a callback stopped the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The server kept rejecting the credential.
    AuthRejected,
    /// The server asked for credentials this connection does not have.
    AuthUnavailable(String),
    /// The host key was not the pinned one.
    HostKey(HostKeyVerdict),
    /// The deadline passed during the named step.
    TimedOut(&'static str),
}

/// Per-operation state shared by the callbacks.
#[derive(Debug)]
pub struct CallbackState {
    started: Instant,
    timeout: Duration,
    step: Cell<&'static str>,
    auth_attempts: Cell<u32>,
    refusal: RefCell<Option<Refusal>>,
}

impl CallbackState {
    pub fn new(timeout: Duration, step: &'static str) -> Self {
        Self {
            started: Instant::now(),
            timeout,
            step: Cell::new(step),
            auth_attempts: Cell::new(0),
            refusal: RefCell::new(None),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn step(&self) -> &'static str {
        self.step.get()
    }

    pub fn set_step(&self, step: &'static str) {
        self.step.set(step);
    }

    pub fn expired(&self) -> bool {
        self.started.elapsed() >= self.timeout
    }

    pub fn refusal(&self) -> Option<Refusal> {
        self.refusal.borrow().clone()
    }

    fn refuse(&self, refusal: Refusal) {
        let mut slot = self.refusal.borrow_mut();
        if slot.is_none() {
            *slot = Some(refusal);
        }
    }

    /// Records a timeout when the deadline passed; true means "stop".
    fn check_deadline(&self) -> bool {
        if self.expired() {
            self.refuse(Refusal::TimedOut(self.step()));
            true
        } else {
            false
        }
    }
}

/// Builds the callbacks for one operation against `remote`.
pub fn remote_callbacks<'a>(
    state: &'a CallbackState,
    auth: &'a GitAuth,
    remote: &'a RemoteUrl,
    known_hosts: &'a KnownHosts,
) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();

    callbacks.certificate_check(move |cert, _hostname| {
        if state.check_deadline() {
            return Err(timeout_error());
        }
        if remote.scheme != Scheme::Ssh {
            // TLS: libgit2 already validated the chain and host name against the
            // system roots; passing through keeps its verdict.
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        }
        let verdict = cert
            .as_hostkey()
            .and_then(|hostkey| hostkey.hostkey())
            .map(|blob| known_hosts.verify(&remote.host, remote.port, blob))
            .unwrap_or(HostKeyVerdict::Mismatch);
        if verdict == HostKeyVerdict::Trusted {
            return Ok(CertificateCheckStatus::CertificateOk);
        }
        tracing::warn!(host = %remote.host, port = remote.port, ?verdict, "refusing ssh host key");
        state.refuse(Refusal::HostKey(verdict));
        Err(git2::Error::new(
            ErrorCode::Certificate,
            ErrorClass::Ssh,
            "host key refused",
        ))
    });

    callbacks.credentials(move |_url, username_from_url, allowed| {
        if state.check_deadline() {
            return Err(timeout_error());
        }
        credentials(state, auth, remote, username_from_url, allowed)
    });

    callbacks.transfer_progress(move |_progress| {
        state.set_step("fetching");
        !state.check_deadline()
    });

    callbacks.sideband_progress(move |_text| !state.check_deadline());

    callbacks
}

fn credentials(
    state: &CallbackState,
    auth: &GitAuth,
    remote: &RemoteUrl,
    username_from_url: Option<&str>,
    allowed: CredentialType,
) -> Result<Cred, git2::Error> {
    let unavailable = |why: &str| {
        state.refuse(Refusal::AuthUnavailable(why.to_string()));
        Err(auth_error(why))
    };
    match auth {
        GitAuth::None => unavailable("the server requires credentials but none are configured"),
        GitAuth::Token { username, token } => {
            if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return unavailable("a token can only be used over https");
            }
            count_attempt(state)?;
            Cred::userpass_plaintext(username, token)
        }
        GitAuth::SshKey {
            username,
            private_key,
            passphrase,
            ..
        } => {
            let user = username_from_url
                .or(remote.username.as_deref())
                .filter(|u| !u.is_empty())
                .or(Some(username.as_str()).filter(|u| !u.is_empty()))
                .unwrap_or("git");
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(user);
            }
            if !allowed.contains(CredentialType::SSH_KEY) {
                return unavailable("an ssh key can only be used over ssh");
            }
            count_attempt(state)?;
            Cred::ssh_key_from_memory(user, None, private_key, passphrase.as_deref())
        }
    }
}

fn count_attempt(state: &CallbackState) -> Result<(), git2::Error> {
    let attempt = state.auth_attempts.get() + 1;
    state.auth_attempts.set(attempt);
    if attempt > MAX_AUTH_ATTEMPTS {
        state.refuse(Refusal::AuthRejected);
        return Err(auth_error("the server rejected the credentials"));
    }
    Ok(())
}

fn auth_error(message: &str) -> git2::Error {
    git2::Error::new(ErrorCode::Auth, ErrorClass::Callback, message)
}

fn timeout_error() -> git2::Error {
    git2::Error::new(
        ErrorCode::Timeout,
        ErrorClass::Callback,
        "deadline exceeded",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_bounded() {
        let state = CallbackState::new(Duration::from_secs(5), "connecting");
        assert!(count_attempt(&state).is_ok());
        assert!(count_attempt(&state).is_ok());
        let err = count_attempt(&state).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Auth);
        assert_eq!(state.refusal(), Some(Refusal::AuthRejected));
    }

    #[test]
    fn deadline_records_the_step_once() {
        let state = CallbackState::new(Duration::ZERO, "connecting");
        assert!(state.check_deadline());
        state.set_step("fetching");
        assert!(state.check_deadline());
        assert_eq!(state.refusal(), Some(Refusal::TimedOut("connecting")));
    }

    #[test]
    fn token_over_ssh_is_refused_without_counting() {
        let state = CallbackState::new(Duration::from_secs(5), "connecting");
        let auth = GitAuth::Token {
            username: "x-access-token".into(),
            token: "t0ken".into(),
        };
        let remote = RemoteUrl::parse("ssh://git@h/r.git").unwrap();
        let Err(err) = credentials(&state, &auth, &remote, None, CredentialType::SSH_KEY) else {
            panic!("a token must not be offered over ssh");
        };
        assert!(!err.message().contains("t0ken"));
        assert!(matches!(state.refusal(), Some(Refusal::AuthUnavailable(_))));
    }

    #[test]
    fn ssh_username_prefers_the_url() {
        let state = CallbackState::new(Duration::from_secs(5), "connecting");
        let auth = GitAuth::SshKey {
            username: "git".into(),
            private_key: "not a key".into(),
            passphrase: None,
            known_hosts: String::new(),
        };
        let remote = RemoteUrl::parse("ssh://root@h/r.git").unwrap();
        let cred = credentials(&state, &auth, &remote, None, CredentialType::USERNAME).unwrap();
        assert_eq!(cred.credtype(), CredentialType::USERNAME.bits());
    }
}
