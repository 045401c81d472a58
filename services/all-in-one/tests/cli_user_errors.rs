//! Issue 10, CLI, as a demanding user drives it (harness `support::cli`, setup
//! `support::retl`): a run prints in one JSON shape whichever command shows it; an
//! unknown commit is an error naming it; `syncs create` without a mapping says how to
//! map (and `--map-all` maps every column, printed); and every refused value — a bad
//! cron, time zone or interval, unknown ids, an unknown column, a field mapped twice,
//! approving or cancelling a run that is done — exits non-zero with a lowercase message
//! naming it.

use serde_json::{json, Value};
use std::collections::BTreeSet;

mod support;

use support::cli::{fails, field, ok_json, outcome};
use support::retl::retl_setup;

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default()
}

/// The message after `error: `, which must start lowercase.
fn message(stderr: &str) -> &str {
    let message = stderr
        .lines()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or_else(|| panic!("no error line in {stderr:?}"));
    assert!(
        message.chars().next().is_some_and(|c| !c.is_uppercase()),
        "{message}"
    );
    message
}

#[test]
fn what_a_demanding_user_tries() -> anyhow::Result<()> {
    let setup = retl_setup("cli-user-errors")?;
    let (dev, token) = (&setup.dev, setup.token());
    let (model_id, destination_id) = (setup.model_id.as_str(), setup.destination_id.as_str());
    let connection_id = setup.connection_id.as_str();

    // commits: a full sha the catalog never saw is not found (not "0 models"); a prefix
    // of the synced commit, as the tables show it, is that commit; a ref name is no commit
    let listed = ok_json(dev, token, &["models", "list", connection_id])?;
    let sha = field(&listed, "commit_sha")?;
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let stderr = fails(
        dev,
        token,
        &["models", "list", connection_id, "--commit", unknown],
        1,
    );
    assert!(
        message(&stderr).starts_with(&format!(
            "commit {unknown} not found in connection {connection_id}"
        )),
        "{stderr}"
    );
    let stderr = fails(
        dev,
        token,
        &[
            "models",
            "get",
            connection_id,
            "customers",
            "--commit",
            unknown,
        ],
        1,
    );
    assert!(message(&stderr).contains(unknown), "{stderr}");
    let short = ok_json(
        dev,
        token,
        &["models", "list", connection_id, "--commit", &sha[..12]],
    )?;
    assert_eq!(short["commit_sha"], json!(sha));
    assert_eq!(short["models"], listed["models"]);
    let stderr = fails(
        dev,
        token,
        &["models", "list", connection_id, "--commit", "HEAD"],
        1,
    );
    assert!(
        message(&stderr).starts_with(&format!(
            "commit HEAD not found in connection {connection_id}"
        )),
        "{stderr}"
    );

    // a sync needs a mapping: none is a usage error that says how to map
    let create = |extra: &[&str]| {
        let mut args = vec![
            "syncs",
            "create",
            "customers",
            "--model",
            model_id,
            "--destination",
            destination_id,
            "--mode",
            "mirror",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let run_create = |extra: &[&str]| {
        let args = create(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        outcome(dev, token, &args)
    };
    let (code, _, stderr) = run_create(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        message(&stderr).starts_with("syncs create needs a field mapping: --map COLUMN[=FIELD]")
            && stderr.contains("--map-all"),
        "{stderr}"
    );

    // refused values, each named
    let refused: [(&[&str], i32, &str); 8] = [
        (
            &["--map", "email", "--cron", "61 * * * *"],
            1,
            "--cron \"61 * * * *\" is not a valid five-field cron expression (minute hour day-of-month month day-of-week): ",
        ),
        (
            &["--map", "email", "--cron", "0 9 * * *", "--time-zone", "Mars/Olympus"],
            1,
            "--time-zone \"Mars/Olympus\" is not an iana time zone",
        ),
        (&["--map", "email", "--every", "30s"], 2, "\"30s\" is shorter than 1m"),
        (&["--map", "nope=email"], 1, "column \"nope\" is not a column of reverse etl model"),
        (
            &["--map", "email=f", "--constant", "f=1"],
            1,
            "field \"f\" is mapped more than once",
        ),
        (&["--map", "email=f", "--map", "id=f"], 1, "field \"f\" is mapped more than once"),
        (&["--map-all", "--map", "email=email", "--map", "id=email"], 1, "\"email\" is mapped more than once"),
        (
            &["--map", "email", "--max-delete-share", "2"],
            1,
            "--max-delete-share must be between 0 and 1, got 2",
        ),
    ];
    for (extra, code, needle) in refused {
        let (got, stdout, stderr) = run_create(extra);
        assert_eq!(got, code, "{extra:?}: {stdout}{stderr}");
        let said = message(&stderr).to_lowercase();
        assert!(said.contains(&needle.to_lowercase()), "{extra:?}: {stderr}");
    }
    let unknown_ids = [
        (
            vec![
                "syncs",
                "create",
                "x",
                "--model",
                "no-such-model",
                "--destination",
                destination_id,
                "--mode",
                "upsert",
                "--map",
                "email",
            ],
            "reverse etl model no-such-model not found",
        ),
        (
            vec![
                "syncs",
                "create",
                "x",
                "--model",
                model_id,
                "--destination",
                "no-such-destination",
                "--mode",
                "upsert",
                "--map",
                "email",
            ],
            "destination no-such-destination not found",
        ),
        (vec!["syncs", "get", "no-such-sync"], "no-such-sync"),
        (vec!["syncs", "trigger", "no-such-sync"], "no-such-sync"),
        (vec!["sync-runs", "get", "no-such-run"], "no-such-run"),
        (vec!["syncs", "approve", "no-such-run"], "no-such-run"),
        (vec!["syncs", "cancel", "no-such-run"], "no-such-run"),
        (vec!["sync-runs", "errors", "no-such-run"], "no-such-run"),
        (vec!["sync-runs", "watch", "no-such-run"], "no-such-run"),
        (
            vec!["sync-runs", "list", "--sync", "no-such-sync"],
            "no-such-sync",
        ),
        (vec!["syncs", "delete", "no-such-sync"], "no-such-sync"),
        (vec!["syncs", "pause", "no-such-sync"], "no-such-sync"),
        (vec!["syncs", "resume", "no-such-sync"], "no-such-sync"),
        (vec!["syncs", "reset", "no-such-sync"], "no-such-sync"),
        (vec!["syncs", "dry-run", "no-such-sync"], "no-such-sync"),
        (
            vec!["syncs", "update", "no-such-sync", "--name", "x"],
            "no-such-sync",
        ),
        (
            vec!["models", "list", "no-such-connection"],
            "connection no-such-connection not found",
        ),
        (
            vec!["retl-models", "get", "no-such-model"],
            "reverse etl model no-such-model not found",
        ),
        (
            vec!["destinations", "get", "no-such-destination"],
            "no-such-destination",
        ),
    ];
    for (args, id) in unknown_ids {
        let stderr = fails(dev, token, &args, 1);
        assert!(message(&stderr).contains(id), "{args:?}: {stderr}");
    }

    // --map-all: every column but the key, under its own name, and says so
    let args = create(&["--map-all", "-o", "json"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = outcome(dev, token, &args);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("note: --map-all maps email"), "{stderr}");
    let sync: Value = serde_json::from_str(&stdout)?;
    assert_eq!(
        sync["mappings"],
        json!([{"source_column": "email", "destination_field": "email", "constant": null, "null_policy": "send-null"}])
    );
    let sync_id = field(&sync, "id")?;

    // one shape of a run: as queued, as shown, as listed, as watched
    let queued = ok_json(dev, token, &["syncs", "trigger", &sync_id])?;
    let run_id = field(&queued, "id")?;
    let watched = ok_json(dev, token, &["sync-runs", "watch", &run_id])?;
    let shown = ok_json(dev, token, &["sync-runs", "get", &run_id])?;
    assert_eq!(keys(&queued), keys(&shown), "{queued}\n{shown}");
    assert_eq!(queued["cause_id"], shown["cause_id"]);
    assert_eq!(watched, shown);
    let listed = ok_json(dev, token, &["sync-runs", "list", "--sync", &sync_id])?;
    assert_eq!(keys(&listed[0]), keys(&shown), "{listed}");

    // a run that is done can be neither approved nor cancelled
    let stderr = fails(dev, token, &["syncs", "approve", &run_id], 1);
    assert!(
        message(&stderr).contains(&format!("run {run_id} is not awaiting approval")),
        "{stderr}"
    );
    let stderr = fails(dev, token, &["sync-runs", "cancel", &run_id], 1);
    assert!(message(&stderr).contains(&run_id), "{stderr}");
    let stderr = fails(dev, token, &["syncs", "reject", &run_id], 1);
    assert!(message(&stderr).contains(&run_id), "{stderr}");

    // update refuses --map-all (it is for create) and a bad schedule, naming it
    let stderr = fails(dev, token, &["syncs", "update", &sync_id, "--map-all"], 2);
    assert!(
        message(&stderr).contains("--map-all is for syncs create"),
        "{stderr}"
    );
    let stderr = fails(
        dev,
        token,
        &["syncs", "update", &sync_id, "--cron", "every day"],
        1,
    );
    assert!(message(&stderr).contains("\"every day\""), "{stderr}");
    Ok(())
}
