//! Issue 10, CLI: `backflow destinations …` and `backflow syncs …` with the built binary
//! as a subprocess against a running `backflow dev` (empty data dir, ports chosen by the
//! OS, its own NATS namespace), in the style of `cli_walkthrough.rs` (whose harness is
//! copied here): a webhook destination tested against a local HTTP receiver, refused
//! settings, update, list, `--output json` compared whole, delete; sync commands' usage
//! errors exit 2 and refused calls exit 1 with the server's message.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Variables a developer's shell may carry that would point the CLI elsewhere.
const CLIENT_VARS: [&str; 8] = [
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
struct Dev {
    child: Child,
    workdir: PathBuf,
    /// The configuration `backflow dev` runs with (also what `backflow tokens` needs).
    server_env: Vec<(String, String)>,
}

impl Dev {
    fn start(workdir: &Path) -> anyhow::Result<Self> {
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
        let dev = Self {
            child,
            workdir: workdir.to_path_buf(),
            server_env,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))?;
            if line.starts_with("backflow: ready") {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || while lines_rx.recv().is_ok() {});
        Ok(dev)
    }

    /// `backflow <args>` as a user types it in the work dir `backflow dev` runs in.
    fn command(&self, args: &[&str], token: Option<&str>) -> Command {
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

    fn cli(&self, args: &[&str], token: Option<&str>) -> Output {
        match self.command(args, token).stdin(Stdio::null()).output() {
            Ok(output) => output,
            Err(error) => panic!("backflow {args:?} did not run: {error}"),
        }
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Runs a command that must succeed and returns its stdout.
fn ok(dev: &Dev, token: Option<&str>, args: &[&str]) -> String {
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
fn ok_json(dev: &Dev, token: Option<&str>, args: &[&str]) -> anyhow::Result<Value> {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    Ok(serde_json::from_str(&ok(dev, token, &args))?)
}

fn field(value: &Value, name: &str) -> anyhow::Result<String> {
    value[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no string {name} in {value}"))
}

/// Step 1 of the walkthrough: an operator makes an admin token for the workspace with
/// `backflow tokens create` (against the same ./data and configuration as the running
/// dev process); every later command sends it as BACKFLOW_TOKEN.
fn admin_token(dev: &Dev) -> anyhow::Result<String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_backflow"));
    command
        .args([
            "tokens",
            "create",
            "--workspace",
            "default",
            "--role",
            "admin",
        ])
        .args(["--output", "json"])
        .current_dir(&dev.workdir)
        .env_remove("BACKFLOW_CONFIG")
        .envs(dev.server_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    for var in CLIENT_VARS {
        command.env_remove(var);
    }
    let output = command.output()?;
    anyhow::ensure!(
        output.status.success(),
        "backflow tokens create: {}",
        text(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout)?;
    field(&created, "token")
}

/// A local HTTP receiver that answers 200 to every request (the webhook's test POST).
fn start_receiver() -> anyhow::Result<(String, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buffer = [0_u8; 4096];
            // headers, then Content-Length bytes of body
            let mut wanted: Option<usize> = None;
            while let Ok(read) = stream.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..read]);
                if wanted.is_none() {
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        let headers = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                        let length = headers
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        wanted = Some(end + 4 + length);
                    }
                }
                if wanted.is_some_and(|total| request.len() >= total) {
                    break;
                }
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    Ok((url, seen))
}

/// Runs a command that must fail with `code`; returns its stderr.
fn fails(dev: &Dev, token: Option<&str>, args: &[&str], code: i32) -> String {
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

#[test]
fn destinations_and_syncs_from_the_cli() -> anyhow::Result<()> {
    let root =
        std::env::temp_dir().join(format!("backflow-cli-retl-{}", backflow_platform::new_id()));
    let workdir = root.join("work");
    std::fs::create_dir_all(&workdir)?;
    let dev = Dev::start(&workdir)?;
    let token = admin_token(&dev)?;
    let token = Some(token.as_str());
    let (url, seen) = start_receiver()?;

    // a webhook destination, tested against the receiver on create
    let url_setting = format!("url={url}");
    let created = ok_json(
        &dev,
        token,
        &[
            "destinations",
            "create",
            "hook",
            "--kind",
            "webhook",
            "--setting",
            &url_setting,
        ],
    )?;
    let id = field(&created, "id")?;
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the test reached the receiver"
    );
    assert_eq!(created["last_test"]["ok"], json!(true));
    let shown = ok_json(&dev, token, &["destinations", "get", &id])?;
    assert_eq!(
        shown,
        json!({
            "id": id,
            "workspace_id": "default",
            "name": "hook",
            "kind": "webhook",
            "settings": {"url": url},
            "credential_id": "",
            "rate_limit_per_second": 0.0,
            "version": 1,
            "created_at_unix_ms": created["created_at_unix_ms"],
            "updated_at_unix_ms": created["updated_at_unix_ms"],
            "last_test": created["last_test"],
        })
    );
    let table = ok(&dev, token, &["destinations", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("hook") && table.contains("webhook") && table.contains("ok"),
        "{table}"
    );

    // a failing test refuses the destination with the reason; secrets never go in settings
    let stderr = fails(
        &dev,
        token,
        &[
            "destinations",
            "create",
            "nowhere",
            "--kind",
            "webhook",
            "--setting",
            "url=http://127.0.0.1:1/in",
        ],
        1,
    );
    assert!(stderr.contains("destination test failed"), "{stderr}");
    let stderr = fails(
        &dev,
        token,
        &[
            "destinations",
            "create",
            "leaky",
            "--kind",
            "webhook",
            "--setting",
            &url_setting,
            "--setting",
            "password=hunter2",
            "--skip-test",
        ],
        1,
    );
    assert!(stderr.contains("would hold a secret"), "{stderr}");
    let stderr = fails(
        &dev,
        token,
        &["destinations", "create", "x", "--kind", "fax"],
        2,
    );
    assert!(stderr.contains("fax"), "{stderr}");

    // update without a test forgets the old result; test records a new one
    let updated = ok_json(
        &dev,
        token,
        &[
            "destinations",
            "update",
            &id,
            "--setting",
            "batch_size=100",
            "--rate-limit",
            "5",
            "--skip-test",
        ],
    )?;
    assert_eq!(updated["version"], json!(2));
    assert_eq!(updated["settings"]["batch_size"], json!("100"));
    assert_eq!(updated["rate_limit_per_second"], json!(5.0));
    assert_eq!(updated["last_test"], Value::Null);
    let tested = ok_json(&dev, token, &["destinations", "test", &id])?;
    assert_eq!(tested["ok"], json!(true));

    // syncs: none yet; flag mistakes are usage errors; the server checks the model
    assert_eq!(ok_json(&dev, token, &["syncs", "list"])?, json!([]));
    let stderr = fails(
        &dev,
        token,
        &[
            "syncs",
            "create",
            "s",
            "--model",
            "m",
            "--destination",
            &id,
            "--mode",
            "upsert",
            "--null-policy",
            "email=omit",
        ],
        2,
    );
    assert!(stderr.contains("--null-policy email"), "{stderr}");
    fails(
        &dev,
        token,
        &[
            "syncs",
            "create",
            "s",
            "--model",
            "m",
            "--destination",
            &id,
            "--mode",
            "upsert",
            "--every",
            "1h",
            "--cron",
            "0 * * * *",
        ],
        2,
    );
    fails(
        &dev,
        token,
        &[
            "syncs",
            "create",
            "s",
            "--model",
            "m",
            "--destination",
            &id,
            "--mode",
            "upsert",
            "--every",
            "5w",
        ],
        2,
    );
    let stderr = fails(
        &dev,
        token,
        &[
            "syncs",
            "create",
            "s",
            "--model",
            "no-such-model",
            "--destination",
            &id,
            "--mode",
            "upsert",
            "--map",
            "email=email_address",
            "--constant",
            "source=backflow",
        ],
        1,
    );
    assert!(stderr.contains("no-such-model"), "{stderr}");
    let stderr = fails(&dev, token, &["syncs", "get", "no-such-sync"], 1);
    assert!(stderr.contains("not found"), "{stderr}");
    let stderr = fails(&dev, token, &["syncs", "approve", "no-such-run"], 1);
    assert!(!stderr.is_empty());

    // delete; then it is gone
    let deleted = ok_json(&dev, token, &["destinations", "delete", &id])?;
    assert_eq!(deleted, json!({"deleted": id}));
    let stderr = fails(&dev, token, &["destinations", "get", &id], 1);
    assert!(stderr.contains("not found"), "{stderr}");
    Ok(())
}
