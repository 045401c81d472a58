//! A real OpenSSH server (`/usr/sbin/sshd -D -e`) on 127.0.0.1, with generated
//! host and client keys, for SSH clone tests.

use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// A generated SSH key pair.
pub struct KeyPair {
    pub private_key: String,
    /// `type base64 comment` line.
    pub public_line: String,
}

/// Generates a key with `ssh-keygen`. `kind` is `ed25519`, `rsa` or `ecdsa`;
/// `pem` writes the legacy PEM format instead of the OpenSSH one.
pub fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str, pem: bool) -> KeyPair {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args([
        "-q",
        "-t",
        kind,
        "-N",
        passphrase,
        "-C",
        "backflow-test",
        "-f",
    ])
    .arg(&path);
    if kind == "rsa" {
        cmd.args(["-b", "3072"]);
    }
    if pem {
        cmd.args(["-m", "PEM"]);
    }
    let out = cmd.output().expect("ssh-keygen runs (openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    KeyPair {
        private_key: fs::read_to_string(&path).expect("private key"),
        public_line: fs::read_to_string(path.with_extension("pub"))
            .expect("public key")
            .trim()
            .to_string(),
    }
}

/// A running sshd; killed when dropped.
pub struct Sshd {
    child: Child,
    pub port: u16,
    /// The server's ed25519 host public key line (`ssh-ed25519 AAAA... comment`).
    pub host_key_line: String,
    log: PathBuf,
}

impl Sshd {
    /// Starts sshd on a free loopback port accepting the given client public keys.
    pub fn start(dir: &Path, authorized_keys: &[&str]) -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} not found: the SSH transport tests need Debian's openssh-server \
             (`apt-get install -y openssh-server`, done by `make deps`)"
        );
        // sshd insists on its privilege separation directory.
        fs::create_dir_all("/run/sshd").expect("create /run/sshd (tests run as root)");
        fs::create_dir_all(dir).expect("sshd dir");

        let host_key = dir.join("host_ed25519");
        let host = keygen(dir, "host_ed25519", "ed25519", "", false);
        let authorized = dir.join("authorized_keys");
        fs::write(&authorized, authorized_keys.join("\n") + "\n").expect("authorized_keys");

        let port = free_port();
        let config = dir.join("sshd_config");
        let log = dir.join("sshd.log");
        fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:{port}\n\
                 HostKey {host_key}\n\
                 AuthorizedKeysFile {authorized}\n\
                 PidFile {pid}\n\
                 PermitRootLogin prohibit-password\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 LogLevel VERBOSE\n",
                host_key = host_key.display(),
                authorized = authorized.display(),
                pid = dir.join("sshd.pid").display(),
            ),
        )
        .expect("sshd_config");

        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("sshd log"))
            .spawn()
            .expect("start sshd");
        let mut sshd = Self {
            child,
            port,
            host_key_line: host.public_line,
            log,
        };
        sshd.wait_ready();
        sshd
    }

    /// A known_hosts line pinning this server's real host key.
    pub fn known_hosts(&self) -> String {
        let mut fields = self.host_key_line.split_whitespace();
        let kind = fields.next().expect("key type");
        let key = fields.next().expect("key");
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }

    /// `ssh://root@127.0.0.1:<port><abs path>`.
    pub fn url(&self, repo: &Path) -> String {
        format!("ssh://root@127.0.0.1:{}{}", self.port, repo.display())
    }

    /// What sshd logged so far (for assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited with {status}: {}", self.log());
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 4];
                if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sshd did not become ready: {}", self.log());
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind loopback")
        .port()
}
