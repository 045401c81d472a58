//! Issue 11, acceptance 4 and 2, end to end with the sync engine: a dbt project in a Git
//! repository, parsed by git-sync into the catalog; its `customers` model built as a
//! table in a fresh database of the local PostgreSQL (the warehouse source); a Reverse
//! ETL model on it; the dbt Cloud listener (reading run artifacts from the dbt Cloud API
//! stand-in) and the Reverse ETL scheduler with its executor on the same NATS
//! namespace; a local Standard Webhooks receiver as the destination.
//!
//! A signed `job.run.completed` (status 10, the fixture) makes the bound sync run once
//! and deliver, even when the same delivery comes 5 times and a second subscription
//! delivers the same run; the run's `run_results.json` is fetched once, and the sync
//! with "only if rebuilt" runs when it shows the model built and its tests passed, and
//! is skipped with the reason when the model is missing, a test failed, or there is no
//! artifact; the plain sync does not wait for the artifact, and a fetch cut off by
//! stopping the listener is done by the next start. Status 20 makes no run. The dbt
//! Core endpoint triggers the "after a dbt Core run" sync of the model it rebuilt, and a
//! run_results.json without the model skips the guarded one with the reason.

use backflow_proto::retl::v1 as retl;
use backflow_tests::triggers::{delivery, fixture, post, run_results, sign, world, CUSTOMERS};
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dbt_runs_trigger_the_syncs_that_wait_on_them() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
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
    // the listener reads artifacts for jobs it knows syncs wait on
    world.listener_knows(123, 2).await?;
    let test_ids = world.customers_tests.clone();
    let tests: Vec<&str> = test_ids.iter().map(String::as_str).collect();
    let built_and_tested = |invocation: &str| {
        let mut nodes = vec![(CUSTOMERS, "success")];
        nodes.extend(tests.iter().map(|test| (*test, "pass")));
        run_results(invocation, &nodes)
    };
    world
        .cloud
        .set_run_results(12345, built_and_tested("inv-12345"));

    // acceptance 2: the same delivery 5 times, and a second subscription with the same run
    let body = fixture("dbt-cloud-job-run-completed.json")?;
    let template: serde_json::Value = serde_json::from_slice(&body)?;
    let signature = sign(&body);
    let url_a = format!("{}/webhooks/dbt-cloud/sub-a", world.listener_http);
    for _ in 0..5 {
        assert_eq!(
            post(&url_a, &body, &[("authorization", &signature)]).await?,
            200
        );
    }
    let mut second = template.clone();
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
    // "only if rebuilt": the run's artifact shows customers built and tested, so the
    // guarded sync runs too
    let rebuilt = world.finished_run(&guarded, "dbt:1:12345").await?;
    assert_eq!(
        rebuilt.status,
        retl::RunStatus::Succeeded as i32,
        "{rebuilt:?}"
    );
    assert_eq!(
        world.cloud.calls_like("GET artifact 12345"),
        ["GET artifact 12345"],
        "one fetch for one run, however often it was delivered"
    );

    // runs whose artifact lacks the model, shows a failed test, or is missing: the
    // guarded sync is skipped with the reason, the plain one runs
    let failed_test = tests.first().copied().unwrap_or_default();
    world.cloud.set_run_results(
        12346,
        run_results("inv-12346", &[("model.shop.orders", "success")]),
    );
    world.cloud.set_run_results(
        12347,
        run_results(
            "inv-12347",
            &[(CUSTOMERS, "success"), (failed_test, "fail")],
        ),
    );
    let skips = [
        (
            12346,
            "skipped: dbt cloud run 12346 did not build model model.shop.customers".to_string(),
        ),
        (
            12347,
            format!("skipped: model {CUSTOMERS} was rebuilt in dbt cloud run 12347 but 1 of its tests failed: {failed_test}"),
        ),
        (
            12348,
            "skipped: dbt cloud run 12348 has no node results (run_results.json of dbt cloud run 12348 could not be had after 2 attempts: not found or not visible to this token (404) at /api/v2/accounts/1/runs/12348/artifacts/run_results.json: Artifact not found.), so it does not show that the model was rebuilt".to_string(),
        ),
    ];
    for (run_id, reason) in &skips {
        let body = delivery(&template, 123, *run_id)?;
        assert_eq!(
            post(&url_a, &body, &[("authorization", &sign(&body))]).await?,
            200
        );
        let cause = format!("dbt:1:{run_id}");
        let ran = world.finished_run(&plain, &cause).await?;
        assert_eq!(ran.status, retl::RunStatus::Succeeded as i32, "{ran:?}");
        let skipped = world.finished_run(&guarded, &cause).await?;
        assert_eq!(skipped.status, retl::RunStatus::Skipped as i32);
        assert_eq!(&skipped.error, reason);
        assert_eq!(world.get_run(&skipped.id).await?.error, skipped.error);
    }
    assert_eq!(world.cloud.calls_like("GET artifact 12348").len(), 2);

    // the plain sync does not wait for the artifact: with dbt Cloud holding it back, the
    // plain sync's run finishes while the guarded sync has none; the listener is stopped
    // mid-fetch, the fetch stays pending, and the next start does it
    {
        let mut cloud = world.cloud.cloud();
        cloud.hold_artifacts = true;
    }
    world
        .cloud
        .set_run_results(12349, built_and_tested("inv-12349"));
    let body = delivery(&template, 123, 12349)?;
    assert_eq!(
        post(&url_a, &body, &[("authorization", &sign(&body))]).await?,
        200
    );
    let ran = world.finished_run(&plain, "dbt:1:12349").await?;
    assert_eq!(ran.status, retl::RunStatus::Succeeded as i32, "{ran:?}");
    let cloud = &world.cloud;
    backflow_tests::eventually(
        std::time::Duration::from_secs(60),
        "the artifact fetch in flight",
        || async move { (!cloud.calls_like("GET artifact 12349").is_empty()).then_some(()) },
    )
    .await?;
    let waiting = world.runs(&guarded).await?;
    assert!(
        !waiting.iter().any(|run| run.cause_id == "dbt:1:12349"),
        "the guarded sync waits for the artifact: {waiting:?}"
    );
    world
        .listener
        .take()
        .ok_or_else(|| anyhow::anyhow!("no listener"))?
        .stop()
        .await;
    let mut listener_db = sqlx::PgConnection::connect(&world.listener_database_url()).await?;
    let pending: Vec<(i64, i64)> =
        sqlx::query_as("SELECT run_id, attempts FROM dbt_artifact_fetches ORDER BY run_id")
            .fetch_all(&mut listener_db)
            .await?;
    assert_eq!(pending, [(12349, 0)], "the cut-off fetch is still pending");
    world.cloud.cloud().hold_artifacts = false;
    world.restart_listener().await?;
    let rebuilt = world.finished_run(&guarded, "dbt:1:12349").await?;
    assert_eq!(
        rebuilt.status,
        retl::RunStatus::Succeeded as i32,
        "{rebuilt:?}"
    );
    assert!(world.listener_store()?.pending_fetches().await?.is_empty());
    let url_a = format!("{}/webhooks/dbt-cloud/sub-a", world.listener_http);

    // status 20: recorded, no run
    let errored = fixture("dbt-cloud-job-run-errored.json")?;
    assert_eq!(
        post(&url_a, &errored, &[("authorization", &sign(&errored))]).await?,
        200
    );

    // dbt Core: a run_results.json that rebuilt customers (and passed its tests)
    let core_url = format!("{}/dbt-core/run-results?project=shop", world.listener_http);
    let bearer = format!("Bearer {}", world.stack.token);
    let rebuilt = serde_json::to_vec(&built_and_tested("inv-rebuilt"))?;
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
    let lacking = serde_json::to_vec(&run_results(
        "inv-lacking",
        &[("model.shop.orders", "success")],
    ))?;
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
    assert_eq!(count(&world.runs(&plain).await?), 5);
    assert_eq!(count(&world.runs(&guarded).await?), 5);
    assert_eq!(count(&world.runs(&core).await?), 1);
    assert_eq!(count(&world.runs(&core_guarded).await?), 2);
    world.stop().await;
    Ok(())
}
