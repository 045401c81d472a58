//! Acceptance 3 and 4 of the foundation, on the real binary: `backflow dev` starts on
//! an empty `./data`, every gRPC health check answers SERVING, SIGTERM stops it within
//! 10 s; bad configuration ends start-up with one clear line naming the setting.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const SERVICES: [(&str, &str); 5] = [
    ("CREDENTIALS", "backflow.credentials.v1.CredentialsService"),
    ("GIT_SYNC", "backflow.gitsync.v1.GitSyncService"),
    ("MODEL_CATALOG", "backflow.catalog.v1.ModelCatalogService"),
    (
        "DBT_CLOUD_LISTENER",
        "backflow.dbtcloud.v1.DbtCloudListenerService",
    ),
    ("RETL_SCHEDULER", "backflow.retl.v1.RetlSchedulerService"),
];

fn backflow(workdir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_backflow"));
    command
        .current_dir(workdir)
        .env_remove("BACKFLOW_CONFIG")
        .env(
            "BACKFLOW_NATS__NAMESPACE",
            backflow_platform::testing::fresh_nats("dev").namespace,
        )
        .env("BACKFLOW_NATS__URL", backflow_platform::testing::nats_url())
        .env("BACKFLOW_TELEMETRY__FORMAT", "json");
    // Port 0 so a developer's running `make dev` does not collide with the test.
    for (section, _) in SERVICES {
        command.env(format!("BACKFLOW_{section}__GRPC_LISTEN"), "127.0.0.1:0");
    }
    command.env("BACKFLOW_GIT_SYNC__HTTP_LISTEN", "127.0.0.1:0");
    command.env("BACKFLOW_DBT_CLOUD_LISTENER__HTTP_LISTEN", "127.0.0.1:0");
    command.env("BACKFLOW_TELEMETRY__METRICS_LISTEN", "127.0.0.1:0");
    command.env("BACKFLOW_FRONT_DOOR__LISTEN", "127.0.0.1:0");
    command
}

fn empty_workdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("backflow-dev-{}", uuid_like()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn uuid_like() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!(
        "{}-{}-{n}",
        std::process::id(),
        backflow_platform::now_unix_ms()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_starts_serves_health_and_stops_on_sigterm() -> anyhow::Result<()> {
    let workdir = empty_workdir()?;
    let mut child = backflow(&workdir)
        .arg("dev")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
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
    let mut addrs = Vec::new();
    let mut metrics_url = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))?;
        if let Some((_, addr)) = line.split_once(" grpc on ") {
            addrs.push(addr.trim().to_string());
        }
        if let Some((_, url)) = line.split_once("backflow: metrics on ") {
            metrics_url = Some(url.trim().to_string());
        }
        if line.starts_with("backflow: ready") {
            break;
        }
    }
    assert_eq!(addrs.len(), 5, "one address per service: {addrs:?}");
    assert!(workdir.join("data").is_dir(), "./data is created");

    for (addr, (_, service)) in addrs.iter().zip(SERVICES) {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        let mut health = HealthClient::new(channel);
        for name in ["", service] {
            let status = health
                .check(HealthCheckRequest {
                    service: name.into(),
                })
                .await?
                .into_inner()
                .status;
            assert_eq!(status, ServingStatus::Serving as i32, "{addr} {name:?}");
        }
        drop(health);
        assert!(
            support::reflected_services(addr).await?.contains(service),
            "{service} listed by reflection on {addr}"
        );
    }

    // one Prometheus endpoint for the process, with the platform's metrics
    let metrics_url = metrics_url.ok_or_else(|| anyhow::anyhow!("no metrics line"))?;
    let metrics = http_get(&metrics_url).await?;
    for name in [
        "backflow_grpc_requests_total",
        "backflow_grpc_request_duration_seconds_bucket",
        "backflow_outbox_pending",
    ] {
        assert!(metrics.contains(name), "{name} in /metrics:\n{metrics}");
    }

    let stopping = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(killed.success());
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if stopping.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            anyhow::bail!("backflow dev did not stop within 10 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "clean exit, got {status}");
    let _ = std::fs::remove_dir_all(&workdir);
    Ok(())
}

/// A plain HTTP/1.1 GET, body as text.
async fn http_get(url: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not http: {url}"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    anyhow::ensure!(
        response.starts_with("HTTP/1.1 200"),
        "GET {url}: {response}"
    );
    Ok(response)
}

/// Runs `backflow dev` with one bad setting and returns its stderr.
fn failing_start(env: &[(&str, &str)], args: &[&str]) -> anyhow::Result<String> {
    let workdir = empty_workdir()?;
    let mut command = backflow(&workdir);
    command.args(args).arg("dev");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.stdin(Stdio::null()).output()?;
    let _ = std::fs::remove_dir_all(&workdir);
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    assert_eq!(
        output.status.code(),
        Some(2),
        "exit code 2 for {env:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(!stderr.contains("backtrace"), "no backtrace: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    Ok(stderr)
}

#[test]
fn bad_configuration_names_the_setting() -> anyhow::Result<()> {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[(
                "BACKFLOW_GIT_SYNC__DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/nope",
            )],
            "git_sync.database_url",
        ),
        (
            &[(
                "BACKFLOW_MODEL_CATALOG__DATABASE_URL",
                "mysql://somewhere/db",
            )],
            "model_catalog.database_url",
        ),
        (
            &[
                ("BACKFLOW_NATS__URL", "nats://127.0.0.1:1"),
                ("BACKFLOW_NATS__CONNECT_TIMEOUT_MS", "1000"),
            ],
            "nats.url",
        ),
        (&[("BACKFLOW_NATS__URL", "nats://[::1")], "nats.url"),
        (
            &[("BACKFLOW_NATS__CONNECT_TIMEOUT_MS", "soon")],
            "nats.connect_timeout_ms",
        ),
        (
            &[("BACKFLOW_CREDENTIALS__GRPC_LISTEN", "not-an-address")],
            "credentials.grpc_listen",
        ),
    ];
    for (env, setting) in cases {
        let stderr = failing_start(env, &[])?;
        assert!(stderr.contains(setting), "{setting} named in: {stderr}");
    }
    let stderr = failing_start(&[], &["--config", "/nonexistent/backflow.toml"])?;
    assert!(stderr.contains("/nonexistent/backflow.toml"), "{stderr}");
    Ok(())
}

/// Issue 7.7: a misspelt setting is refused by name, never silently ignored.
#[test]
fn unknown_settings_are_refused_by_name() -> anyhow::Result<()> {
    let stderr = failing_start(&[("BACKFLOW_GIT_SYNC__POLL_INTERVAL_SECOND", "5")], &[])?;
    assert_eq!(
        stderr,
        "backflow: unknown setting git_sync.poll_interval_second (from the environment variable BACKFLOW_GIT_SYNC__POLL_INTERVAL_SECOND)"
    );
    let stderr = failing_start(&[("BACKFLOW_NAST__URL", "nats://127.0.0.1:4222")], &[])?;
    assert!(stderr.contains("BACKFLOW_NAST__URL"), "{stderr}");
    let dir = empty_workdir()?;
    let file = dir.join("backflow.toml");
    std::fs::write(&file, "[model_catalog]\ngit_sync_ulr = \"http://x\"\n")?;
    let stderr = failing_start(&[], &["--config", &file.display().to_string()])?;
    assert!(
        stderr.contains("unknown setting model_catalog.git_sync_ulr")
            && stderr.contains(&file.display().to_string()),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

#[test]
fn dbt_parse_prints_a_manifest() -> anyhow::Result<()> {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dbt/semantics_lab");
    let output = Command::new(env!("CARGO_BIN_EXE_backflow"))
        .args(["dbt", "parse"])
        .arg(&fixture)
        .args([
            "--target-schema",
            "analytics",
            "--var",
            "cli_var=from_cli",
            "--var",
            "threshold=99",
        ])
        .env("SEMLAB_SET", "set_value")
        .env_remove("SEMLAB_UNSET")
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture.join("expected.json"))?)?;
    let models = expected["models"].as_array().cloned().unwrap_or_default();
    assert!(!models.is_empty());
    for model in models {
        let id = model["unique_id"].as_str().unwrap_or_default();
        let node = &manifest["nodes"][id];
        assert_eq!(node["relation_name"], model["relation_name"], "{id}");
        assert!(node["compiled_code"].is_string(), "{id}");
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_backflow"))
        .args([
            "dbt",
            "parse",
            "/nonexistent",
            "--target-schema",
            "analytics",
        ])
        .output()?;
    assert_eq!(missing.status.code(), Some(2));
    Ok(())
}
