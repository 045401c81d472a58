//! SSH private keys as git-sync will use them: the material is the key text,
//! optionally wrapped with its passphrase in a small JSON envelope, and the
//! `known_hosts` attribute pins the server keys. Checking here, at create and
//! rotate, turns a pasted public key, a truncated PEM block or a wrong
//! passphrase into a clear error instead of a failed clone later.
//!
//! Accepted key encodings: OpenSSH (`BEGIN OPENSSH PRIVATE KEY`, plain or
//! passphrase-protected), PEM PKCS#1 (`BEGIN RSA PRIVATE KEY`), PEM SEC1
//! (`BEGIN EC PRIVATE KEY`), both optionally with legacy `Proc-Type: 4,ENCRYPTED`
//! encryption, and PKCS#8 (`BEGIN PRIVATE KEY`, `BEGIN ENCRYPTED PRIVATE KEY`).
//! Algorithms: ed25519, RSA, ECDSA on P-256, P-384 and P-521.

use super::pem::{PemBlock, PemError};
use rsa::pkcs1::DecodeRsaPrivateKey;
use serde::Deserialize;
use ssh_key::known_hosts::Entry;
use ssh_key::{Algorithm, EcdsaCurve};

const RSA_OID: &str = "1.2.840.113549.1.1.1";
const EC_OID: &str = "1.2.840.10045.2.1";
const ED25519_OID: &str = "1.3.101.112";
const P256_OID: &str = "1.2.840.10045.3.1.7";
const P384_OID: &str = "1.3.132.0.34";
const P521_OID: &str = "1.3.132.0.35";

/// The material of an SSH key secret, split into key text and passphrase.
pub struct SshKeyMaterial {
    pub private_key: String,
    pub passphrase: Option<String>,
}

impl std::fmt::Debug for SshKeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshKeyMaterial")
            .field("passphrase", &self.passphrase.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    private_key: String,
    #[serde(default)]
    passphrase: Option<String>,
}

/// Reads the material: either the bare key text, or
/// `{"private_key": "<key text>", "passphrase": "<passphrase>"}`.
pub fn parse_material(material: &[u8]) -> Result<SshKeyMaterial, String> {
    let text = std::str::from_utf8(material)
        .map_err(|_| "ssh private key: material is not utf-8 text".to_string())?;
    if !text.trim_start().starts_with('{') {
        return Ok(SshKeyMaterial {
            private_key: text.to_string(),
            passphrase: None,
        });
    }
    // serde's messages can quote input, so none of them is passed on.
    let envelope: Envelope = serde_json::from_str(text).map_err(|_| {
        "ssh private key: json material must be {\"private_key\": \"...\", \"passphrase\": \"...\"}"
            .to_string()
    })?;
    Ok(SshKeyMaterial {
        private_key: envelope.private_key,
        passphrase: envelope
            .passphrase
            .filter(|passphrase| !passphrase.is_empty()),
    })
}

/// Checks that the key parses (and decrypts with the passphrase); returns its
/// algorithm as `ed25519`, `rsa`, `ecdsa-p256`, `ecdsa-p384` or `ecdsa-p521`.
pub fn check_private_key(key: &SshKeyMaterial) -> Result<&'static str, String> {
    let text = key.private_key.trim();
    let passphrase = key.passphrase.as_deref();
    if text.starts_with("ssh-") || text.starts_with("ecdsa-") || text.contains("PUBLIC KEY-----") {
        return Err("ssh private key: this is a public key; the private key is required".into());
    }
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return check_openssh(text, passphrase);
    }
    let block = PemBlock::parse(text).map_err(|err| format!("ssh private key: {err}"))?;
    let fail = |err: PemError| format!("ssh private key: {err}");
    match block.label.as_str() {
        "RSA PRIVATE KEY" => {
            check_rsa_pkcs1(&block.plain_der(passphrase).map_err(fail)?)
        }
        "EC PRIVATE KEY" => check_sec1(&block.plain_der(passphrase).map_err(fail)?, None),
        "PRIVATE KEY" => check_pkcs8(&block.der),
        "ENCRYPTED PRIVATE KEY" => {
            let passphrase = passphrase.ok_or_else(|| fail(PemError::PassphraseRequired))?;
            let info = pkcs8::EncryptedPrivateKeyInfo::try_from(block.der.as_slice())
                .map_err(|_| "ssh private key: encrypted pkcs#8 key does not parse".to_string())?;
            let plain = info
                .decrypt(passphrase)
                .map_err(|_| fail(PemError::WrongPassphrase))?;
            check_pkcs8(plain.as_bytes())
        }
        other => Err(format!(
            "ssh private key: unsupported pem block {other:?}; expected OPENSSH PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY"
        )),
    }
}

/// An `openssh-key-v1` container whose public key is `ecdsa-sha2-nistp521`.
fn is_openssh_p521_container(text: &str) -> bool {
    use base64::Engine as _;
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::trim)
        .collect();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(body) else {
        return false;
    };
    let magic = b"openssh-key-v1\0";
    let declared = b"ecdsa-sha2-nistp521";
    bytes.starts_with(magic)
        && bytes
            .windows(declared.len())
            .any(|window| window == declared)
}

fn check_openssh(text: &str, passphrase: Option<&str>) -> Result<&'static str, String> {
    let key = match ssh_key::PrivateKey::from_openssh(text) {
        Ok(key) => key,
        // ssh-key rejects P-521 keys whose private scalar OpenSSH wrote with a
        // stripped leading zero (about one key in a hundred); git's libssh2 reads
        // them, so accept a well-formed container that declares nistp521.
        Err(_) if is_openssh_p521_container(text) => return Ok("ecdsa-p521"),
        Err(_) => return Err("ssh private key: the openssh key does not parse".to_string()),
    };
    let algorithm = match key.algorithm() {
        Algorithm::Ed25519 => "ed25519",
        Algorithm::Rsa { .. } => "rsa",
        Algorithm::Ecdsa { curve } => match curve {
            EcdsaCurve::NistP256 => "ecdsa-p256",
            EcdsaCurve::NistP384 => "ecdsa-p384",
            EcdsaCurve::NistP521 => "ecdsa-p521",
        },
        other => {
            return Err(format!(
                "ssh private key: unsupported algorithm {}; use ed25519, rsa or ecdsa",
                other.as_str()
            ))
        }
    };
    if key.is_encrypted() {
        let passphrase = passphrase
            .ok_or_else(|| format!("ssh private key: {}", PemError::PassphraseRequired))?;
        key.decrypt(passphrase)
            .map_err(|_| format!("ssh private key: {}", PemError::WrongPassphrase))?;
    }
    Ok(algorithm)
}

fn check_rsa_pkcs1(der: &[u8]) -> Result<&'static str, String> {
    rsa::RsaPrivateKey::from_pkcs1_der(der)
        .map(|_| "rsa")
        .map_err(|_| "ssh private key: the rsa key does not parse".to_string())
}

/// A SEC1 `ECPrivateKey`; `curve` comes from the PKCS#8 wrapper when there is one.
fn check_sec1(der: &[u8], curve: Option<String>) -> Result<&'static str, String> {
    let key = sec1::EcPrivateKey::try_from(der)
        .map_err(|_| "ssh private key: the ec key does not parse".to_string())?;
    let curve = curve
        .or_else(|| {
            key.parameters
                .and_then(|parameters| parameters.named_curve())
                .map(|oid| oid.to_string())
        })
        .unwrap_or_default();
    let scalar = key.private_key;
    let valid = match curve.as_str() {
        P256_OID => p256::SecretKey::from_slice(scalar)
            .is_ok()
            .then_some("ecdsa-p256"),
        P384_OID => p384::SecretKey::from_slice(scalar)
            .is_ok()
            .then_some("ecdsa-p384"),
        P521_OID => (scalar.len() == 66).then_some("ecdsa-p521"),
        _ => {
            return Err(
                "ssh private key: unsupported ec curve; use P-256, P-384 or P-521".to_string(),
            )
        }
    };
    valid.ok_or_else(|| "ssh private key: the ec key is invalid".to_string())
}

fn check_pkcs8(der: &[u8]) -> Result<&'static str, String> {
    let info = pkcs8::PrivateKeyInfo::try_from(der)
        .map_err(|_| "ssh private key: the pkcs#8 key does not parse".to_string())?;
    match info.algorithm.oid.to_string().as_str() {
        RSA_OID => check_rsa_pkcs1(info.private_key),
        EC_OID => {
            let curve = info
                .algorithm
                .parameters_oid()
                .map(|oid| oid.to_string())
                .ok();
            check_sec1(info.private_key, curve)
        }
        // The seed, as a DER OCTET STRING of 32 bytes.
        ED25519_OID => match info.private_key {
            [0x04, 0x20, seed @ ..] if seed.len() == 32 => Ok("ed25519"),
            _ => Err("ssh private key: the ed25519 key is invalid".to_string()),
        },
        _ => Err("ssh private key: unsupported pkcs#8 algorithm; use ed25519, rsa or ecdsa".into()),
    }
}

/// Checks a `known_hosts` attribute: OpenSSH lines `host[,host...] key-type base64`
/// (hosts may be `[host]:port` or hashed `|1|...`; `@cert-authority` / `@revoked`
/// markers allowed; `#` comments and blank lines ignored). Returns the entry count.
pub fn check_known_hosts(text: &str) -> Result<usize, String> {
    let mut entries = 0;
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        line.parse::<Entry>().map_err(|_| {
            format!(
                "known_hosts line {}: expected `host[,host] key-type base64-key` (e.g. `[127.0.0.1]:2222 ssh-ed25519 AAAA...`)",
                index + 1
            )
        })?;
        entries += 1;
    }
    if entries == 0 {
        return Err(
            "known_hosts has no host key; pin the server's host keys (ssh-keyscan output)".into(),
        );
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn material_is_bare_or_json() {
        let bare = parse_material(b"-----BEGIN OPENSSH PRIVATE KEY-----").unwrap();
        assert!(bare.passphrase.is_none());
        let json = parse_material(br#"{"private_key": "k", "passphrase": "p"}"#).unwrap();
        assert_eq!(
            (json.private_key.as_str(), json.passphrase.as_deref()),
            ("k", Some("p"))
        );
        let empty = parse_material(br#"{"private_key": "k", "passphrase": ""}"#).unwrap();
        assert!(empty.passphrase.is_none());
        let err = parse_material(br#"{"private_key": "k", "secret-word": "hunter2"}"#).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(parse_material(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn public_keys_and_junk_are_refused_without_echo() {
        let public = SshKeyMaterial {
            private_key: HOST.split_once(' ').unwrap().1.into(),
            passphrase: None,
        };
        assert!(check_private_key(&public)
            .unwrap_err()
            .contains("public key"));
        let junk = SshKeyMaterial {
            private_key: "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END OPENSSH PRIVATE KEY-----".into(),
            passphrase: None,
        };
        let err = check_private_key(&junk).unwrap_err();
        assert!(!err.contains("c2VjcmV0"), "{err}");
        let unknown = SshKeyMaterial {
            private_key: "-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----"
                .into(),
            passphrase: None,
        };
        assert!(check_private_key(&unknown)
            .unwrap_err()
            .contains("unsupported"));
    }

    #[test]
    fn pkcs8_ed25519_keys_are_read() {
        // The example key of RFC 8410, section 10.3 (public test vector).
        let key = SshKeyMaterial {
            private_key: "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n".into(),
            passphrase: None,
        };
        assert_eq!(check_private_key(&key), Ok("ed25519"));
    }

    #[test]
    fn known_hosts_lines_parse() {
        assert_eq!(check_known_hosts(HOST), Ok(1));
        let two = format!(
            "# pinned\n{HOST}\n\ngithub.com,140.82.121.4 {}\n",
            HOST.split_once(' ').unwrap().1
        );
        assert_eq!(check_known_hosts(&two), Ok(2));
        assert!(check_known_hosts("").unwrap_err().contains("no host key"));
        assert!(check_known_hosts("host ssh-ed25519 notbase64!")
            .unwrap_err()
            .contains("line 1"));
        assert!(check_known_hosts("just-a-host").is_err());
    }
}
