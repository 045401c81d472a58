//! Push webhooks from GitHub, GitLab and Bitbucket: signature verification over the raw
//! body (in constant time, before anything is parsed) and extraction of the pushed
//! branch and commit. Pure; the HTTP edge is in `http.rs`.

use backflow_proto::gitsync::v1 as pb;
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing signature header {0}")]
    MissingSignature(&'static str),
    #[error("signature does not match")]
    BadSignature,
    #[error("body is not valid json: {0}")]
    InvalidBody(String),
}

/// A verified push: which branch moved, to which commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub branch: String,
    pub after: String,
}

/// Header lookup, case-insensitive, provided by the HTTP edge.
pub trait Headers {
    fn get(&self, name: &str) -> Option<&str>;
}

/// Verifies the delivery for the connection's provider.
/// - GitHub: `X-Hub-Signature-256: sha256=<hex hmac>`
/// - GitLab: `X-Gitlab-Token: <secret>`
/// - Bitbucket Cloud: `X-Hub-Signature: sha256=<hex hmac>`
pub fn verify(
    provider: i32,
    headers: &impl Headers,
    body: &[u8],
    secret: &[u8],
) -> Result<(), WebhookError> {
    match pb::GitProvider::try_from(provider) {
        Ok(pb::GitProvider::Gitlab) => {
            let token = headers
                .get("x-gitlab-token")
                .ok_or(WebhookError::MissingSignature("X-Gitlab-Token"))?;
            constant_time_equal(token.as_bytes(), secret)
        }
        Ok(pb::GitProvider::Bitbucket) => {
            let header = headers
                .get("x-hub-signature")
                .ok_or(WebhookError::MissingSignature("X-Hub-Signature"))?;
            verify_hmac_sha256(header, body, secret)
        }
        _ => {
            let header = headers
                .get("x-hub-signature-256")
                .ok_or(WebhookError::MissingSignature("X-Hub-Signature-256"))?;
            verify_hmac_sha256(header, body, secret)
        }
    }
}

fn verify_hmac_sha256(header: &str, body: &[u8], secret: &[u8]) -> Result<(), WebhookError> {
    let hex_signature = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(WebhookError::BadSignature)?;
    backflow_platform::webhook_signature::verify_hmac_sha256_hex(secret, body, hex_signature)
        .map_err(|_| WebhookError::BadSignature)
}

fn constant_time_equal(given: &[u8], expected: &[u8]) -> Result<(), WebhookError> {
    if given.len() == expected.len() && bool::from(given.ct_eq(expected)) {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

/// The push in a verified body, or `None` for deliveries that are not branch pushes
/// (pings, tag pushes, branch deletions).
pub fn parse_push(provider: i32, body: &[u8]) -> Result<Option<Push>, WebhookError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| WebhookError::InvalidBody(err.to_string()))?;
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let push = match pb::GitProvider::try_from(provider) {
        Ok(pb::GitProvider::Bitbucket) => bitbucket_push(&value),
        Ok(pb::GitProvider::Gitlab) => match (text("/ref"), text("/checkout_sha")) {
            (Some(reference), Some(after)) => {
                branch_of(&reference).map(|branch| Push { branch, after })
            }
            _ => None,
        },
        _ => match (text("/ref"), text("/after")) {
            (Some(reference), Some(after)) => {
                branch_of(&reference).map(|branch| Push { branch, after })
            }
            _ => None,
        },
    };
    Ok(push.filter(|push| !push.after.is_empty() && push.after.chars().any(|c| c != '0')))
}

fn bitbucket_push(value: &serde_json::Value) -> Option<Push> {
    let changes = value.pointer("/push/changes")?.as_array()?;
    changes.iter().rev().find_map(|change| {
        let new = change.get("new")?;
        if new.get("type")?.as_str()? != "branch" {
            return None;
        }
        Some(Push {
            branch: new.get("name")?.as_str()?.to_string(),
            after: new.pointer("/target/hash")?.as_str()?.to_string(),
        })
    })
}

fn branch_of(reference: &str) -> Option<String> {
    reference.strip_prefix("refs/heads/").map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<String, String>);
    impl Headers for Map {
        fn get(&self, name: &str) -> Option<&str> {
            self.0.get(name).map(String::as_str)
        }
    }
    fn headers(pairs: &[(&str, &str)]) -> Map {
        Map(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    const GITHUB: i32 = pb::GitProvider::Github as i32;

    #[test]
    fn github_documented_test_vector() {
        // From GitHub's "Validating webhook deliveries".
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let body = b"Hello, World!";
        let secret = b"It's a Secret to Everybody";
        assert!(verify(
            GITHUB,
            &headers(&[("x-hub-signature-256", signature)]),
            body,
            secret
        )
        .is_ok());
        assert_eq!(
            verify(
                GITHUB,
                &headers(&[("x-hub-signature-256", signature)]),
                b"Hello, World?",
                secret
            ),
            Err(WebhookError::BadSignature)
        );
        assert!(verify(GITHUB, &headers(&[]), body, secret).is_err());
    }

    #[test]
    fn gitlab_token_must_match_exactly() {
        let gitlab = pb::GitProvider::Gitlab as i32;
        assert!(verify(
            gitlab,
            &headers(&[("x-gitlab-token", "s3cret")]),
            b"{}",
            b"s3cret"
        )
        .is_ok());
        assert!(verify(
            gitlab,
            &headers(&[("x-gitlab-token", "s3cre")]),
            b"{}",
            b"s3cret"
        )
        .is_err());
    }

    #[test]
    fn parses_the_fixture_push() {
        let body = include_bytes!("../../../fixtures/payloads/github-push.json");
        let push = parse_push(GITHUB, body)
            .expect("json")
            .expect("a branch push");
        assert!(!push.branch.is_empty());
        assert_eq!(push.after.len(), 40);
    }

    #[test]
    fn ignores_deletions_and_tags() {
        let deleted =
            br#"{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000"}"#;
        assert_eq!(parse_push(GITHUB, deleted).expect("json"), None);
        let tag = br#"{"ref":"refs/tags/v1","after":"abc"}"#;
        assert_eq!(parse_push(GITHUB, tag).expect("json"), None);
    }

    #[test]
    fn bitbucket_changes() {
        let body = br#"{"push":{"changes":[{"new":{"type":"branch","name":"main","target":{"hash":"abc123"}}}]}}"#;
        let push = parse_push(pb::GitProvider::Bitbucket as i32, body).expect("json");
        assert_eq!(
            push,
            Some(Push {
                branch: "main".into(),
                after: "abc123".into()
            })
        );
    }
}
