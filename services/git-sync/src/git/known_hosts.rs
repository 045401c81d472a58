//! Pinned SSH host keys in OpenSSH `known_hosts` form.
//!
//! A Git connection over SSH carries the host keys its owner trusts, pasted from
//! `ssh-keyscan` or their own `~/.ssh/known_hosts`. This module parses those lines and
//! answers one question for the certificate callback: is the key this server just
//! presented one of the keys pinned for this host and port? There is no "accept new
//! host" path: a host without a pinned key is refused like a host with a wrong one.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The default SSH port; entries for it are written as a bare host name.
pub const DEFAULT_SSH_PORT: u16 = 22;

/// A parse failure, with the 1-based line number it happened on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("known_hosts line {line}: {reason}")]
pub struct KnownHostsError {
    pub line: usize,
    pub reason: String,
}

/// What the pinned keys say about a presented host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyVerdict {
    /// A pinned entry for this host holds exactly this key.
    Trusted,
    /// The host has pinned keys, but none of them is this one.
    Mismatch,
    /// No pinned key names this host.
    Unknown,
    /// The key is marked `@revoked`.
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
enum Hosts {
    /// Comma-separated patterns, lowercased; `!` negates, `*` and `?` are wildcards.
    Patterns(Vec<String>),
    /// `|1|salt|hash`: HMAC-SHA1 of the host name keyed by the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    key_type: String,
    key: Vec<u8>,
}

/// A parsed set of pinned host keys.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Parses OpenSSH `known_hosts` text. Blank lines and `#` comments are skipped;
    /// any other malformed line is an error, because a silently dropped pin would
    /// turn into a confusing "unknown host" later.
    pub fn parse(text: &str) -> Result<Self, KnownHostsError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |reason: &str| KnownHostsError {
                line: index + 1,
                reason: reason.to_string(),
            };
            let mut fields = line.split_whitespace();
            let mut first = fields.next().ok_or_else(|| fail("empty line"))?;
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                m if m.starts_with('@') => return Err(fail("unknown marker")),
                _ => Marker::None,
            };
            if marker != Marker::None {
                first = fields.next().ok_or_else(|| fail("missing host pattern"))?;
            }
            let hosts = parse_hosts(first).map_err(&fail)?;
            let key_type = fields.next().ok_or_else(|| fail("missing key type"))?;
            let encoded = fields.next().ok_or_else(|| fail("missing key"))?;
            let key = STANDARD
                .decode(encoded)
                .map_err(|_| fail("key is not valid base64"))?;
            if blob_key_type(&key) != Some(key_type) {
                return Err(fail("key type does not match the encoded key"));
            }
            entries.push(Entry {
                marker,
                hosts,
                key_type: key_type.to_string(),
                key,
            });
        }
        Ok(Self { entries })
    }

    /// Number of usable entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entry was parsed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks a host key blob (SSH wire format, as libssh2 reports it) presented by
    /// `host` on `port` against the pinned entries.
    pub fn verify(&self, host: &str, port: u16, key: &[u8]) -> HostKeyVerdict {
        let name = lookup_name(host, port);
        let Some(key_type) = blob_key_type(key) else {
            return HostKeyVerdict::Mismatch;
        };
        let same_key = |e: &Entry| e.key_type == key_type && e.key == key;
        if self
            .entries
            .iter()
            .any(|e| e.marker == Marker::Revoked && same_key(e))
        {
            return HostKeyVerdict::Revoked;
        }
        let mut known = false;
        for entry in self
            .entries
            .iter()
            .filter(|e| e.marker == Marker::None && e.hosts.matches(&name))
        {
            if same_key(entry) {
                return HostKeyVerdict::Trusted;
            }
            known = true;
        }
        if known {
            HostKeyVerdict::Mismatch
        } else {
            HostKeyVerdict::Unknown
        }
    }
}

/// The name OpenSSH looks up for a host: bare for port 22, `[host]:port` otherwise.
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == DEFAULT_SSH_PORT {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The key type named at the start of an SSH public key blob (`string type, ...`).
pub fn blob_key_type(blob: &[u8]) -> Option<&str> {
    let len_bytes: [u8; 4] = blob.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).ok()?;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    std::str::from_utf8(name).ok()
}

fn parse_hosts(field: &str) -> Result<Hosts, &'static str> {
    if let Some(rest) = field.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|').ok_or("malformed hashed host")?;
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| "malformed hashed host salt")?;
        let hash = STANDARD
            .decode(hash)
            .map_err(|_| "malformed hashed host hash")?;
        return Ok(Hosts::Hashed { salt, hash });
    }
    let patterns: Vec<String> = field
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.to_ascii_lowercase())
        .collect();
    if patterns.is_empty() {
        return Err("missing host pattern");
    }
    Ok(Hosts::Patterns(patterns))
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut matched = false;
                for pattern in patterns {
                    if let Some(negated) = pattern.strip_prefix('!') {
                        if wildcard_match(negated.as_bytes(), name.as_bytes()) {
                            return false;
                        }
                    } else if wildcard_match(pattern.as_bytes(), name.as_bytes()) {
                        matched = true;
                    }
                }
                matched
            }
        }
    }
}

/// OpenSSH-style glob: `*` matches any run, `?` one character.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut out = (kind.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(body);
        out
    }

    fn line(hosts: &str, kind: &str, body: &[u8]) -> String {
        format!("{hosts} {kind} {}", STANDARD.encode(blob(kind, body)))
    }

    #[test]
    fn trusts_exact_key_for_plain_host_on_port_22() {
        let kh = KnownHosts::parse(&line("github.com", "ssh-ed25519", b"k1")).unwrap();
        let key = blob("ssh-ed25519", b"k1");
        assert_eq!(kh.verify("github.com", 22, &key), HostKeyVerdict::Trusted);
        assert_eq!(kh.verify("GitHub.com", 22, &key), HostKeyVerdict::Trusted);
        assert_eq!(kh.verify("github.com", 2222, &key), HostKeyVerdict::Unknown);
        assert_eq!(kh.verify("gitlab.com", 22, &key), HostKeyVerdict::Unknown);
    }

    #[test]
    fn bracketed_port_form_and_comma_lists() {
        let text = format!(
            "# pinned\n\n{}\n",
            line("[127.0.0.1]:2222,[localhost]:2222", "ssh-ed25519", b"k1")
        );
        let kh = KnownHosts::parse(&text).unwrap();
        assert_eq!(kh.len(), 1);
        let key = blob("ssh-ed25519", b"k1");
        assert_eq!(kh.verify("127.0.0.1", 2222, &key), HostKeyVerdict::Trusted);
        assert_eq!(kh.verify("localhost", 2222, &key), HostKeyVerdict::Trusted);
        assert_eq!(kh.verify("127.0.0.1", 22, &key), HostKeyVerdict::Unknown);
    }

    #[test]
    fn other_key_or_other_type_is_a_mismatch() {
        let kh = KnownHosts::parse(&line("h", "ssh-ed25519", b"k1")).unwrap();
        assert_eq!(
            kh.verify("h", 22, &blob("ssh-ed25519", b"k2")),
            HostKeyVerdict::Mismatch
        );
        assert_eq!(
            kh.verify("h", 22, &blob("ecdsa-sha2-nistp256", b"k1")),
            HostKeyVerdict::Mismatch
        );
        assert_eq!(kh.verify("h", 22, b"\x00"), HostKeyVerdict::Mismatch);
    }

    #[test]
    fn any_of_several_pins_for_a_host_is_trusted() {
        let text = format!(
            "{}\n{}",
            line("h", "ssh-rsa", b"r"),
            line("h", "ssh-ed25519", b"e")
        );
        let kh = KnownHosts::parse(&text).unwrap();
        assert_eq!(
            kh.verify("h", 22, &blob("ssh-ed25519", b"e")),
            HostKeyVerdict::Trusted
        );
    }

    #[test]
    fn wildcards_and_negation() {
        let text = line("*.example.com,!bad.example.com", "ssh-ed25519", b"k");
        let kh = KnownHosts::parse(&text).unwrap();
        let key = blob("ssh-ed25519", b"k");
        assert_eq!(
            kh.verify("git.example.com", 22, &key),
            HostKeyVerdict::Trusted
        );
        assert_eq!(
            kh.verify("bad.example.com", 22, &key),
            HostKeyVerdict::Unknown
        );
        assert!(wildcard_match(b"g?t*", b"git.x"));
        assert!(!wildcard_match(b"g?t", b"gt"));
    }

    #[test]
    fn hashed_hosts_match_by_hmac() {
        let salt = b"0123456789abcdefghij".to_vec();
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"[10.0.0.1]:2200");
        let hash = mac.finalize().into_bytes();
        let hosts = format!("|1|{}|{}", STANDARD.encode(&salt), STANDARD.encode(hash));
        let kh = KnownHosts::parse(&line(&hosts, "ssh-ed25519", b"k")).unwrap();
        let key = blob("ssh-ed25519", b"k");
        assert_eq!(kh.verify("10.0.0.1", 2200, &key), HostKeyVerdict::Trusted);
        assert_eq!(kh.verify("10.0.0.1", 22, &key), HostKeyVerdict::Unknown);
    }

    #[test]
    fn revoked_and_cert_authority_markers() {
        let text = format!(
            "@revoked * {}\n@cert-authority *.corp {}\n{}",
            line("", "ssh-ed25519", b"bad").trim(),
            line("", "ssh-ed25519", b"ca").trim(),
            line("h", "ssh-ed25519", b"bad")
        );
        let kh = KnownHosts::parse(&text).unwrap();
        assert_eq!(
            kh.verify("h", 22, &blob("ssh-ed25519", b"bad")),
            HostKeyVerdict::Revoked
        );
        // a CA line is not a host key pin
        assert_eq!(
            kh.verify("x.corp", 22, &blob("ssh-ed25519", b"ca")),
            HostKeyVerdict::Unknown
        );
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let err = KnownHosts::parse("# c\nhost ssh-ed25519 !!!").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().contains("base64"), "{err}");
        let wrong_type = format!("h ssh-rsa {}", STANDARD.encode(blob("ssh-ed25519", b"k")));
        assert!(KnownHosts::parse(&wrong_type).is_err());
        assert!(KnownHosts::parse("h ssh-ed25519").is_err());
        assert!(KnownHosts::parse("@bogus h ssh-ed25519 AAAA").is_err());
        assert!(KnownHosts::parse("").unwrap().is_empty());
    }

    #[test]
    fn lookup_names_follow_openssh() {
        assert_eq!(lookup_name("Host", 22), "host");
        assert_eq!(lookup_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
        assert_eq!(blob_key_type(&blob("ssh-rsa", b"x")), Some("ssh-rsa"));
        assert_eq!(blob_key_type(b"\x00\x00\x00\x09ab"), None);
    }
}
