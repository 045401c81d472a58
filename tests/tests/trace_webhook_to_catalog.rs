//! Issue 7, acceptance 5 (traces): one trace runs push webhook → git-sync run →
//! catalog update, across two NATS hops and a gRPC call, on real parts. Spans are kept
//! by an in-memory OpenTelemetry exporter; the test checks the parent links:
//! the sync-command consumer's span is a child of the webhook span (via the outbox
//! row's `traceparent` and the NATS header), the catalog's snapshot consumer is a
//! child of a git-sync sync span, and git-sync's `FetchSnapshot` server span is a
//! child of the catalog's consumer (via gRPC metadata).

use backflow_platform::testing::{capture_spans, SpanData};
use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use backflow_tests::eventually;
use backflow_tests::stack::{post_webhook, sign, start_stack};
use std::time::Duration;

const WORKSPACE: &str = "ws-trace";
const GIT_TOKEN: &str = "ghp_TraceTestToken0123456789";
const WEBHOOK_SECRET: &str = "whsec-TraceTest";

const PROJECT: &[(&str, &str)] = &[
    (
        "dbt_project.yml",
        "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n",
    ),
    ("models/customers.sql", "select 1 as id"),
];

fn named<'a>(spans: &'a [SpanData], name: &str, trace: &str) -> Vec<&'a SpanData> {
    spans
        .iter()
        .filter(|span| span.name == name && span.span_context.trace_id().to_string() == trace)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_webhook_to_catalog() -> anyhow::Result<()> {
    let (exporter, _guard) = capture_spans()?;
    let root = std::env::temp_dir().join(format!(
        "backflow-trace-repo-{}",
        backflow_platform::new_id()
    ));
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
    let connection_id = stack
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
                credential_id: token_id,
                warehouse_source_id: source_id,
                webhook_secret_credential_id: webhook_id,
            }),
        })
        .await?
        .into_inner()
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))?
        .id;
    let first = repo.head("main");
    stack
        .wait_for_catalog_commit(&connection_id, &first)
        .await?;

    let second = repo.commit(&[("models/customers.sql", "select 2 as id")], "change");
    let body = serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main", "before": first, "after": second,
        "repository": {"full_name": "acme/shop"}
    }))?;
    let hook_url = format!("{}/webhooks/git/{connection_id}", stack.webhook_base);
    let status = post_webhook(&hook_url, &body, &sign(WEBHOOK_SECRET, &body)?).await?;
    assert_eq!(status, 202);
    stack
        .wait_for_catalog_commit(&connection_id, &second)
        .await?;

    // The push's trace: the one webhook span that queued a sync (status 202).
    let spans = eventually(Duration::from_secs(30), "the catalog's spans", || {
        let exporter = exporter.clone();
        async move {
            let spans = exporter.get_finished_spans().ok()?;
            let webhook = spans
                .iter()
                .rev()
                .find(|span| span.name == "webhook.push")?;
            let trace = webhook.span_context.trace_id().to_string();
            let done = !named(&spans, "catalog.record_snapshot", &trace).is_empty()
                && !named(&spans, "consume model-catalog-snapshots", &trace).is_empty();
            done.then_some(spans)
        }
    })
    .await
    .map_err(|error| {
        // Say what the trace did contain, to see which hop lost it.
        let spans = exporter.get_finished_spans().unwrap_or_default();
        let names: Vec<String> = spans
            .iter()
            .map(|s| {
                format!(
                    "{} {} parent={}",
                    s.span_context.trace_id(),
                    s.name,
                    s.parent_span_id
                )
            })
            .collect();
        anyhow::anyhow!("{error}; finished spans:\n{}", names.join("\n"))
    })?;
    let webhook = spans
        .iter()
        .rev()
        .find(|span| span.name == "webhook.push")
        .ok_or_else(|| anyhow::anyhow!("no webhook span"))?;
    let trace = webhook.span_context.trace_id().to_string();
    let span_ids_of = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .flat_map(|name| named(&spans, name, &trace))
            .map(|span| span.span_context.span_id().to_string())
            .collect()
    };

    // hop 1: webhook → outbox row → NATS → git-sync's sync-command consumer
    let command_consumers = named(&spans, "consume git-sync-sync-commands", &trace);
    assert_eq!(
        command_consumers.len(),
        1,
        "one sync-command delivery in the push's trace"
    );
    let command_consumer = command_consumers[0];
    assert_eq!(
        command_consumer.parent_span_id,
        webhook.span_context.span_id(),
        "the consumer's parent is the webhook span"
    );
    assert!(command_consumer.parent_span_is_remote);
    let runs = named(&spans, "sync.run", &trace);
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].parent_span_id,
        command_consumer.span_context.span_id()
    );
    for step in [
        "sync.execute",
        "sync.parse",
        "sync.credentials",
        "sync.fetch",
    ] {
        assert!(
            !named(&spans, step, &trace).is_empty(),
            "{step} in the trace"
        );
    }

    // hop 2: the run's snapshot event → NATS → the catalog's snapshot consumer
    let snapshot_consumers = named(&spans, "consume model-catalog-snapshots", &trace);
    assert_eq!(snapshot_consumers.len(), 1);
    let snapshot_consumer = snapshot_consumers[0];
    assert!(snapshot_consumer.parent_span_is_remote);
    let git_sync_spans = span_ids_of(&["sync.run", "sync.execute", "sync.parse"]);
    assert!(
        git_sync_spans.contains(&snapshot_consumer.parent_span_id.to_string()),
        "the catalog consumer's parent {} is a git-sync sync span {git_sync_spans:?}",
        snapshot_consumer.parent_span_id
    );
    let recorded = named(&spans, "catalog.record_snapshot", &trace);
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].parent_span_id,
        snapshot_consumer.span_context.span_id()
    );

    // and the gRPC call in between: the catalog fetches the snapshot from git-sync
    let fetches = named(
        &spans,
        "backflow.gitsync.v1.GitSyncService/FetchSnapshot",
        &trace,
    );
    assert_eq!(
        fetches.len(),
        1,
        "FetchSnapshot's server span joins the trace"
    );
    assert_eq!(
        fetches[0].parent_span_id,
        snapshot_consumer.span_context.span_id()
    );
    assert!(fetches[0].parent_span_is_remote);

    stack.stop().await;
    drop(server);
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}
