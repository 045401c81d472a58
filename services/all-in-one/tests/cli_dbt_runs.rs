//! Issue 11, dbt Core from any orchestrator, through the built `backflow` binary against
//! a running `backflow dev` (setup `support::retl`): two syncs scheduled after dbt Core
//! runs of project `shop` (one "only if rebuilt"); `backflow dbt-run notify
//! --run-results <file> --project shop` with a run_results.json that rebuilt
//! `customers` triggers both and prints them, the runs deliver; the same file again is
//! "notified before" and triggers nothing more; a run that did not build the model
//! skips the guarded sync with the reason and leaves the other alone; a file that is not
//! run_results.json is refused (exit 1) and a missing one is a usage error (exit 2).

use serde_json::{json, Value};

mod support;

use support::cli::{fails, field, ok, ok_json};
use support::retl::retl_setup;

fn run_results(invocation_id: &str, nodes: &[(&str, &str)]) -> Value {
    json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v5.json",
            "dbt_version": "1.7.20",
            "generated_at": "2026-12-01T10:00:00.000000Z",
            "invocation_id": invocation_id,
            "env": {}
        },
        "results": nodes.iter().map(|(id, status)| json!({"unique_id": id, "status": status})).collect::<Vec<_>>(),
        "elapsed_time": 2.5,
        "args": {"which": "build"}
    })
}

/// The runs `notify --output json` printed, as (sync name, status, reason).
fn outcomes(notified: &Value) -> Vec<(String, String, String)> {
    notified["runs"]
        .as_array()
        .map(|runs| {
            runs.iter()
                .map(|run| {
                    let text = |key: &str| run[key].as_str().unwrap_or_default().to_string();
                    (text("sync_name"), text("status"), text("reason"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn dbt_run_notify_triggers_the_syncs_whose_model_was_rebuilt() -> anyhow::Result<()> {
    let setup = retl_setup("cli-dbt-runs")?;
    let (dev, token) = (&setup.dev, setup.token());
    let mut syncs = Vec::new();
    for (name, guarded) in [("after shop", false), ("after shop, only if rebuilt", true)] {
        let mut args = vec![
            "syncs",
            "create",
            name,
            "--model",
            &setup.model_id,
            "--destination",
            &setup.destination_id,
            "--mode",
            "upsert",
            "--map",
            "email=email",
            "--after-dbt-core-run",
            "shop",
        ];
        if guarded {
            args.push("--only-if-model-rebuilt");
        }
        let sync = ok_json(dev, token, &args)?;
        assert_eq!(field(&sync, "schedule")?, "after a dbt core run of shop");
        syncs.push(field(&sync, "id")?);
    }

    // a dbt build that rebuilt customers: both syncs run and deliver
    let rebuilt = run_results("inv-cli-rebuilt", &[("model.shop.customers", "success")]);
    std::fs::write(
        setup.workdir.join("rebuilt.json"),
        serde_json::to_vec(&rebuilt)?,
    )?;
    let args = [
        "dbt-run",
        "notify",
        "--run-results",
        "rebuilt.json",
        "--project",
        "shop",
    ];
    let notified = ok_json(dev, token, &args)?;
    assert_eq!(
        notified["accepted"]["status"],
        json!("announced"),
        "{notified}"
    );
    assert_eq!(
        notified["accepted"]["cause_id"],
        json!("dbt-core:inv-cli-rebuilt")
    );
    assert_eq!(notified["accepted"]["project"], json!("shop"));
    assert_eq!(notified["accepted"]["succeeded_nodes"], json!(1));
    let outcomes_seen = outcomes(&notified);
    let names: Vec<&str> = outcomes_seen.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["after shop", "after shop, only if rebuilt"],
        "{notified}"
    );
    assert!(
        outcomes_seen
            .iter()
            .all(|(_, status, reason)| status != "skipped" && reason.is_empty()),
        "{notified}"
    );
    for run in notified["runs"].as_array().cloned().unwrap_or_default() {
        let run_id = field(&run, "run_id")?;
        let watched = dev.cli(&["sync-runs", "watch", &run_id], token);
        assert_eq!(
            watched.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&watched.stdout),
            String::from_utf8_lossy(&watched.stderr)
        );
        let got = ok_json(dev, token, &["sync-runs", "get", &run_id])?;
        assert_eq!(field(&got, "trigger")?, "dbt-core", "{got}");
    }
    // each sync delivered the four records the receiver accepts (it refuses id 3)
    assert_eq!(setup.accepted.load(std::sync::atomic::Ordering::SeqCst), 8);

    // the same file again: notified before, nothing more runs (the table says so)
    let again = ok(dev, token, &args);
    assert!(
        again.starts_with(
            "dbt core run inv-cli-rebuilt was notified before (1 node succeeded, 0 failed)"
        ),
        "{again}"
    );
    for sync in &syncs {
        let listed = ok_json(dev, token, &["sync-runs", "list", "--sync", sync])?;
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    }

    // a run that did not build customers: the guarded sync is skipped with the reason,
    // the other is not concerned
    let lacking = run_results("inv-cli-lacking", &[("model.shop.orders", "success")]);
    std::fs::write(
        setup.workdir.join("lacking.json"),
        serde_json::to_vec(&lacking)?,
    )?;
    let table = ok(
        dev,
        token,
        &[
            "dbt-run",
            "notify",
            "--run-results",
            "lacking.json",
            "--project",
            "shop",
        ],
    );
    assert!(
        table.starts_with("dbt core run inv-cli-lacking accepted (1 node succeeded, 0 failed)"),
        "{table}"
    );
    let skipped_line = table
        .lines()
        .find(|line| line.contains("after shop, only if rebuilt"))
        .unwrap_or_default();
    assert!(
        skipped_line.contains("skipped")
            && skipped_line.contains(
                "skipped: dbt core run inv-cli-lacking did not build model model.shop.customers"
            ),
        "{table}"
    );
    assert_eq!(
        table
            .lines()
            .filter(|line| line.contains("after shop"))
            .count(),
        1,
        "only the guarded sync has a run: {table}"
    );

    // refused and usage errors
    std::fs::write(setup.workdir.join("not-results.json"), b"{\"results\": []}")?;
    let refused = fails(
        dev,
        token,
        &["dbt-run", "notify", "--run-results", "not-results.json"],
        1,
    );
    assert!(
        refused.contains(
            "the dbt core endpoint refused the run (400): run_results.json has no metadata"
        ),
        "{refused}"
    );
    let missing = fails(
        dev,
        token,
        &["dbt-run", "notify", "--run-results", "no-such.json"],
        2,
    );
    assert!(missing.contains("no-such.json"), "{missing}");
    Ok(())
}
