//! Turning libgit2's failures into answers a person can act on.
//!
//! libgit2 reports problems as a class, a code and a free-form message that differs
//! per transport ("unexpected http status code: 401", "Failed to authenticate SSH
//! session", "invalid or unknown remote ssh hostkey"). The connection screen needs
//! one of a handful of clear outcomes instead, and none of them may echo a secret.
//! What our own callbacks already know (the host key was refused, the deadline
//! passed, the credentials were rejected) takes precedence over message sniffing.

use std::fmt;
use std::time::Duration;

use git2::{ErrorClass, ErrorCode};

/// Why a Git network operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
    #[error("repository not found: {0}")]
    RepositoryNotFound(String),
    #[error("branch {branch} not found")]
    BranchNotFound { branch: String },
    #[error("host key mismatch for {host}")]
    HostKeyMismatch { host: String },
    #[error("host key for {host} is unknown: pin it in the connection's known_hosts")]
    HostKeyUnknown { host: String },
    #[error("timed out after {} while {step}", HumanDuration(*.after))]
    Timeout { step: &'static str, after: Duration },
    #[error("network error: {0}")]
    Network(String),
    #[error("git error: {0}")]
    Other(String),
}

impl GitError {
    /// A stable, lowercase label for metrics and sync-run records.
    pub fn kind(&self) -> &'static str {
        match self {
            GitError::AuthenticationFailed(_) => "authentication_failed",
            GitError::RepositoryNotFound(_) => "repository_not_found",
            GitError::BranchNotFound { .. } => "branch_not_found",
            GitError::HostKeyMismatch { .. } => "host_key_mismatch",
            GitError::HostKeyUnknown { .. } => "host_key_unknown",
            GitError::Timeout { .. } => "timeout",
            GitError::Network(_) => "network",
            GitError::Other(_) => "other",
        }
    }
}

/// Formats `30s`, `1.5s` or `250ms`.
struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms >= 1000 && ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else if ms >= 1000 {
            write!(f, "{}s", self.0.as_secs_f64())
        } else {
            write!(f, "{ms}ms")
        }
    }
}

/// What the caller knows when an error comes back from libgit2.
#[derive(Debug, Clone)]
pub struct ErrorContext<'a> {
    /// The repository URL, already safe to show.
    pub url: &'a str,
    /// What the operation was doing (`"connecting"`, `"fetching"`, ...).
    pub step: &'static str,
    /// The whole operation's time budget.
    pub timeout: Duration,
    /// Secret strings that must never appear in a message.
    pub secrets: &'a [&'a str],
}

/// Replaces every occurrence of a secret (and lowercases nothing else) so a message
/// from a server or library can be passed on safely.
pub fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut out = message.trim().to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[redacted]");
    }
    out
}

/// Maps a libgit2 error (class, code, message) to a [`GitError`].
pub fn classify(
    class: ErrorClass,
    code: ErrorCode,
    message: &str,
    ctx: &ErrorContext<'_>,
) -> GitError {
    let detail = lowercase_first(&scrub(message, ctx.secrets));
    let lower = detail.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));

    if code == ErrorCode::Timeout || has(&["timed out", "timeout"]) {
        return GitError::Timeout {
            step: ctx.step,
            after: ctx.timeout,
        };
    }
    if code == ErrorCode::Auth
        || has(&[
            "authentication",
            "authenticate",
            "401",
            "403",
            "unauthorized",
            "permission denied",
            "publickey",
            "wrong passphrase",
            "unable to extract public key",
        ])
    {
        return GitError::AuthenticationFailed(detail);
    }
    if has(&[
        "404",
        "repository not found",
        "does not appear to be a git repository",
        "not a git repository",
        "could not read from remote repository",
        "project you were looking for could not be found",
    ]) {
        return GitError::RepositoryNotFound(ctx.url.to_string());
    }
    if code == ErrorCode::Certificate {
        return GitError::Network(format!("certificate verification failed: {detail}"));
    }
    if matches!(
        class,
        ErrorClass::Net | ErrorClass::Ssh | ErrorClass::Http | ErrorClass::Ssl | ErrorClass::Os
    ) || code == ErrorCode::Eof
        || has(&[
            "failed to connect",
            "connection refused",
            "could not resolve",
            "failed to resolve",
            "unexpected eof",
            "disconnect",
            "connection reset",
            "broken pipe",
        ])
    {
        return GitError::Network(detail);
    }
    GitError::Other(detail)
}

fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(secrets: &'static [&'static str]) -> ErrorContext<'static> {
        ErrorContext {
            url: "http://127.0.0.1:1234/nope.git",
            step: "fetching",
            timeout: Duration::from_secs(30),
            secrets,
        }
    }

    fn classify_msg(class: ErrorClass, code: ErrorCode, msg: &str) -> GitError {
        classify(class, code, msg, &ctx(&["s3cr3t-token"]))
    }

    #[test]
    fn messages_are_lowercase_and_clear() {
        assert_eq!(
            GitError::BranchNotFound {
                branch: "main".into()
            }
            .to_string(),
            "branch main not found"
        );
        assert_eq!(
            GitError::HostKeyMismatch {
                host: "127.0.0.1".into()
            }
            .to_string(),
            "host key mismatch for 127.0.0.1"
        );
        assert_eq!(
            GitError::Timeout {
                step: "fetching",
                after: Duration::from_secs(30)
            }
            .to_string(),
            "timed out after 30s while fetching"
        );
        assert_eq!(
            GitError::Timeout {
                step: "connecting",
                after: Duration::from_millis(1500)
            }
            .to_string(),
            "timed out after 1.5s while connecting"
        );
        assert_eq!(
            GitError::Timeout {
                step: "connecting",
                after: Duration::from_millis(200)
            }
            .to_string(),
            "timed out after 200ms while connecting"
        );
        assert!(GitError::AuthenticationFailed("x".into())
            .to_string()
            .starts_with("authentication failed"));
    }

    #[test]
    fn http_statuses() {
        let e = classify_msg(
            ErrorClass::Http,
            ErrorCode::GenericError,
            "unexpected http status code: 404",
        );
        assert_eq!(
            e,
            GitError::RepositoryNotFound("http://127.0.0.1:1234/nope.git".into())
        );
        let e = classify_msg(
            ErrorClass::Http,
            ErrorCode::Auth,
            "too many redirects or authentication replays",
        );
        assert!(matches!(e, GitError::AuthenticationFailed(_)), "{e:?}");
        let e = classify_msg(
            ErrorClass::Http,
            ErrorCode::GenericError,
            "unexpected http status code: 401",
        );
        assert!(matches!(e, GitError::AuthenticationFailed(_)), "{e:?}");
    }

    #[test]
    fn ssh_failures() {
        let e = classify_msg(
            ErrorClass::Ssh,
            ErrorCode::GenericError,
            "Failed to authenticate SSH session: Unable to extract public key from private key file: Wrong passphrase or invalid/unrecognized private key file format",
        );
        assert!(
            matches!(e, GitError::AuthenticationFailed(ref d) if d.starts_with("failed")),
            "{e:?}"
        );
        let e = classify_msg(
            ErrorClass::Ssh,
            ErrorCode::GenericError,
            "fatal: '/x.git' does not appear to be a git repository",
        );
        assert!(matches!(e, GitError::RepositoryNotFound(_)), "{e:?}");
        let e = classify_msg(
            ErrorClass::Ssh,
            ErrorCode::GenericError,
            "Timed out waiting on socket",
        );
        assert!(
            matches!(
                e,
                GitError::Timeout {
                    step: "fetching",
                    ..
                }
            ),
            "{e:?}"
        );
        let e = classify_msg(
            ErrorClass::Ssh,
            ErrorCode::GenericError,
            "failed to start SSH session: Unable to exchange encryption keys",
        );
        assert!(matches!(e, GitError::Network(_)), "{e:?}");
    }

    #[test]
    fn network_and_other() {
        let e = classify_msg(
            ErrorClass::Net,
            ErrorCode::GenericError,
            "failed to connect to 127.0.0.1: Connection refused",
        );
        assert!(matches!(e, GitError::Network(_)), "{e:?}");
        let e = classify_msg(ErrorClass::Net, ErrorCode::Timeout, "whatever");
        assert!(matches!(e, GitError::Timeout { .. }), "{e:?}");
        let e = classify_msg(ErrorClass::Odb, ErrorCode::GenericError, "Object not found");
        assert_eq!(e, GitError::Other("object not found".into()));
    }

    #[test]
    fn secrets_never_survive() {
        let e = classify_msg(
            ErrorClass::Http,
            ErrorCode::GenericError,
            "bad header s3cr3t-token",
        );
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert_eq!(
            scrub("a pw b", &["pw"]),
            "a pw b",
            "too short to scrub safely"
        );
        assert_eq!(scrub(" x hunter22 ", &["hunter22"]), "x [redacted]");
    }
}
