//! From a resolved credential to the way git authenticates: which secret kinds fit
//! which protocol, and the formats credentials documents (an SSH key is the bare key
//! text or `{"private_key": "...", "passphrase": "..."}` with pinned `known_hosts`
//! in its attributes; a token's username comes from its `username` attribute or the
//! provider's convention). Pure.

use crate::git::GitAuth;
use backflow_platform::credentials_client::ResolvedSecret;
use backflow_proto::credentials::v1::SecretKind;
use backflow_proto::gitsync::v1 as pb;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("credential kind {kind:?} cannot be used with the {protocol} protocol")]
    WrongKind {
        kind: SecretKind,
        protocol: &'static str,
    },
    #[error("ssh credential has no pinned host keys (attribute known_hosts)")]
    NoKnownHosts,
    #[error("credential material is not valid utf-8 text")]
    NotText,
}

pub fn auth_from_app_token(token: String) -> GitAuth {
    GitAuth::Token {
        username: "x-access-token".into(),
        token,
    }
}

pub fn auth_from_secret(
    secret: &ResolvedSecret,
    protocol: i32,
    provider: i32,
    repository_url: &str,
) -> Result<GitAuth, AuthError> {
    let text = String::from_utf8(secret.material.clone()).map_err(|_| AuthError::NotText)?;
    let is_ssh = protocol == pb::GitProtocol::Ssh as i32;
    match (secret.kind, is_ssh) {
        (SecretKind::SshPrivateKey, true) => {
            let known_hosts = secret
                .attributes
                .get("known_hosts")
                .filter(|hosts| !hosts.trim().is_empty())
                .ok_or(AuthError::NoKnownHosts)?
                .clone();
            let (private_key, passphrase) = split_key_envelope(&text);
            Ok(GitAuth::SshKey {
                username: ssh_username(repository_url),
                private_key,
                passphrase,
                known_hosts,
            })
        }
        (SecretKind::GitToken, false) => Ok(GitAuth::Token {
            username: secret
                .attributes
                .get("username")
                .filter(|name| !name.is_empty())
                .cloned()
                .unwrap_or_else(|| token_username(provider).to_string()),
            token: text.trim().to_string(),
        }),
        (kind, is_ssh) => Err(AuthError::WrongKind {
            kind,
            protocol: if is_ssh { "ssh" } else { "https" },
        }),
    }
}

/// The bare key, or the JSON envelope carrying a passphrase.
fn split_key_envelope(text: &str) -> (String, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        private_key: String,
        #[serde(default)]
        passphrase: Option<String>,
    }
    match serde_json::from_str::<Envelope>(text.trim()) {
        Ok(envelope) => (
            envelope.private_key,
            envelope.passphrase.filter(|p| !p.is_empty()),
        ),
        Err(_) => (text.to_string(), None),
    }
}

/// `ssh://user@host/…` and `user@host:…` name their user; otherwise `git`.
pub fn ssh_username(url: &str) -> String {
    let rest = url.strip_prefix("ssh://").unwrap_or(url);
    rest.split_once('@')
        .map(|(user, _)| user)
        .filter(|user| !user.is_empty() && !user.contains('/') && !user.contains(':'))
        .unwrap_or("git")
        .to_string()
}

fn token_username(provider: i32) -> &'static str {
    match pb::GitProvider::try_from(provider) {
        Ok(pb::GitProvider::Gitlab) => "oauth2",
        Ok(pb::GitProvider::Bitbucket) => "x-token-auth",
        _ => "x-access-token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn secret(kind: SecretKind, material: &str, attributes: &[(&str, &str)]) -> ResolvedSecret {
        ResolvedSecret {
            kind,
            material: material.as_bytes().to_vec(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    const SSH: i32 = pb::GitProtocol::Ssh as i32;
    const HTTPS: i32 = pb::GitProtocol::Https as i32;
    const GITLAB: i32 = pb::GitProvider::Gitlab as i32;

    #[test]
    fn ssh_keys_need_pinned_hosts_and_take_the_url_user() {
        let key = secret(
            SecretKind::SshPrivateKey,
            "KEY",
            &[("known_hosts", "host ssh-ed25519 AAAA")],
        );
        match auth_from_secret(&key, SSH, GITLAB, "ssh://deploy@host:22/repo.git") {
            Ok(GitAuth::SshKey {
                username,
                passphrase,
                ..
            }) => {
                assert_eq!(username, "deploy");
                assert_eq!(passphrase, None);
            }
            _ => panic!("expected ssh auth"),
        }
        let unpinned = secret(SecretKind::SshPrivateKey, "KEY", &[]);
        assert_eq!(
            auth_from_secret(&unpinned, SSH, GITLAB, "git@host:r.git").err(),
            Some(AuthError::NoKnownHosts)
        );
    }

    #[test]
    fn passphrase_envelope() {
        let (key, passphrase) = split_key_envelope(r#"{"private_key":"K","passphrase":"p"}"#);
        assert_eq!((key.as_str(), passphrase.as_deref()), ("K", Some("p")));
    }

    #[test]
    fn tokens_use_the_provider_convention() {
        let token = secret(SecretKind::GitToken, "glpat-1\n", &[]);
        match auth_from_secret(&token, HTTPS, GITLAB, "https://gitlab.com/a/b.git") {
            Ok(GitAuth::Token { username, token }) => {
                assert_eq!(username, "oauth2");
                assert_eq!(token, "glpat-1");
            }
            _ => panic!("expected token auth"),
        }
        assert!(matches!(
            auth_from_secret(&token, SSH, GITLAB, "git@gitlab.com:a/b.git"),
            Err(AuthError::WrongKind { .. })
        ));
    }

    #[test]
    fn usernames_from_urls() {
        assert_eq!(ssh_username("git@github.com:a/b.git"), "git");
        assert_eq!(ssh_username("ssh://root@127.0.0.1:2222/srv/r.git"), "root");
        assert_eq!(ssh_username("ssh://127.0.0.1/srv/r.git"), "git");
    }
}
