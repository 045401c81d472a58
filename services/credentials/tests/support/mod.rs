//! Shared test helpers: real keys from `ssh-keygen` (fast even in debug builds,
//! and exactly what users paste), and a host key line to pin.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message
#![allow(dead_code)]

pub mod fake_github;

use std::path::Path;
use std::process::Command;

/// Generates a key with `ssh-keygen -t <kind> <extra...> -N <passphrase>` and
/// returns (private key text, public key line).
pub fn keygen(
    dir: &Path,
    name: &str,
    kind: &str,
    extra: &[&str],
    passphrase: &str,
) -> (String, String) {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind])
        .args(extra)
        .args(["-N", passphrase, "-C", "backflow-test", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs (openssh-client installed)");
    assert!(status.success(), "ssh-keygen -t {kind} {extra:?} failed");
    let private = std::fs::read_to_string(&path).expect("private key written");
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key written");
    (private, public.trim().to_string())
}

/// A known_hosts line for a server on 127.0.0.1:2222 with a fresh host key.
pub fn known_hosts_line(dir: &Path) -> String {
    let (_, public) = keygen(dir, "host_key", "ed25519", &[], "");
    let mut fields = public.split_whitespace();
    let (kind, blob) = (fields.next().unwrap(), fields.next().unwrap());
    format!("[127.0.0.1]:2222 {kind} {blob}")
}

/// True if any line of the key body (base64, 40+ chars) occurs in `haystack`.
pub fn contains_key_body(haystack: &[u8], key: &str) -> bool {
    key.lines()
        .map(str::trim)
        .filter(|line| line.len() >= 40 && !line.starts_with("-----"))
        .any(|line| {
            haystack
                .windows(line.len())
                .any(|window| window == line.as_bytes())
        })
}
