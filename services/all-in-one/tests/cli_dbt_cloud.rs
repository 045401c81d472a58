//! Issue 11, CLI: `backflow dbt-cloud …` with the built binary as a subprocess against a
//! running `backflow dev` (empty data dir, ports chosen by the OS, its own NATS
//! namespace) whose listener may call the local dbt Cloud API stand-in: connect with a
//! token file (a refused token exits 1 with dbt's reason and leaves no secret), test,
//! jobs and runs as tables and `--output json`, subscriptions, delete; usage errors exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use backflow_dbt_cloud_listener::stand_in::StandIn;
use serde_json::Value;
use std::io::{BufRead, BufReader};
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
    fn start(workdir: &Path, allowed: &str) -> anyhow::Result<Self> {
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
            // The dbt Cloud stand-in is the one host allowed besides dbt's; no periodic pass.
            (
                "BACKFLOW_DBT_CLOUD_LISTENER__ALLOWED_ACCESS_URLS".into(),
                allowed.to_string(),
            ),
            (
                "BACKFLOW_DBT_CLOUD_LISTENER__RECONCILE_INTERVAL_SECS".into(),
                "0".into(),
            ),
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

const ACCOUNT: i64 = 7_001;
const TOKEN: &str = "dbtc_cli_token";

fn failed(dev: &Dev, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let output = dev.cli(args, token);
    (
        output.status.code().unwrap_or(-1),
        text(&output.stdout),
        text(&output.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbt_cloud_commands_against_the_stand_in() -> anyhow::Result<()> {
    let cloud = StandIn::start(ACCOUNT, TOKEN).await?;
    for id in 1..=150 {
        cloud.add_job(id, &format!("job {id}"), 7);
    }
    for status in [10, 20] {
        cloud.add_run(3, status);
    }
    let workdir =
        std::env::temp_dir().join(format!("backflow-cli-dbt-{}", backflow_platform::new_id()));
    std::fs::create_dir_all(&workdir)?;
    let dev = Dev::start(&workdir, &cloud.base_url)?;
    let token = admin_token(&dev)?;
    let token = Some(token.as_str());
    let account = ACCOUNT.to_string();
    std::fs::write(workdir.join("good.token"), format!("{TOKEN}\n"))?;
    std::fs::write(workdir.join("bad.token"), "dbtc_wrong\n")?;

    // Usage: a token is needed.
    let (code, _, stderr) = failed(
        &dev,
        token,
        &[
            "dbt-cloud",
            "connect",
            "prod",
            "--account",
            &account,
            "--access-url",
            &cloud.base_url,
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--token-file"), "{stderr}");

    // A refused token: exit 1 with dbt's reason; neither connection nor secret kept.
    let (code, _, stderr) = failed(
        &dev,
        token,
        &[
            "dbt-cloud",
            "connect",
            "prod",
            "--account",
            &account,
            "--access-url",
            &cloud.base_url,
            "--token-file",
            "bad.token",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("refused the api token (401: Invalid token.)"),
        "{stderr}"
    );
    let secrets = ok_json(&dev, token, &["secrets", "list"])?;
    assert_eq!(secrets.as_array().map(Vec::len), Some(0), "{secrets}");

    // A foreign host is refused before any call.
    let (code, _, stderr) = failed(
        &dev,
        token,
        &[
            "dbt-cloud",
            "connect",
            "evil",
            "--account",
            &account,
            "--access-url",
            "https://evil.example.com",
            "--token-file",
            "good.token",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not a dbt Cloud host"), "{stderr}");

    let connected = ok_json(
        &dev,
        token,
        &[
            "dbt-cloud",
            "connect",
            "prod",
            "--account",
            &account,
            "--access-url",
            &cloud.base_url,
            "--token-file",
            "good.token",
        ],
    )?;
    assert_eq!(
        connected["access_url"],
        Value::String(cloud.base_url.clone())
    );
    assert_eq!(connected["account_id"], serde_json::json!(ACCOUNT));
    assert_eq!(connected["last_test"]["ok"], Value::Bool(true));
    assert_eq!(
        connected["last_test"]["account_name"],
        Value::String("Jaffle Shop".into())
    );

    let listed = ok(&dev, token, &["dbt-cloud", "list"]);
    assert!(listed.starts_with("ID"), "{listed}");
    assert!(
        listed.contains("prod") && listed.contains(" ok "),
        "{listed}"
    );
    let tested = ok(&dev, token, &["dbt-cloud", "test", "prod"]);
    assert_eq!(tested, "ok: the token reads account \"Jaffle Shop\"\n");

    let jobs = ok_json(&dev, token, &["dbt-cloud", "jobs", "prod"])?;
    assert_eq!(jobs.as_array().map(Vec::len), Some(150));
    assert_eq!(
        jobs[0],
        serde_json::json!({"id": 1, "name": "job 1", "project_id": 7, "environment_id": 49819, "job_type": "scheduled", "state": 1, "bound_sync_count": 0})
    );
    let table = ok(&dev, token, &["dbt-cloud", "jobs", "prod"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "ID",
            "NAME",
            "PROJECT",
            "ENVIRONMENT",
            "TYPE",
            "STATE",
            "SYNCS"
        ]
    );
    assert_eq!(table.lines().count(), 151);

    let runs = ok_json(&dev, token, &["dbt-cloud", "runs", "prod", "--job", "3"])?;
    let statuses: Vec<(i64, String)> = runs
        .as_array()
        .map(|runs| {
            runs.iter()
                .map(|r| {
                    (
                        r["status_code"].as_i64().unwrap_or(0),
                        r["status"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        statuses,
        vec![(20, "Error".to_string()), (10, "Success".to_string())]
    );
    let (code, _, stderr) = failed(
        &dev,
        token,
        &["dbt-cloud", "runs", "prod", "--job", "3", "--limit", "500"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("limit must be between 1 and 100"),
        "{stderr}"
    );

    let subscriptions = ok_json(&dev, token, &["dbt-cloud", "subscriptions"])?;
    assert_eq!(subscriptions, serde_json::json!([]));

    // The token is revoked in dbt Cloud: test exits 1 and says so; get shows it.
    cloud.cloud().token = "dbtc_rotated".into();
    let (code, stdout, _) = failed(&dev, token, &["dbt-cloud", "test", "prod"]);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with("unauthenticated: dbt cloud at"),
        "{stdout}"
    );
    let got = ok_json(&dev, token, &["dbt-cloud", "get", "prod"])?;
    assert_eq!(
        got["last_test"]["problem"],
        Value::String("unauthenticated".into())
    );

    ok(&dev, token, &["dbt-cloud", "delete", "prod"]);
    assert_eq!(
        ok_json(&dev, token, &["dbt-cloud", "list"])?,
        serde_json::json!([])
    );
    let (code, _, stderr) = failed(&dev, token, &["dbt-cloud", "get", "prod"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no dbt cloud connection \"prod\""),
        "{stderr}"
    );
    Ok(())
}
