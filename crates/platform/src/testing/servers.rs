//! Private servers for fault tests: a `nats-server -js` and a PostgreSQL cluster of a
//! test's own, on free ports with their data in a temporary directory, that the test
//! may stop, kill and restart mid-run (the shared NATS on 4222 and PostgreSQL on 5432
//! must never be touched). Both are killed and their directories removed on drop.
//!
//! A stop keeps the data (JetStream store dir, PostgreSQL data dir), so a restart comes
//! back with what was committed, on the same port, as a real server restart does.
//! PostgreSQL refuses to run as root; when the test runs as root, `initdb` and
//! `pg_ctl` run as the `postgres` user (`runuser`), and the directory is theirs.

use crate::config::NatsConfig;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where PostgreSQL's server binaries live: `BACKFLOW_TEST_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout), else `PATH`.
fn pg_bin(tool: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("BACKFLOW_TEST_PG_BIN") {
        return Path::new(&dir).join(tool);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    match newest {
        Some((_, bin)) => bin.join(tool),
        None => PathBuf::from(tool),
    }
}

/// A port nothing listens on right now (bound and released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn temp_dir(label: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "backflow-{label}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn io_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

/// Waits until something accepts TCP connections on `port` (or the deadline passes).
fn wait_listening(port: u16, within: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + within;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io_error(format!(
                "nothing listens on port {port} after {within:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A `nats-server -js` of this test's own.
#[derive(Debug)]
pub struct OwnNats {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnNats {
    /// Starts `nats-server -js -p <free port> -sd <temp dir>` and waits until it listens.
    pub fn start() -> std::io::Result<Self> {
        let mut nats = Self {
            port: free_port()?,
            dir: temp_dir("nats")?,
            child: None,
        };
        nats.spawn()?;
        Ok(nats)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        wait_listening(self.port, Duration::from_secs(10))
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// A config for this server with a fresh namespace.
    pub fn config(&self, label: &str) -> NatsConfig {
        NatsConfig {
            url: self.url(),
            ..super::fresh_nats(label)
        }
    }

    /// Kills the server (SIGKILL, no goodbye to clients); the store dir stays.
    pub fn kill(&mut self) -> std::io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts it again on the same port with the same store.
    pub fn start_again(&mut self) -> std::io::Result<()> {
        self.kill()?;
        self.spawn()
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL cluster of this test's own (trust auth, user `postgres`).
#[derive(Debug)]
pub struct OwnPostgres {
    pub port: u16,
    dir: PathBuf,
    as_postgres_user: bool,
}

impl OwnPostgres {
    /// `initdb` in a temp dir, then `pg_ctl start` on a free port (socket in the dir).
    pub fn start() -> std::io::Result<Self> {
        let dir = temp_dir("pg")?;
        // root cannot run PostgreSQL: then its tools run as `postgres`.
        let as_postgres_user = Command::new("id")
            .arg("-u")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
            .unwrap_or(false);
        let pg = Self {
            port: free_port()?,
            dir,
            as_postgres_user,
        };
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["postgres:"])
                .arg(&pg.dir)
                .status()?;
            if !status.success() {
                return Err(io_error(format!("chown postgres {}", pg.dir.display())));
            }
        }
        let data = pg.data_dir();
        let mut initdb = pg.tool("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-N", "-E", "UTF8"]);
        pg.run(initdb, "initdb")?;
        pg.start_again()?;
        Ok(pg)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn tool(&self, name: &str) -> Command {
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(pg_bin(name));
            command
        } else {
            Command::new(pg_bin(name))
        }
    }

    fn run(&self, mut command: Command, what: &str) -> std::io::Result<()> {
        let output = command.stdin(Stdio::null()).output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(io_error(format!(
                "{what} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut command = self.tool("pg_ctl");
        command.arg("-D").arg(self.data_dir()).args(args);
        command
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub async fn create_database(&self, name: &str) -> Result<String, sqlx::Error> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.admin_url()).await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(format!(
            "postgres://postgres@127.0.0.1:{}/{name}",
            self.port
        ))
    }

    /// Stops the server the way a crash does (`pg_ctl stop -m immediate`: every
    /// connection cut, no checkpoint; recovery on the next start).
    pub fn crash(&self) -> std::io::Result<()> {
        self.run(
            self.pg_ctl(&["stop", "-w", "-m", "immediate"]),
            "pg_ctl stop",
        )
    }

    /// Starts (again) on the same port, waiting until it accepts connections.
    pub fn start_again(&self) -> std::io::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let mut start = self.pg_ctl(&["start", "-w", "-t", "30", "-o", &options, "-l"]);
        start.arg(log);
        self.run(start, "pg_ctl start")?;
        wait_listening(self.port, Duration::from_secs(10))
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl(&["stop", "-w", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
