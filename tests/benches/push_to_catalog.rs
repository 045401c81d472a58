//! `make bench`: time from a signed push webhook to the catalog listing the new
//! commit, for a generated 3,000-model dbt project served over git smart-HTTP, with
//! credentials, git-sync and model-catalog on NATS and PostgreSQL (issue 4, point 6;
//! target ≤ 2 s). Prints the initial sync time too.

use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use backflow_tests::stack::{post_webhook, sign, start_stack};
use std::time::Instant;

const TOKEN: &str = "bench-token";
const WEBHOOK_SECRET: &str = "bench-webhook-secret";

fn generate(models: usize, out: &std::path::Path) -> anyhow::Result<()> {
    let generator =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/gen_project.py");
    let status = std::process::Command::new("python3")
        .arg(generator)
        .args(["--models", &models.to_string(), "--out"])
        .arg(out)
        .status()?;
    anyhow::ensure!(status.success(), "project generator failed");
    Ok(())
}

async fn finished_run(
    stack: &backflow_tests::stack::Stack,
    run_id: &str,
) -> anyhow::Result<gitsync::SyncRun> {
    let client = stack.git_sync.clone();
    backflow_tests::eventually(std::time::Duration::from_secs(600), "the sync run", || {
        let mut client = client.clone();
        let request = gitsync::GetRunRequest {
            workspace_id: "ws-bench".into(),
            run_id: run_id.into(),
        };
        async move {
            let run = client.get_run(request).await.ok()?.into_inner().run?;
            (run.finished_at_unix_ms > 0).then_some(run)
        }
    })
    .await
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let models: usize = std::env::var("BENCH_PUSH_MODELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let root = std::env::temp_dir().join(format!("backflow-bench-{}", backflow_platform::new_id()));
    let repo = BareRepo::empty(&root, "bench");
    // The generator owns its output directory, so generate beside the clone and copy.
    let generated = root.join("generated");
    generate(models, &generated)?;
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", generated.display()))
        .arg(repo.scratch())
        .status()?;
    anyhow::ensure!(copied.success(), "copying the generated project failed");
    let first = repo.commit(&[], "generated project");
    let server = GitHttpServer::start(&root, TOKEN);
    let mut stack = start_stack("ws-bench").await?;
    let token_id = stack
        .create_secret("token", credentials::SecretKind::GitToken, TOKEN)
        .await?;
    let hook_id = stack
        .create_secret(
            "hook",
            credentials::SecretKind::WebhookSecret,
            WEBHOOK_SECRET,
        )
        .await?;
    let source_id = stack.create_source("warehouse").await?;

    let started = Instant::now();
    let created = stack
        .git_sync
        .create_connection(gitsync::CreateConnectionRequest {
            workspace_id: "ws-bench".into(),
            name: "bench".into(),
            settings: Some(gitsync::ConnectionSettings {
                provider: gitsync::GitProvider::Github as i32,
                protocol: gitsync::GitProtocol::Https as i32,
                repository_url: server.url("bench"),
                branch: "main".into(),
                dbt_version: "1.7".into(),
                default_schema: "analytics".into(),
                project_path: String::new(),
                credential_id: token_id,
                warehouse_source_id: source_id,
                webhook_secret_credential_id: hook_id,
            }),
        })
        .await?
        .into_inner();
    let connection = created
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))?;
    let run_id = created.initial_run.map(|run| run.id).unwrap_or_default();
    let run = finished_run(&stack, &run_id).await?;
    anyhow::ensure!(run.error.is_empty(), "initial sync failed: {}", run.error);
    let synced = started.elapsed();
    let listed = stack.models_at_commit(&connection.id, &first).await?;
    let initial = started.elapsed();

    // change one model, push, deliver the webhook, wait for the catalog
    let model = walk_first_sql(&repo.scratch().join("models"))?;
    let mut text = std::fs::read_to_string(&model)?;
    text.push_str("\n-- changed by the benchmark\n");
    std::fs::write(&model, text)?;
    let second = repo.commit(&[], "change one model");
    let body = serde_json::to_vec(
        &serde_json::json!({"ref": "refs/heads/main", "before": first, "after": second}),
    )?;
    let hook = format!("{}/webhooks/git/{}", stack.webhook_base, connection.id);
    let pushed = Instant::now();
    let status = post_webhook(&hook, &body, &sign(WEBHOOK_SECRET, &body)?).await?;
    anyhow::ensure!(status == 202, "webhook answered {status}");
    stack
        .wait_for_catalog_commit(&connection.id, &second)
        .await?;
    let push_to_catalog = pushed.elapsed();
    let updated = stack.models_at_commit(&connection.id, &second).await?;
    anyhow::ensure!(updated.len() == listed.len(), "model count changed");

    println!(
        "push-to-catalog benchmark ({models} models generated, {} in the catalog)",
        listed.len()
    );
    println!(
        "  initial sync (connect → run finished):    {:>8.0} ms",
        synced.as_secs_f64() * 1000.0
    );
    println!(
        "  initial sync (connect → models listed):   {:>8.0} ms",
        initial.as_secs_f64() * 1000.0
    );
    println!(
        "  push webhook → catalog updated:            {:>8.0} ms   (target ≤ 2000 ms)",
        push_to_catalog.as_secs_f64() * 1000.0
    );
    stack.stop().await;
    drop(server);
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}

fn walk_first_sql(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if let Ok(found) = walk_first_sql(&path) {
                return Ok(found);
            }
        } else if path.extension().is_some_and(|ext| ext == "sql") {
            return Ok(path);
        }
    }
    anyhow::bail!("no model in {}", dir.display())
}
