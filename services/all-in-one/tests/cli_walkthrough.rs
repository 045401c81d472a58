//! Issue 7, acceptance 1: the README's walkthrough, run with the built `backflow`
//! binary as a subprocess against a running `backflow dev` (empty data dir, ports
//! chosen by the OS, its own NATS namespace; the CLI finds the front door in the
//! `./data/cli.json` dev writes) and a real smart-HTTP git server: an admin token from
//! `backflow tokens create` → secret
//! from a file (rotated from stdin) → warehouse source → connection → initial sync
//! watched → models → push → `connections sync` → `runs watch` to completion →
//! `--output json` parsed and compared whole; a broken commit's watched run exits 1;
//! settings change and delete. Usage errors exit 2; a refused call exits 1 with the
//! server's message, also for an unknown token.

use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use serde_json::{json, Value};

mod support;

use support::cli::{admin_token, eventually_json, field, number, ok, ok_json, text, Dev};

const GIT_TOKEN: &str = "ghp_CliWalkthroughToken0123456789";

const PROJECT: &[(&str, &str)] = &[
    (
        "dbt_project.yml",
        "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n",
    ),
    (
        "models/customers.sql",
        "select 1 as id, 'a@example.com' as email",
    ),
    (
        "models/orders.sql",
        "select 1 as order_id, c.id as customer_id from {{ ref('customers') }} c",
    ),
    (
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: customers\n    description: one row per customer\n    columns:\n      - name: id\n        tests: [unique, not_null]\n      - name: email\n",
    ),
];

/// The run as `runs watch` / `runs get` print it, with the fields only the server knows.
fn expected_run(
    run: &Value,
    connection_id: &str,
    trigger: &str,
    commit: &str,
) -> anyhow::Result<Value> {
    Ok(json!({
        "id": field(run, "id")?,
        "connection_id": connection_id,
        "trigger": trigger,
        "status": "succeeded",
        "commit_sha": commit,
        "model_count": 2,
        "error": "",
        "node_errors": [],
        "queued_at_unix_ms": number(run, "queued_at_unix_ms")?,
        "started_at_unix_ms": number(run, "started_at_unix_ms")?,
        "finished_at_unix_ms": number(run, "finished_at_unix_ms")?,
        "duration_ms": number(run, "duration_ms")?,
    }))
}

#[test]
fn cli_walkthrough_against_backflow_dev() -> anyhow::Result<()> {
    let root = std::env::temp_dir().join(format!("backflow-cli-{}", backflow_platform::new_id()));
    let workdir = root.join("work");
    std::fs::create_dir_all(&workdir)?;
    let repo = BareRepo::create_with(&root.join("git"), "shop", PROJECT);
    let server = GitHttpServer::start(&root.join("git"), GIT_TOKEN);
    let dev = Dev::start(&workdir)?;

    // 1. token
    let token = admin_token(&dev)?;
    assert!(token.starts_with("bf_"), "an api token: {token}");
    let token = Some(token.as_str());

    // 2. a secret from a file (with the newline `echo` adds); material never on argv
    let token_file = root.join("git-token.txt");
    std::fs::write(&token_file, format!("{GIT_TOKEN}\n"))?;
    let secret = ok_json(
        &dev,
        token,
        &[
            "secrets",
            "create",
            "shop-token",
            "--kind",
            "git-token",
            "--material-file",
            &token_file.display().to_string(),
        ],
    )?;
    let secret_id = field(&secret, "id")?;
    assert_eq!(
        secret,
        json!({
            "id": secret_id,
            "workspace_id": "default",
            "name": "shop-token",
            "kind": "git-token",
            // credentials fills in the provider's default token username.
            "attributes": {"username": "x-access-token"},
            "current_version": 1,
            "created_at_unix_ms": number(&secret, "created_at_unix_ms")?,
            "updated_at_unix_ms": number(&secret, "updated_at_unix_ms")?,
        })
    );
    let listed = ok(&dev, token, &["secrets", "list"]);
    let mut lines = listed.lines();
    assert_eq!(
        lines
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "ID",
            "NAME",
            "KIND",
            "VERSION",
            "ATTRIBUTES",
            "UPDATED"
        ])
    );
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with(&format!("{secret_id}  shop-token  git-token  1")),
        "{listed}"
    );
    assert!(!listed.contains(GIT_TOKEN), "material is never printed");

    // a new version, from stdin this time
    let rotated = dev.cli_stdin(
        &[
            "secrets",
            "rotate",
            &secret_id,
            "--material-file",
            "-",
            "--output",
            "json",
        ],
        token,
        &format!("{GIT_TOKEN}\n"),
    )?;
    assert_eq!(rotated.status.code(), Some(0), "{}", text(&rotated.stderr));
    let rotated: Value = serde_json::from_slice(&rotated.stdout)?;
    assert_eq!(number(&rotated, "current_version")?, 2);

    // attributes change without new material (the same path re-pins SSH known_hosts);
    // material and version stay, an attribute the kind does not allow is refused
    let updated = ok_json(
        &dev,
        token,
        &[
            "secrets",
            "update",
            &secret_id,
            "--attribute",
            "username=x-access-token",
        ],
    )?;
    assert_eq!(updated["attributes"], json!({"username": "x-access-token"}));
    assert_eq!(number(&updated, "current_version")?, 2);
    let refused = dev.cli(
        &[
            "secrets",
            "update",
            &secret_id,
            "--attribute",
            "private_key=x",
        ],
        token,
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let nothing = dev.cli(&["secrets", "update", &secret_id], token);
    assert_eq!(nothing.status.code(), Some(2), "{}", text(&nothing.stderr));

    // 3. the warehouse source the models run in: its password is a secret, and the
    // connection test is skipped (db.internal does not exist here)
    std::fs::write(dev.workdir.join("shop-db-password"), "s3cret")?;
    let password = ok_json(
        &dev,
        token,
        &[
            "secrets",
            "create",
            "shop-db-password",
            "--kind",
            "warehouse-password",
            "--material-file",
            "shop-db-password",
        ],
    )?;
    let password_id = field(&password, "id")?;
    let source = ok_json(
        &dev,
        token,
        &[
            "sources",
            "create",
            "shop-db",
            "--kind",
            "postgres",
            "--setting",
            "host=db.internal",
            "--setting",
            "database=shop",
            "--setting",
            "user=shop",
            "--credential",
            &password_id,
            "--skip-test",
        ],
    )?;
    let source_id = field(&source, "id")?;
    assert_eq!(source["name"], json!("shop-db"));
    assert_eq!(source["kind"], json!("postgres"));
    assert_eq!(source["credential_id"], json!(password_id));
    assert_eq!(
        source["settings"],
        json!({"database": "shop", "host": "db.internal", "user": "shop"})
    );

    // 4. a connection; its initial sync watched to the end
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
            &secret_id,
            "--warehouse-source",
            &source_id,
        ],
    )?;
    let connection = &created["connection"];
    let connection_id = field(connection, "id")?;
    assert_eq!(
        connection,
        &json!({
            "id": connection_id,
            "workspace_id": "default",
            "name": "shop",
            "settings": {
                "provider": "github",
                "protocol": "https",
                "repository_url": server.url("shop"),
                "branch": "main",
                "dbt_version": "1.7",
                "default_schema": "analytics",
                "project_path": "",
                "credential_id": secret_id,
                "warehouse_source_id": source_id,
                "webhook_secret_credential_id": "",
            },
            "settings_version": 1,
            "created_at_unix_ms": number(connection, "created_at_unix_ms")?,
            "updated_at_unix_ms": number(connection, "updated_at_unix_ms")?,
        })
    );
    let initial_run = field(&created["run"], "id")?;
    assert_eq!(field(&created["run"], "trigger")?, "initial");
    let first_commit = repo.head("main");
    let watched = ok_json(
        &dev,
        token,
        &["runs", "watch", &initial_run, "--timeout-seconds", "60"],
    )?;
    assert_eq!(
        watched,
        expected_run(&watched, &connection_id, "initial", &first_commit)?
    );

    // 5. models, with compiled SQL, columns and key suggestions
    let models = eventually_json(&dev, token, &["models", "list", &connection_id], |m| {
        m["commit_sha"] == json!(first_commit)
    })?;
    assert_eq!(models["commit_sha"], json!(first_commit));
    let names: Vec<&str> = models["models"]
        .as_array()
        .map(|models| models.iter().filter_map(|m| m["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["customers", "orders"]);
    let table = ok(&dev, token, &["models", "list", &connection_id]);
    assert_eq!(
        table
            .lines()
            .nth(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "NAME",
            "MATERIALIZED",
            "RELATION",
            "COLUMNS",
            "KEY",
            "ERROR"
        ]),
        "{table}"
    );
    let customers = ok_json(&dev, token, &["models", "get", &connection_id, "customers"])?;
    assert_eq!(
        customers,
        json!({
            "unique_id": "model.shop.customers",
            "connection_id": connection_id,
            "commit_sha": first_commit,
            "name": "customers",
            "package_name": "shop",
            "original_file_path": "models/customers.sql",
            // the source's database: git-sync parses with the source's adapter and database
            "database": "shop",
            "schema": "analytics",
            "alias": "customers",
            "relation_name": "\"shop\".\"analytics\".\"customers\"",
            "materialized": "view",
            "description": "one row per customer",
            "tags": [],
            "columns": [
                {"name": "id", "description": "", "data_type": "", "tests": ["not_null", "unique"]},
                {"name": "email", "description": "", "data_type": "", "tests": []},
            ],
            "depends_on": [],
            "compiled_sql": "select 1 as id, 'a@example.com' as email",
            // sha256 of models/customers.sql, as dbt computes it
            "checksum": "2ca408e4ef8d75983fb35ee0eadfb8ef719f9ac67dba059b9fa98c5e9c4143cf",
            "primary_key_suggestions": ["id"],
            "compile_error": "",
        })
    );
    let shown = ok(
        &dev,
        token,
        &["models", "get", &connection_id, "model.shop.customers"],
    );
    assert!(shown.contains("key suggestions: id"), "{shown}");
    assert!(
        shown.contains("compiled sql:\n  select 1 as id, 'a@example.com' as email\n"),
        "{shown}"
    );

    // 6. push a commit, sync, watch the run to completion
    let second_commit = repo.commit(
        &[(
            "models/customers.sql",
            "select 2 as id, 'b@example.com' as email",
        )],
        "change customers",
    );
    let queued = ok_json(&dev, token, &["connections", "sync", &connection_id])?;
    assert_eq!(field(&queued, "trigger")?, "manual");
    let run_id = field(&queued, "id")?;
    // Human output, stderr not a terminal: plain progress lines, then the run.
    let watch = dev.cli(
        &["runs", "watch", &run_id, "--timeout-seconds", "60"],
        token,
    );
    assert_eq!(watch.status.code(), Some(0), "{}", text(&watch.stderr));
    let progress = text(&watch.stderr);
    assert!(
        progress
            .lines()
            .last()
            .is_some_and(|line| line.starts_with(&format!(
                "run {run_id}: succeeded at {}",
                &second_commit[..12]
            ))),
        "{progress}"
    );
    assert!(
        !progress.contains('\u{1b}'),
        "no terminal escapes when stderr is a pipe: {progress:?}"
    );
    let shown = text(&watch.stdout);
    assert!(
        shown
            .lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["status:", "succeeded"]),
        "{shown}"
    );
    let run = ok_json(&dev, token, &["runs", "get", &run_id])?;
    assert_eq!(
        run,
        expected_run(&run, &connection_id, "manual", &second_commit)?
    );
    let runs = ok_json(
        &dev,
        token,
        &["runs", "list", "--connection", &connection_id],
    )?;
    let ids: Vec<&str> = runs
        .as_array()
        .map(|runs| runs.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![run_id.as_str(), initial_run.as_str()]);
    let customers = eventually_json(
        &dev,
        token,
        &["models", "get", &connection_id, "customers"],
        |m| m["commit_sha"] == json!(second_commit),
    )?;
    assert_eq!(customers["commit_sha"], json!(second_commit));
    assert_eq!(
        customers["compiled_sql"],
        json!("select 2 as id, 'b@example.com' as email")
    );

    // 7. the project as the catalog sees it
    let projects = eventually_json(&dev, token, &["projects", "list"], |p| {
        p[0]["last_run_id"] == json!(run_id)
    })?;
    let project = &projects[0];
    assert_eq!(projects.as_array().map(Vec::len), Some(1));
    assert_eq!(
        project,
        &json!({
            "connection_id": connection_id,
            "workspace_id": "default",
            "name": "shop",
            "repository_url": server.url("shop"),
            "branch": "main",
            "default_schema": "analytics",
            "latest_commit_sha": second_commit,
            "model_count": 2,
            "deleted": false,
            "updated_at_unix_ms": number(project, "updated_at_unix_ms")?,
            "status": "ok",
            "last_run_id": run_id,
            "last_error": "",
            "last_attempted_commit": second_commit,
            "error_count": 0,
        })
    );

    // 8. a commit that breaks the project: the watched run fails, exit 1
    let broken_commit = repo.commit(&[("dbt_project.yml", "name: [shop\n")], "break the project");
    let failed = dev.cli(
        &[
            "connections",
            "sync",
            &connection_id,
            "--watch",
            "--output",
            "json",
        ],
        token,
    );
    let stderr = text(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    let run: Value = serde_json::from_slice(&failed.stdout)?;
    assert_eq!(field(&run, "status")?, "failed");
    let error = field(&run, "error")?;
    assert!(!error.is_empty());
    assert_eq!(
        stderr.lines().last(),
        Some(format!("error: run {} failed: {error}", field(&run, "id")?).as_str()),
        "{stderr}"
    );
    // The project says so, and still serves the last good commit.
    let failed_run = field(&run, "id")?;
    let project = eventually_json(&dev, token, &["projects", "get", &connection_id], |p| {
        p["last_run_id"] == json!(failed_run)
    })?;
    assert_eq!(field(&project, "status")?, "failing");
    assert_eq!(field(&project, "last_error")?, error);
    assert_eq!(field(&project, "last_attempted_commit")?, broken_commit);
    assert_eq!(field(&project, "latest_commit_sha")?, second_commit);
    let listed = ok(&dev, token, &["projects", "list"]);
    let header: Vec<&str> = listed
        .lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .filter(|h| !h.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        [
            "CONNECTION",
            "NAME",
            "BRANCH",
            "STATUS",
            "COMMIT",
            "MODELS",
            "ERRORS",
            "LAST ERROR"
        ],
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .nth(1)
            .is_some_and(|row| row.contains("  failing  ")),
        "{listed}"
    );

    // 9. usage errors exit 2, refused calls exit 1 with the server's message
    let usage = dev.cli(&["connections", "create", "x", "--frobnicate"], token);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage.stderr));
    let missing_file = dev.cli(
        &[
            "secrets",
            "create",
            "x",
            "--kind",
            "git-token",
            "--material-file",
            "/nonexistent/token",
        ],
        token,
    );
    assert_eq!(missing_file.status.code(), Some(2));
    assert!(
        text(&missing_file.stderr)
            .starts_with("error: cannot read the material file /nonexistent/token"),
        "{}",
        text(&missing_file.stderr)
    );
    // output into a pipe closed early (`| head`) ends quietly, no panic
    let project = dev.workdir.join("project");
    for (path, body) in PROJECT {
        let path = project.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(&project))?;
        std::fs::write(path, body)?;
    }
    let mut parse = dev
        .command(
            &["dbt", "parse", "project", "--target-schema", "analytics"],
            token,
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    drop(parse.stdout.take());
    let parsed = parse.wait_with_output()?;
    assert_eq!(parsed.status.code(), Some(0), "{}", text(&parsed.stderr));
    assert!(
        !text(&parsed.stderr).contains("panicked"),
        "{}",
        text(&parsed.stderr)
    );
    let not_found = dev.cli(&["connections", "get", "nope"], token);
    assert_eq!(not_found.status.code(), Some(1));
    assert_eq!(
        text(&not_found.stderr),
        "error: connection nope not found\n"
    );
    assert!(not_found.stdout.is_empty());
    let refused = dev.cli(
        &[
            "connections",
            "create",
            "other",
            "--url",
            &server.url("missing"),
            "--provider",
            "github",
            "--schema",
            "analytics",
            "--credential",
            &secret_id,
            "--warehouse-source",
            &source_id,
        ],
        token,
    );
    assert_eq!(refused.status.code(), Some(1));
    let message = text(&refused.stderr);
    assert!(
        message.starts_with("error: cannot reach the repository: ") && message.lines().count() == 1,
        "{message}"
    );

    // a connection must name an existing warehouse source of the workspace
    let unknown_source = dev.cli(
        &[
            "connections",
            "create",
            "other",
            "--url",
            &server.url("shop"),
            "--provider",
            "github",
            "--schema",
            "analytics",
            "--credential",
            &secret_id,
            "--warehouse-source",
            "no-such-source",
        ],
        token,
    );
    assert_eq!(unknown_source.status.code(), Some(1));
    assert_eq!(
        text(&unknown_source.stderr),
        "error: warehouse source no-such-source does not exist in workspace default: create it first (backflow sources create) and name its id\n"
    );

    // An unknown token: UNAUTHENTICATED, printed as the server's one-line message.
    let refused = dev.cli(&["connections", "list", "--token", "bf_unknown"], None);
    let message = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{message}");
    assert!(
        message.starts_with("error: ")
            && message.lines().count() == 1
            && !message.contains("Status {"),
        "{message}"
    );

    // 10. settings change and delete
    let updated = ok_json(
        &dev,
        token,
        &[
            "connections",
            "update",
            &connection_id,
            "--project-path",
            ".",
        ],
    )?;
    assert_eq!(number(&updated["connection"], "settings_version")?, 2);
    assert_eq!(
        field(&updated["connection"]["settings"], "project_path")?,
        ""
    );
    let deleted = ok_json(&dev, token, &["connections", "delete", &connection_id])?;
    assert_eq!(deleted, json!({}));
    assert_eq!(ok_json(&dev, token, &["connections", "list"])?, json!([]));

    drop(dev);
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
