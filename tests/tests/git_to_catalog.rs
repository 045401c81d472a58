//! Issue 4, acceptance 4 and 5, end to end on real parts: a git smart-HTTP server
//! with token auth, credentials, git-sync and model-catalog on NATS and PostgreSQL.
//! Create a connection → initial sync → models listed over gRPC; push a commit →
//! signed push webhook → new version listed; a bad signature changes nothing. No
//! secret ever reaches the database in clear or the logs.

use backflow_proto::catalog::v1 as catalog;
use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use backflow_tests::stack::{post_webhook, sign, start_stack, SERVICE_TOKEN};
use std::io::Write;
use std::sync::{Arc, Mutex};

const WORKSPACE: &str = "ws-e2e";
const GIT_TOKEN: &str = "ghp_E2eTokenThatMustNeverLeak0123456789";
const WEBHOOK_SECRET: &str = "whsec-E2eSecretThatMustNeverLeak";

/// Every log line of the run, to check that no secret was written.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = self.0.lock() {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const PROJECT: &[(&str, &str)] = &[
    ("dbt_project.yml", "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n"),
    ("models/customers.sql", "select 1 as id, 'a@example.com' as email"),
    ("models/orders.sql", "select 1 as order_id, c.id as customer_id from {{ ref('customers') }} c"),
    (
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: customers\n    columns:\n      - name: id\n        tests: [unique, not_null]\n      - name: email\n",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_sync_push_and_list_models() -> anyhow::Result<()> {
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("debug,h2=info,hyper=info,tower=info,sqlx=info")
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    // Global: the services log from every runtime thread. One test per binary.
    tracing::subscriber::set_global_default(subscriber)?;

    let root =
        std::env::temp_dir().join(format!("backflow-e2e-repo-{}", backflow_platform::new_id()));
    let repo = BareRepo::create_with(&root, "shop", PROJECT);
    let server = GitHttpServer::start(&root, GIT_TOKEN);
    let mut stack = start_stack(WORKSPACE).await?;
    let token_id = stack
        .create_secret("git token", credentials::SecretKind::GitToken, GIT_TOKEN)
        .await?;
    let webhook_id = stack
        .create_secret(
            "webhook",
            credentials::SecretKind::WebhookSecret,
            WEBHOOK_SECRET,
        )
        .await?;

    let source_id = stack.create_source("warehouse").await?;

    // connect → initial sync → models listed
    let created = stack
        .git_sync
        .create_connection(gitsync::CreateConnectionRequest {
            workspace_id: WORKSPACE.into(),
            name: "shop".into(),
            settings: Some(gitsync::ConnectionSettings {
                provider: gitsync::GitProvider::Github as i32,
                protocol: gitsync::GitProtocol::Https as i32,
                repository_url: server.url("shop"),
                branch: "main".into(),
                dbt_version: "1.7".into(),
                default_schema: "analytics".into(),
                project_path: String::new(),
                credential_id: token_id.clone(),
                warehouse_source_id: source_id,
                webhook_secret_credential_id: webhook_id,
            }),
        })
        .await?
        .into_inner();
    let connection_id = created
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))?
        .id;
    let first_commit = repo.head("main");
    let models = stack
        .models_at_commit(&connection_id, &first_commit)
        .await?;
    assert_eq!(models.len(), 2);
    let customers = models
        .iter()
        .find(|m| m.name == "customers")
        .ok_or_else(|| anyhow::anyhow!("customers"))?;
    assert_eq!(customers.primary_key_suggestions, vec!["id".to_string()]);
    assert_eq!(
        customers.relation_name,
        "\"warehouse\".\"analytics\".\"customers\""
    );

    // push a change, deliver the signed webhook → new version listed
    let second_commit = repo.commit(
        &[(
            "models/customers.sql",
            "select 2 as id, 'b@example.com' as email",
        )],
        "change customers",
    );
    let body = serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main", "before": first_commit, "after": second_commit,
        "repository": {"full_name": "acme/shop"}
    }))?;
    let hook_url = format!("{}/webhooks/git/{connection_id}", stack.webhook_base);

    // a bad signature changes nothing
    let runs_before = stack.run_count(&connection_id).await?;
    let status = post_webhook(&hook_url, &body, "sha256=00").await?;
    assert_eq!(status, 401);
    let forged = post_webhook(&hook_url, &body, &sign(WEBHOOK_SECRET, b"another body")?).await?;
    assert_eq!(forged, 401);
    assert_eq!(stack.run_count(&connection_id).await?, runs_before);

    let status = post_webhook(&hook_url, &body, &sign(WEBHOOK_SECRET, &body)?).await?;
    assert_eq!(status, 202);
    let models = stack
        .models_at_commit(&connection_id, &second_commit)
        .await?;
    let customers = models
        .iter()
        .find(|m| m.name == "customers")
        .ok_or_else(|| anyhow::anyhow!("customers"))?;
    assert!(
        customers.compiled_sql.contains("select 2"),
        "{}",
        customers.compiled_sql
    );
    // the first version is still there
    let old = stack
        .catalog
        .get_model(catalog::GetModelRequest {
            workspace_id: WORKSPACE.into(),
            connection_id: connection_id.clone(),
            unique_id: "model.shop.customers".into(),
            commit_sha: first_commit.clone(),
        })
        .await?
        .into_inner()
        .model
        .ok_or_else(|| anyhow::anyhow!("old version"))?;
    assert!(old.compiled_sql.contains("select 1"));

    let credentials_dir = stack.credentials_db_dir.clone();
    stack.stop().await;

    // no secret in clear in the credentials database files (db and its WAL)
    for entry in std::fs::read_dir(&credentials_dir)? {
        let path = entry?.path();
        if path.is_file()
            && path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("credentials.db"))
        {
            let bytes = std::fs::read(&path)?;
            for secret in [GIT_TOKEN, WEBHOOK_SECRET] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} in {}",
                    path.display()
                );
            }
        }
    }
    // no secret in the logs of the whole run
    let logs = String::from_utf8_lossy(&logs.0.lock().map_err(|_| anyhow::anyhow!("poisoned"))?)
        .to_string();
    assert!(logs.contains("sync succeeded"), "logs were captured");
    for secret in [GIT_TOKEN, WEBHOOK_SECRET, SERVICE_TOKEN] {
        assert!(!logs.contains(secret), "{secret} leaked into logs");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(credentials_dir);
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}
