//! Issue 10, CLI: a Reverse ETL sync run end to end with the built `backflow` binary
//! against a running `backflow dev` (harness `support::cli`): a git repository with a dbt
//! project (smart-HTTP server), a PostgreSQL warehouse source holding the model's table,
//! a Reverse ETL model, a webhook destination (a local receiver that refuses one record),
//! a sync, `syncs trigger` → `sync-runs watch` to the end → `sync-runs get|list|errors`
//! (tables and `--output json`), and the same through `backflow runs`. Deleting the sync
//! keeps its run history. The setup is `support::retl`.

use serde_json::json;

mod support;

use support::cli::{fails, field, ok, ok_json};
use support::retl::retl_setup;

#[test]
fn a_sync_run_from_the_cli() -> anyhow::Result<()> {
    let setup = retl_setup("cli-runs")?;
    let (dev, token) = (&setup.dev, setup.token());
    let (model_id, destination_id) = (&setup.model_id, &setup.destination_id);
    let accepted = &setup.accepted;
    // without --connection: every run of the workspace (here the connection's initial
    // sync); an unknown connection is an error
    let all = ok_json(dev, token, &["runs", "list"])?;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    assert_eq!(all[0]["connection_id"], json!(setup.connection_id), "{all}");
    let stderr = fails(dev, token, &["runs", "list", "--connection", "no-such"], 1);
    assert!(stderr.contains("connection no-such not found"), "{stderr}");
    let sync = ok_json(
        dev,
        token,
        &[
            "syncs",
            "create",
            "customers to hook",
            "--model",
            model_id,
            "--destination",
            destination_id,
            "--mode",
            "upsert",
            "--map",
            "email=email",
        ],
    )?;
    let sync_id = field(&sync, "id")?;

    // trigger, watch to the end (exit 0: the run succeeded, one record refused)
    let queued = ok_json(dev, token, &["syncs", "trigger", &sync_id])?;
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

    let run = ok_json(dev, token, &["sync-runs", "get", &run_id])?;
    assert_eq!(run["id"], json!(run_id));
    assert_eq!(run["sync_id"], json!(sync_id));
    assert_eq!(field(&run, "status")?, "succeeded", "{run}");
    assert_eq!(run["counts"]["extracted"], json!(5), "{run}");
    assert_eq!(run["counts"]["added"], json!(5), "{run}");
    assert_eq!(run["counts"]["delivered"], json!(4), "{run}");
    assert_eq!(run["counts"]["failed"], json!(1), "{run}");
    let shown = ok(dev, token, &["sync-runs", "get", &run_id]);
    assert!(
        shown.contains(&run_id) && shown.contains("succeeded"),
        "{shown}"
    );

    let listed = ok_json(dev, token, &["sync-runs", "list", "--sync", &sync_id])?;
    let ids: Vec<&str> = listed
        .as_array()
        .map(|runs| runs.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![run_id.as_str()], "{listed}");
    let table = ok(dev, token, &["sync-runs", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&run_id), "{table}");

    let errors = ok_json(dev, token, &["sync-runs", "errors", &run_id])?;
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
    let table = ok(dev, token, &["sync-runs", "errors", &run_id]);
    assert!(table.contains("email bounced"), "{table}");
    let stderr = fails(dev, token, &["sync-runs", "get", "no-such-run"], 1);
    assert!(stderr.contains("not found"), "{stderr}");

    // the same through `backflow runs` (the spelling): get and watch take either
    // kind of run id, --sync / --reverse-etl list Reverse ETL runs, errors is theirs
    let via_runs = ok_json(dev, token, &["runs", "get", &run_id])?;
    assert_eq!(via_runs, run, "runs get answers what sync-runs get does");
    let git_run = ok_json(dev, token, &["runs", "get", &field(&all[0], "id")?])?;
    assert_eq!(
        git_run["connection_id"],
        json!(setup.connection_id),
        "{git_run}"
    );
    let watched = ok_json(dev, token, &["runs", "watch", &run_id])?;
    assert_eq!(field(&watched, "status")?, "succeeded", "{watched}");
    assert_eq!(watched["sync_id"], json!(sync_id), "{watched}");
    let listed_via_runs = ok_json(dev, token, &["runs", "list", "--sync", &sync_id])?;
    assert_eq!(listed_via_runs, listed);
    let every = ok_json(dev, token, &["runs", "list", "--reverse-etl"])?;
    assert_eq!(every.as_array().map(Vec::len), Some(1), "{every}");
    assert_eq!(every[0]["id"], json!(run_id), "{every}");
    let errors_via_runs = ok_json(dev, token, &["runs", "errors", &run_id])?;
    assert_eq!(
        errors_via_runs.as_array().cloned().unwrap_or_default(),
        errors
    );
    let stderr = fails(dev, token, &["runs", "get", "no-such-run"], 1);
    assert!(stderr.contains("run no-such-run not found"), "{stderr}");
    let stderr = fails(
        dev,
        token,
        &["runs", "list", "--connection", "c", "--sync", "s"],
        2,
    );
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    // a dry run followed to its end: one JSON document (the run as it ended), nothing sent
    let dry = ok_json(dev, token, &["syncs", "dry-run", &sync_id, "--watch"])?;
    assert_eq!(field(&dry, "status")?, "succeeded", "{dry}");
    assert_eq!(dry["dry_run"], json!(true), "{dry}");
    assert_eq!(dry["counts"]["delivered"], json!(0), "{dry}");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 4);
    let stderr = fails(dev, token, &["syncs", "approve", &run_id], 1);
    assert!(
        stderr.contains("is not awaiting approval (succeeded)"),
        "{stderr}"
    );

    // deleting the sync keeps its history
    ok_json(dev, token, &["syncs", "delete", &sync_id])?;
    fails(dev, token, &["syncs", "get", &sync_id], 1);
    let kept = ok_json(dev, token, &["sync-runs", "get", &run_id])?;
    assert_eq!(field(&kept, "status")?, "succeeded");
    let listed = ok_json(dev, token, &["sync-runs", "list", "--sync", &sync_id])?;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let errors = ok_json(dev, token, &["sync-runs", "errors", &run_id])?;
    assert_eq!(errors.as_array().map(Vec::len), Some(1), "{errors}");
    Ok(())
}
