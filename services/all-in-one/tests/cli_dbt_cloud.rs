//! Issue 11, CLI: `backflow dbt-cloud …` with the built binary as a subprocess against a
//! running `backflow dev` (empty data dir, ports chosen by the OS, its own NATS
//! namespace) whose listener may call the local dbt Cloud API stand-in: connect with a
//! token file (a refused token exits 1 with dbt's reason and leaves no secret), test,
//! jobs and runs as tables and `--output json`, subscriptions, delete; usage errors exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use backflow_dbt_cloud_listener::stand_in::StandIn;
use serde_json::Value;
use support::cli::{admin_token, ok, ok_json, outcome, Dev};

const ACCOUNT: i64 = 7_001;
const TOKEN: &str = "dbtc_cli_token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbt_cloud_commands_against_the_stand_in() -> anyhow::Result<()> {
    let cloud = StandIn::start(ACCOUNT, TOKEN).await?;
    for id in 1..=150 {
        cloud.add_job(id, &format!("job {id}"), 7);
    }
    for status in [10, 20] {
        cloud.add_run(3, status);
    }
    let workdir =
        std::env::temp_dir().join(format!("backflow-cli-dbt-{}", backflow_platform::new_id()));
    std::fs::create_dir_all(&workdir)?;
    // the dbt Cloud stand-in is the one host allowed besides dbt's; no periodic pass
    let dev = Dev::start_with(
        &workdir,
        &[
            (
                "BACKFLOW_DBT_CLOUD_LISTENER__ALLOWED_ACCESS_URLS",
                &cloud.base_url,
            ),
            ("BACKFLOW_DBT_CLOUD_LISTENER__RECONCILE_INTERVAL_SECS", "0"),
        ],
    )?;
    let token = admin_token(&dev)?;
    let token = Some(token.as_str());
    let account = ACCOUNT.to_string();
    std::fs::write(workdir.join("good.token"), format!("{TOKEN}\n"))?;
    std::fs::write(workdir.join("bad.token"), "dbtc_wrong\n")?;

    // Usage: a token is needed.
    let (code, _, stderr) = outcome(
        &dev,
        token,
        &[
            "dbt-cloud",
            "connect",
            "prod",
            "--account",
            &account,
            "--access-url",
            &cloud.base_url,
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--token-file"), "{stderr}");

    // A refused token: exit 1 with dbt's reason; neither connection nor secret kept.
    let (code, _, stderr) = outcome(
        &dev,
        token,
        &[
            "dbt-cloud",
            "connect",
            "prod",
            "--account",
            &account,
            "--access-url",
            &cloud.base_url,
            "--token-file",
            "bad.token",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("refused the api token (401: Invalid token.)"),
        "{stderr}"
    );
    let secrets = ok_json(&dev, token, &["secrets", "list"])?;
    assert_eq!(secrets.as_array().map(Vec::len), Some(0), "{secrets}");

    // A foreign host is refused before any call.
    let (code, _, stderr) = outcome(
        &dev,
        token,
        &[
            "dbt-cloud",
            "connect",
            "evil",
            "--account",
            &account,
            "--access-url",
            "https://evil.example.com",
            "--token-file",
            "good.token",
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not a dbt Cloud host"), "{stderr}");

    let connected = ok_json(
        &dev,
        token,
        &[
            "dbt-cloud",
            "connect",
            "prod",
            "--account",
            &account,
            "--access-url",
            &cloud.base_url,
            "--token-file",
            "good.token",
        ],
    )?;
    assert_eq!(
        connected["access_url"],
        Value::String(cloud.base_url.clone())
    );
    assert_eq!(connected["account_id"], serde_json::json!(ACCOUNT));
    assert_eq!(connected["last_test"]["ok"], Value::Bool(true));
    assert_eq!(
        connected["last_test"]["account_name"],
        Value::String("Jaffle Shop".into())
    );

    let listed = ok(&dev, token, &["dbt-cloud", "list"]);
    assert!(listed.starts_with("ID"), "{listed}");
    assert!(
        listed.contains("prod") && listed.contains(" ok "),
        "{listed}"
    );
    let tested = ok(&dev, token, &["dbt-cloud", "test", "prod"]);
    assert_eq!(tested, "ok: the token reads account \"Jaffle Shop\"\n");

    let jobs = ok_json(&dev, token, &["dbt-cloud", "jobs", "prod"])?;
    assert_eq!(jobs.as_array().map(Vec::len), Some(150));
    assert_eq!(
        jobs[0],
        serde_json::json!({"id": 1, "name": "job 1", "project_id": 7, "environment_id": 49819, "job_type": "scheduled", "state": 1, "bound_sync_count": 0})
    );
    let table = ok(&dev, token, &["dbt-cloud", "jobs", "prod"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "ID",
            "NAME",
            "PROJECT",
            "ENVIRONMENT",
            "TYPE",
            "STATE",
            "SYNCS"
        ]
    );
    assert_eq!(table.lines().count(), 151);

    let runs = ok_json(&dev, token, &["dbt-cloud", "runs", "prod", "--job", "3"])?;
    let statuses: Vec<(i64, String)> = runs
        .as_array()
        .map(|runs| {
            runs.iter()
                .map(|r| {
                    (
                        r["status_code"].as_i64().unwrap_or(0),
                        r["status"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        statuses,
        vec![(20, "Error".to_string()), (10, "Success".to_string())]
    );
    let (code, _, stderr) = outcome(
        &dev,
        token,
        &["dbt-cloud", "runs", "prod", "--job", "3", "--limit", "500"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("limit must be between 1 and 100"),
        "{stderr}"
    );

    let subscriptions = ok_json(&dev, token, &["dbt-cloud", "subscriptions"])?;
    assert_eq!(subscriptions, serde_json::json!([]));

    // The token is revoked in dbt Cloud: test exits 1 and says so; get shows it.
    cloud.cloud().token = "dbtc_rotated".into();
    let (code, stdout, _) = outcome(&dev, token, &["dbt-cloud", "test", "prod"]);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with("unauthenticated: dbt cloud at"),
        "{stdout}"
    );
    let got = ok_json(&dev, token, &["dbt-cloud", "get", "prod"])?;
    assert_eq!(
        got["last_test"]["problem"],
        Value::String("unauthenticated".into())
    );

    ok(&dev, token, &["dbt-cloud", "delete", "prod"]);
    assert_eq!(
        ok_json(&dev, token, &["dbt-cloud", "list"])?,
        serde_json::json!([])
    );
    let (code, _, stderr) = outcome(&dev, token, &["dbt-cloud", "get", "prod"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no dbt cloud connection \"prod\""),
        "{stderr}"
    );
    Ok(())
}
