//! Issue 11, acceptance 4 and 2, end to end with the sync engine: a dbt project in a Git
//! repository, parsed by git-sync into the catalog; its `customers` model built as a
//! table in a fresh database of the local PostgreSQL (the warehouse source); a Reverse
//! ETL model on it; the dbt Cloud listener and the Reverse ETL scheduler with its
//! executor on the same NATS namespace; a local Standard Webhooks receiver as the
//! destination.
//!
//! A signed `job.run.completed` (status 10, the fixture) makes the bound sync run once
//! and deliver, even when the same delivery comes 5 times and a second subscription
//! delivers the same run; status 20 makes no run; a sync with "only if rebuilt" is
//! skipped with the reason when the run's node results do not show its model; the dbt
//! Core endpoint triggers the "after a dbt Core run" sync of the model it rebuilt, and a
//! run_results.json without the model skips the guarded one with the reason.

use backflow_proto::retl::v1 as retl;
use backflow_tests::triggers::{fixture, post, sign, world, CUSTOMERS};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dbt_runs_trigger_the_syncs_that_wait_on_them() -> anyhow::Result<()> {
    let mut world = world(5432).await?;
    let job = retl::schedule::Kind::AfterDbtCloudJob(retl::DbtCloudJobSchedule {
        account_id: 1,
        job_id: 123,
    });
    let plain = world.sync("after job", job.clone(), false).await?;
    let guarded = world.sync("after job, only if rebuilt", job, true).await?;
    let core_kind = retl::schedule::Kind::AfterDbtCoreRun(retl::DbtCoreRunSchedule {
        project_name: "shop".into(),
    });
    let core = world
        .sync("after dbt core", core_kind.clone(), false)
        .await?;
    let core_guarded = world
        .sync("after dbt core, only if rebuilt", core_kind, true)
        .await?;

    // acceptance 2: the same delivery 5 times, and a second subscription with the same run
    let body = fixture("dbt-cloud-job-run-completed.json")?;
    let signature = sign(&body);
    let url_a = format!("{}/webhooks/dbt-cloud/sub-a", world.listener_http);
    for _ in 0..5 {
        assert_eq!(
            post(&url_a, &body, &[("authorization", &signature)]).await?,
            200
        );
    }
    let mut second: serde_json::Value = serde_json::from_slice(&body)?;
    second["eventId"] = "wev_second_subscription".into();
    second["webhooksID"] = "wsu_second".into();
    let second = serde_json::to_vec(&second)?;
    let url_b = format!("{}/webhooks/dbt-cloud/sub-b", world.listener_http);
    assert_eq!(
        post(&url_b, &second, &[("authorization", &sign(&second))]).await?,
        200
    );

    // acceptance 4: the bound sync runs and delivers the model's three rows
    let run = world.finished_run(&plain, "dbt:1:12345").await?;
    assert_eq!(run.status, retl::RunStatus::Succeeded as i32, "{run:?}");
    assert_eq!(run.trigger, retl::RunTrigger::DbtCloudJob as i32);
    assert_eq!(run.counts.map(|c| c.delivered), Some(3));
    let delivered: usize = world.receiver.received().iter().map(|r| r.records).sum();
    assert_eq!(delivered, 3);
    // "only if rebuilt": the webhook carries no node results, so the guarded sync is
    // skipped, and says why
    let skipped = world.finished_run(&guarded, "dbt:1:12345").await?;
    assert_eq!(skipped.status, retl::RunStatus::Skipped as i32);
    assert!(
        skipped
            .error
            .contains("dbt cloud run 12345 has no node results"),
        "{skipped:?}"
    );
    assert_eq!(world.get_run(&skipped.id).await?.error, skipped.error);

    // status 20: recorded, no run
    let errored = fixture("dbt-cloud-job-run-errored.json")?;
    assert_eq!(
        post(&url_a, &errored, &[("authorization", &sign(&errored))]).await?,
        200
    );

    // dbt Core: a run_results.json that rebuilt customers (and passed its tests)
    let core_url = format!("{}/dbt-core/run-results?project=shop", world.listener_http);
    let bearer = format!("Bearer {}", world.stack.token);
    let run_results = |invocation: &str, nodes: &[(&str, &str)]| {
        serde_json::json!({
            "metadata": {
                "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v5.json",
                "dbt_version": "1.7.20",
                "invocation_id": invocation
            },
            "results": nodes.iter().map(|(id, status)| serde_json::json!({"unique_id": id, "status": status})).collect::<Vec<_>>(),
            "args": {"which": "build"}
        })
        .to_string()
        .into_bytes()
    };
    let rebuilt = run_results(
        "inv-rebuilt",
        &[
            (CUSTOMERS, "success"),
            ("test.shop.unique_customers_id.c1", "pass"),
        ],
    );
    for _ in 0..2 {
        assert_eq!(
            post(&core_url, &rebuilt, &[("authorization", &bearer)]).await?,
            200
        );
    }
    for sync in [&core, &core_guarded] {
        let run = world.finished_run(sync, "dbt-core:inv-rebuilt").await?;
        assert_eq!(run.status, retl::RunStatus::Succeeded as i32, "{run:?}");
        assert_eq!(run.trigger, retl::RunTrigger::DbtCore as i32);
    }
    // a run whose results lack the model: the guarded sync is skipped with the reason,
    // the other one is not concerned
    let lacking = run_results("inv-lacking", &[("model.shop.orders", "success")]);
    assert_eq!(
        post(&core_url, &lacking, &[("authorization", &bearer)]).await?,
        200
    );
    let skipped = world
        .finished_run(&core_guarded, "dbt-core:inv-lacking")
        .await?;
    assert_eq!(skipped.status, retl::RunStatus::Skipped as i32);
    assert_eq!(
        skipped.error,
        format!("skipped: dbt core run inv-lacking did not build model {CUSTOMERS}")
    );

    // every sync ran once per dbt run: no second run from redeliveries, none from status
    // 20, none for the core sync from the run that did not rebuild its model
    let count = |runs: &[retl::Run]| runs.len();
    assert_eq!(count(&world.runs(&plain).await?), 1);
    assert_eq!(count(&world.runs(&guarded).await?), 1);
    assert_eq!(count(&world.runs(&core).await?), 1);
    assert_eq!(count(&world.runs(&core_guarded).await?), 2);
    world.stack.stop().await;
    Ok(())
}
