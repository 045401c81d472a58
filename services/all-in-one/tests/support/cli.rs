//! The harness of the CLI tests: a `backflow dev` subprocess in an empty work dir (ports
//! chosen by the OS, its own NATS namespace; the CLI finds the front door in the
//! `./data/cli.json` dev writes), the built `backflow` binary run as a user types it,
//! and helpers for its exit codes and `--output json`.

#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Variables a developer's shell may carry that would point the CLI elsewhere.
pub const CLIENT_VARS: [&str; 8] = [
    "BACKFLOW_ADDR",
    "BACKFLOW_TOKEN",
    "BACKFLOW_WORKSPACE",
    "BACKFLOW_CLI_CONFIG",
    "BACKFLOW_ADDR_CREDENTIALS",
    "BACKFLOW_ADDR_GIT_SYNC",
    "BACKFLOW_ADDR_MODEL_CATALOG",
    "BACKFLOW_ADDR_RETL_SCHEDULER",
];

/// A running `backflow dev` in its own empty work dir; SIGTERM on drop.
pub struct Dev {
    child: Child,
    pub workdir: PathBuf,
    /// The configuration `backflow dev` runs with (also what `backflow tokens` needs).
    pub server_env: Vec<(String, String)>,
    /// Service name (`credentials`, `git-sync`, ...) → its own gRPC address, as printed.
    pub ports: BTreeMap<String, String>,
    /// The front door's address (every service), as printed.
    pub front_door: String,
}

impl Dev {
    pub fn start(workdir: &Path) -> anyhow::Result<Self> {
        Self::start_with(workdir, &[])
    }

    /// The same with `extra` configuration variables (`BACKFLOW_…`) on top.
    pub fn start_with(workdir: &Path, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut server_env: Vec<(String, String)> = vec![
            (
                "BACKFLOW_NATS__NAMESPACE".into(),
                backflow_platform::testing::fresh_nats("cli").namespace,
            ),
            (
                "BACKFLOW_NATS__URL".into(),
                backflow_platform::testing::nats_url(),
            ),
            ("BACKFLOW_TELEMETRY__FORMAT".into(), "json".into()),
            (
                "BACKFLOW_TELEMETRY__METRICS_LISTEN".into(),
                "127.0.0.1:0".into(),
            ),
            (
                "BACKFLOW_GIT_SYNC__HTTP_LISTEN".into(),
                "127.0.0.1:0".into(),
            ),
            (
                "BACKFLOW_DBT_CLOUD_LISTENER__HTTP_LISTEN".into(),
                "127.0.0.1:0".into(),
            ),
            // Every port chosen by the OS; the CLI finds the front door in ./data/cli.json.
            ("BACKFLOW_FRONT_DOOR__LISTEN".into(), "127.0.0.1:0".into()),
            // Only the syncs this test asks for.
            (
                "BACKFLOW_GIT_SYNC__POLL_INTERVAL_SECONDS".into(),
                "0".into(),
            ),
        ];
        for section in [
            "CREDENTIALS",
            "GIT_SYNC",
            "MODEL_CATALOG",
            "DBT_CLOUD_LISTENER",
            "RETL_SCHEDULER",
        ] {
            server_env.push((
                format!("BACKFLOW_{section}__GRPC_LISTEN"),
                "127.0.0.1:0".into(),
            ));
        }
        server_env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut command = Command::new(env!("CARGO_BIN_EXE_backflow"));
        command
            .arg("dev")
            .current_dir(workdir)
            .env_remove("BACKFLOW_CONFIG")
            .envs(server_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for var in CLIENT_VARS {
            command.env_remove(var);
        }
        let mut child = command.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut dev = Self {
            child,
            workdir: workdir.to_path_buf(),
            server_env,
            ports: BTreeMap::new(),
            front_door: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))?;
            if let Some((head, addr)) = line.split_once(" grpc on ") {
                let name = head.trim_start_matches("backflow: ").to_string();
                dev.ports.insert(name, addr.trim().to_string());
            }
            if let Some((_, addr)) = line.split_once("front door (every service) on ") {
                dev.front_door = addr.trim().to_string();
            }
            if line.starts_with("backflow: ready") {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || while lines_rx.recv().is_ok() {});
        Ok(dev)
    }

    /// `backflow <args>` as a user types it in the work dir `backflow dev` runs in.
    pub fn command(&self, args: &[&str], token: Option<&str>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_backflow"));
        command.args(args).current_dir(&self.workdir);
        for var in CLIENT_VARS {
            command.env_remove(var);
        }
        if let Some(token) = token {
            command.env("BACKFLOW_TOKEN", token);
        }
        command
    }

    pub fn cli(&self, args: &[&str], token: Option<&str>) -> Output {
        match self.command(args, token).stdin(Stdio::null()).output() {
            Ok(output) => output,
            Err(error) => panic!("backflow {args:?} did not run: {error}"),
        }
    }

    /// The same, with `input` on stdin.
    pub fn cli_stdin(
        &self,
        args: &[&str],
        token: Option<&str>,
        input: &str,
    ) -> anyhow::Result<Output> {
        use std::io::Write as _;
        let mut child = self
            .command(args, token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdin"))?
            .write_all(input.as_bytes())?;
        Ok(child.wait_with_output()?)
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Runs a command that must succeed and returns its stdout.
pub fn ok(dev: &Dev, token: Option<&str>, args: &[&str]) -> String {
    let output = dev.cli(args, token);
    assert_eq!(
        output.status.code(),
        Some(0),
        "backflow {args:?}: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs a command with `--output json` that must succeed; returns the parsed JSON.
pub fn ok_json(dev: &Dev, token: Option<&str>, args: &[&str]) -> anyhow::Result<Value> {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    Ok(serde_json::from_str(&ok(dev, token, &args))?)
}

/// Repeats a JSON command until `done` holds (the catalog applies a run's snapshot
/// from an event, a moment after git-sync marks the run succeeded); 30 s deadline.
pub fn eventually_json(
    dev: &Dev,
    token: Option<&str>,
    args: &[&str],
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = ok_json(dev, token, args)?;
        if done(&value) {
            return Ok(value);
        }
        if Instant::now() > deadline {
            anyhow::bail!("backflow {args:?} still answers {value}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn field(value: &Value, name: &str) -> anyhow::Result<String> {
    value[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no string {name} in {value}"))
}

pub fn number(value: &Value, name: &str) -> anyhow::Result<i64> {
    value[name]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no number {name} in {value}"))
}

/// `backflow <args> --output json` as an operator runs it: against the same ./data and
/// configuration as the running dev process (what `backflow tokens` needs); it must
/// succeed.
pub fn operator_json(dev: &Dev, args: &[&str]) -> anyhow::Result<Value> {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    let output = operator(dev, &args)?;
    anyhow::ensure!(
        output.status.success(),
        "backflow {args:?}: {}",
        text(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// `backflow <args>` as an operator runs it (see [`operator_json`]), whatever its outcome.
pub fn operator(dev: &Dev, args: &[&str]) -> anyhow::Result<Output> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_backflow"));
    command
        .args(args)
        .current_dir(&dev.workdir)
        .env_remove("BACKFLOW_CONFIG")
        .envs(dev.server_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    for var in CLIENT_VARS {
        command.env_remove(var);
    }
    Ok(command.output()?)
}

/// Step 1 of the walkthrough: an operator makes an admin token for the workspace with
/// `backflow tokens create`; every later command sends it as BACKFLOW_TOKEN.
pub fn admin_token(dev: &Dev) -> anyhow::Result<String> {
    let created = operator_json(
        dev,
        &[
            "tokens",
            "create",
            "--workspace",
            "default",
            "--role",
            "admin",
        ],
    )?;
    field(&created, "token")
}

/// Runs a command that must fail with `code`; returns its stderr.
pub fn fails(dev: &Dev, token: Option<&str>, args: &[&str], code: i32) -> String {
    let output = dev.cli(args, token);
    assert_eq!(
        output.status.code(),
        Some(code),
        "backflow {args:?}: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stderr)
}

/// Runs a command that may fail: (exit code, stdout, stderr).
pub fn outcome(dev: &Dev, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let output = dev.cli(args, token);
    (
        output.status.code().unwrap_or(-1),
        text(&output.stdout),
        text(&output.stderr),
    )
}
