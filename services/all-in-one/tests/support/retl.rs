//! A Reverse ETL setup made through the CLI, for the CLI tests that run syncs: a git
//! repository with a dbt project `shop` (model `customers`, smart-HTTP server), a
//! PostgreSQL warehouse source whose `analytics.customers` holds five rows, a `backflow
//! dev` with an admin token, the git connection parsed into the catalog, a Reverse ETL
//! model on `customers` (key `id`) and a webhook destination (a local receiver that
//! refuses the record with id 3).

use super::cli::{admin_token, eventually_json, field, ok_json, Dev};
use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

const GIT_TOKEN: &str = "ghp_CliRetlSetupToken0123456789";

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

/// What the setup made; `backflow dev` stops when it is dropped.
pub struct RetlSetup {
    pub dev: Dev,
    pub admin: String,
    pub workdir: PathBuf,
    pub connection_id: String,
    pub model_id: String,
    pub destination_id: String,
    /// Records the destination accepted.
    pub accepted: Arc<AtomicUsize>,
    _git: GitHttpServer,
}

impl RetlSetup {
    pub fn token(&self) -> Option<&str> {
        Some(self.admin.as_str())
    }
}

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
            let body = super::http::read_json_body(&mut stream);
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

/// Makes everything above; `name` tells the temp dirs apart.
pub fn retl_setup(name: &str) -> anyhow::Result<RetlSetup> {
    let root =
        std::env::temp_dir().join(format!("backflow-{name}-{}", backflow_platform::new_id()));
    let workdir = root.join("work");
    std::fs::create_dir_all(&workdir)?;
    let _repo = BareRepo::create_with(&root.join("git"), "shop", PROJECT);
    let server = GitHttpServer::start(&root.join("git"), GIT_TOKEN);
    // the warehouse: the dbt model's relation analytics.customers, built "by dbt"
    let runtime = tokio::runtime::Runtime::new()?;
    let warehouse_url = runtime.block_on(backflow_platform::testing::fresh_postgres_url(
        "cli_retl_wh",
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
    let admin = admin_token(&dev)?;
    let token = Some(admin.as_str());

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
    Ok(RetlSetup {
        dev,
        admin,
        workdir,
        connection_id,
        model_id,
        destination_id,
        accepted,
        _git: server,
    })
}
