//! Repository URLs as the transport layer needs them.
//!
//! Host key pinning needs the host and port a URL really connects to (OpenSSH keys
//! `[host]:port` entries by both), errors need a form of the URL that is safe to show,
//! and a connection must never smuggle a password inside its URL: credentials live in
//! the credentials service and reach libgit2 only through the credentials callback.

use super::errors::GitError;

/// The transports Backflow will talk to. Local paths and `file://` are refused so a
/// connection cannot read repositories off the service's own disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ssh,
    Https,
    Http,
}

/// The parts of a remote URL that matter for authentication and host checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    pub scheme: Scheme,
    /// Host without brackets, lowercased.
    pub host: String,
    pub port: u16,
    /// User name embedded in the URL (`git@` in `git@github.com:org/repo.git`).
    pub username: Option<String>,
}

impl RemoteUrl {
    /// Parses `ssh://`, `https://`, `http://` and scp-like `user@host:path` URLs.
    pub fn parse(url: &str) -> Result<Self, GitError> {
        let invalid = |why: &str| GitError::Other(format!("invalid repository url: {why}"));
        if url.trim() != url || url.is_empty() {
            return Err(invalid("empty or surrounded by whitespace"));
        }
        if url.chars().any(char::is_control) {
            return Err(invalid("contains control characters"));
        }
        let (scheme, rest, scp_like) = if let Some((scheme, rest)) = url.split_once("://") {
            let scheme = match scheme.to_ascii_lowercase().as_str() {
                "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
                "https" => Scheme::Https,
                "http" => Scheme::Http,
                other => return Err(invalid(&format!("unsupported scheme {other}"))),
            };
            (scheme, rest, false)
        } else if url.starts_with('/') || url.starts_with('.') {
            return Err(invalid("local paths are not supported"));
        } else {
            (Scheme::Ssh, url, true)
        };

        // authority = everything before the path
        let authority = if scp_like {
            scp_authority(rest).ok_or_else(|| invalid("expected user@host:path"))?
        } else {
            rest.split('/').next().unwrap_or_default()
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        let username = match userinfo {
            Some(info) if info.contains(':') => {
                return Err(invalid(
                    "credentials must not be embedded in the url; store them as a credential",
                ))
            }
            Some("") => return Err(invalid("empty user name")),
            Some(user) => Some(user.to_string()),
            None => None,
        };
        let default_port = match scheme {
            Scheme::Ssh => 22,
            Scheme::Https => 443,
            Scheme::Http => 80,
        };
        let (host, port) = if scp_like {
            (hostport.trim_start_matches('[').trim_end_matches(']'), None)
        } else {
            split_host_port(hostport).ok_or_else(|| invalid("malformed host or port"))?
        };
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(default_port),
            username,
        })
    }
}

/// `user@host:path` → `user@host`; `[user@host]:path` and `[::1]:path` are accepted.
fn scp_authority(rest: &str) -> Option<&str> {
    if let Some(bracketed) = rest.strip_prefix('[') {
        let end = bracketed.find(']')?;
        bracketed.get(end + 1..)?.strip_prefix(':')?;
        return rest.get(..end + 2);
    }
    let colon = rest.find(':')?;
    let slash = rest.find('/').unwrap_or(usize::MAX);
    (colon < slash).then(|| &rest[..colon])
}

fn split_host_port(hostport: &str) -> Option<(&str, Option<u16>)> {
    if let Some(inner) = hostport.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match hostport.split_once(':') {
        Some((host, "")) => Some((host, None)),
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((hostport, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> RemoteUrl {
        RemoteUrl::parse(url).unwrap()
    }

    #[test]
    fn ssh_urls_with_ports_and_users() {
        let u = parse("ssh://root@127.0.0.1:2222/srv/repo.git");
        assert_eq!(u.scheme, Scheme::Ssh);
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 2222));
        assert_eq!(u.username.as_deref(), Some("root"));
        let u = parse("ssh://Example.COM/repo.git");
        assert_eq!(
            (u.host.as_str(), u.port, u.username),
            ("example.com", 22, None)
        );
        let u = parse("ssh://git@[::1]:2200/r.git");
        assert_eq!((u.host.as_str(), u.port), ("::1", 2200));
    }

    #[test]
    fn scp_like_urls() {
        let u = parse("git@github.com:acme/dbt.git");
        assert_eq!(u.scheme, Scheme::Ssh);
        assert_eq!((u.host.as_str(), u.port), ("github.com", 22));
        assert_eq!(u.username.as_deref(), Some("git"));
        let u = parse("gitlab.example.com:group/sub/repo.git");
        assert_eq!(u.username, None);
        assert_eq!(u.host, "gitlab.example.com");
    }

    #[test]
    fn https_and_http_default_ports() {
        let u = parse("https://github.com/acme/dbt.git");
        assert_eq!((u.scheme, u.port), (Scheme::Https, 443));
        let u = parse("http://127.0.0.1:8080/repo.git");
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Http, "127.0.0.1", 8080)
        );
        let u = parse("https://x-access-token@github.com/a/b.git");
        assert_eq!(u.username.as_deref(), Some("x-access-token"));
    }

    #[test]
    fn refuses_embedded_passwords_local_paths_and_odd_schemes() {
        for bad in [
            "https://user:secret@github.com/a/b.git",
            "/srv/repo.git",
            "./repo",
            "file:///srv/repo.git",
            "ftp://host/repo",
            "https://host:notaport/a",
            "",
            " https://github.com/a/b",
            "no-colon-or-scheme",
        ] {
            let err = RemoteUrl::parse(bad).unwrap_err();
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }
}
