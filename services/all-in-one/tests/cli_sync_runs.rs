//! Issue 10, CLI: a Reverse ETL sync run end to end with the built `backflow` binary
//! against a running `backflow dev` (harness `support::cli`): a git repository with a dbt
//! project (smart-HTTP server), a PostgreSQL warehouse source holding the model's table,
//! a Reverse ETL model, a webhook destination (a local receiver that refuses one record),
//! a sync, `syncs trigger` → `sync-runs watch` to the end → `sync-runs get|list|errors`
//! (tables and `--output json`). Deleting the sync keeps its run history.

use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use serde_json::{json, Value};
use std::io::{Read, Write};

mod support;

use support::cli::{admin_token, eventually_json, fails, field, ok, ok_json, Dev};

const GIT_TOKEN: &str = "ghp_CliSyncRunsToken0123456789";

const PROJECT: &[(&str, &str)] = &[
    (
        "dbt_project.yml",
        "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n",
    ),
    (
        "models/customers.sql",
        "select 1 as id, 'a@example.com' as email",
    ),
];

/// A webhook receiver (Standard Webhooks body) that accepts every batch but refuses the
/// record with key id 3 ("email bounced"); counts the records it accepted.
fn start_receiver() -> anyhow::Result<(String, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buffer = [0_u8; 4096];
            let mut wanted: Option<(usize, usize)> = None;
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
                        wanted = Some((end + 4, end + 4 + length));
                    }
                }
                if wanted.is_some_and(|(_, total)| request.len() >= total) {
                    break;
                }
            }
            let body = wanted
                .and_then(|(start, total)| request.get(start..total))
                .and_then(|body| serde_json::from_slice::<Value>(body).ok())
                .unwrap_or(Value::Null);
            let mut failed = Vec::new();
            for record in body["data"]["records"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                if record["key"]["id"] == json!(3) {
                    failed
                        .push(json!({"key_hash": record["key_hash"], "message": "email bounced"}));
                } else {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            let answer = json!({ "failed": failed }).to_string();
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                )
                .as_bytes(),
            );
        }
    });
    Ok((url, accepted))
}

#[test]
fn a_sync_run_from_the_cli() -> anyhow::Result<()> {
    let root =
        std::env::temp_dir().join(format!("backflow-cli-runs-{}", backflow_platform::new_id()));
    let workdir = root.join("work");
    std::fs::create_dir_all(&workdir)?;
    let _repo = BareRepo::create_with(&root.join("git"), "shop", PROJECT);
    let server = GitHttpServer::start(&root.join("git"), GIT_TOKEN);
    // the warehouse: the dbt model's relation analytics.customers, built "by dbt"
    let runtime = tokio::runtime::Runtime::new()?;
    let warehouse_url = runtime.block_on(backflow_platform::testing::fresh_postgres_url(
        "cli_runs_wh",
    ))?;
    let database = warehouse_url
        .rsplit_once('/')
        .map(|(_, n)| n.to_string())
        .unwrap_or_default();
    runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&warehouse_url).await?;
        for statement in [
            "CREATE SCHEMA analytics",
            "CREATE TABLE analytics.customers (id bigint, email text)",
            "INSERT INTO analytics.customers SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 5) g",
        ] {
            sqlx::query(statement).execute(&pool).await?;
        }
        anyhow::Ok(())
    })?;
    let dev = Dev::start(&workdir)?;
    let token = admin_token(&dev)?;
    let token = Some(token.as_str());

    // secrets, the warehouse source, the connection and its first sync
    std::fs::write(workdir.join("git-token"), GIT_TOKEN)?;
    let git_secret = field(
        &ok_json(
            &dev,
            token,
            &[
                "secrets",
                "create",
                "git",
                "--kind",
                "git-token",
                "--material-file",
                "git-token",
            ],
        )?,
        "id",
    )?;
    std::fs::write(workdir.join("db-password"), "unused")?;
    let db_secret = field(
        &ok_json(
            &dev,
            token,
            &[
                "secrets",
                "create",
                "db",
                "--kind",
                "warehouse-password",
                "--material-file",
                "db-password",
            ],
        )?,
        "id",
    )?;
    let database_setting = format!("database={database}");
    let source = ok_json(
        &dev,
        token,
        &[
            "sources",
            "create",
            "wh",
            "--kind",
            "postgres",
            "--setting",
            "host=127.0.0.1",
            "--setting",
            "port=5432",
            "--setting",
            &database_setting,
            "--setting",
            "user=postgres",
            "--setting",
            "sslmode=disable",
            "--credential",
            &db_secret,
        ],
    )?;
    let source_id = field(&source, "id")?;
    let created = ok_json(
        &dev,
        token,
        &[
            "connections",
            "create",
            "shop",
            "--url",
            &server.url("shop"),
            "--provider",
            "github",
            "--schema",
            "analytics",
            "--credential",
            &git_secret,
            "--warehouse-source",
            &source_id,
        ],
    )?;
    let connection_id = field(&created["connection"], "id")?;
    let initial = field(&created["run"], "id")?;
    ok_json(
        &dev,
        token,
        &["runs", "watch", &initial, "--timeout-seconds", "60"],
    )?;
    eventually_json(&dev, token, &["models", "list", &connection_id], |m| {
        m["models"]
            .as_array()
            .is_some_and(|models| !models.is_empty())
    })?;

    // a Reverse ETL model, a webhook destination and a sync
    let model = ok_json(
        &dev,
        token,
        &[
            "retl-models",
            "create",
            "customers",
            "--connection",
            &connection_id,
            "--model",
            "customers",
            "--key",
            "id",
        ],
    )?;
    let model_id = field(&model, "id")?;
    let (url, accepted) = start_receiver()?;
    let url_setting = format!("url={url}");
    let destination = ok_json(
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
    let destination_id = field(&destination, "id")?;
    let sync = ok_json(
        &dev,
        token,
        &[
            "syncs",
            "create",
            "customers to hook",
            "--model",
            &model_id,
            "--destination",
            &destination_id,
            "--mode",
            "upsert",
            "--map",
            "email=email",
        ],
    )?;
    let sync_id = field(&sync, "id")?;

    // trigger, watch to the end (exit 0: the run succeeded, one record refused)
    let queued = ok_json(&dev, token, &["syncs", "trigger", &sync_id])?;
    let run_id = field(&queued, "id")?;
    let watched = dev.cli(&["sync-runs", "watch", &run_id], token);
    assert_eq!(
        watched.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&watched.stdout),
        String::from_utf8_lossy(&watched.stderr)
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 4);

    let run = ok_json(&dev, token, &["sync-runs", "get", &run_id])?;
    assert_eq!(run["id"], json!(run_id));
    assert_eq!(run["sync_id"], json!(sync_id));
    assert_eq!(field(&run, "status")?, "succeeded", "{run}");
    assert_eq!(run["counts"]["extracted"], json!(5), "{run}");
    assert_eq!(run["counts"]["added"], json!(5), "{run}");
    assert_eq!(run["counts"]["delivered"], json!(4), "{run}");
    assert_eq!(run["counts"]["failed"], json!(1), "{run}");
    let shown = ok(&dev, token, &["sync-runs", "get", &run_id]);
    assert!(
        shown.contains(&run_id) && shown.contains("succeeded"),
        "{shown}"
    );

    let listed = ok_json(&dev, token, &["sync-runs", "list", "--sync", &sync_id])?;
    let ids: Vec<&str> = listed
        .as_array()
        .map(|runs| runs.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![run_id.as_str()], "{listed}");
    let table = ok(&dev, token, &["sync-runs", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&run_id), "{table}");

    let errors = ok_json(&dev, token, &["sync-runs", "errors", &run_id])?;
    let errors = errors.as_array().cloned().unwrap_or_default();
    assert_eq!(
        errors,
        vec![json!({
            "change": "added",
            "key": "{\"id\":3}",
            "rejected": false,
            "message": "email bounced",
            "destination_status": 200,
            "attempts": 1,
            "given_up": false,
        })]
    );
    let table = ok(&dev, token, &["sync-runs", "errors", &run_id]);
    assert!(table.contains("email bounced"), "{table}");
    let stderr = fails(&dev, token, &["sync-runs", "get", "no-such-run"], 1);
    assert!(stderr.contains("not found"), "{stderr}");

    // deleting the sync keeps its history
    ok_json(&dev, token, &["syncs", "delete", &sync_id])?;
    fails(&dev, token, &["syncs", "get", &sync_id], 1);
    let kept = ok_json(&dev, token, &["sync-runs", "get", &run_id])?;
    assert_eq!(field(&kept, "status")?, "succeeded");
    let listed = ok_json(&dev, token, &["sync-runs", "list", "--sync", &sync_id])?;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let errors = ok_json(&dev, token, &["sync-runs", "errors", &run_id])?;
    assert_eq!(errors.as_array().map(Vec::len), Some(1), "{errors}");
    Ok(())
}
