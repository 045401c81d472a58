//! Completed dbt runs published on a real JetStream reach the scheduler's consumer: a
//! success delivered twice (or announced under two message ids) makes one run per bound
//! sync, while cancelled, errored and undecodable events make none and do not block the
//! consumer; "only if rebuilt" skips with the reason; a dbt Core run starts the "after a
//! dbt Core run" syncs whose model it rebuilt.

use backflow_platform::bus::{streams, Bus, EVENT_ID_HEADER};
use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_proto::dbtcloud::v1::RunCompletedEvent;
use backflow_proto::retl::v1::{RunStatus, RunTrigger, SyncMode};
use backflow_retl_scheduler::app::MIGRATIONS;
use backflow_retl_scheduler::consumers::{self, DBT_RUNS_CONSUMER};
use backflow_retl_scheduler::run::RunRecord;
use backflow_retl_scheduler::schedule::Schedule;
use backflow_retl_scheduler::scheduler::Scheduler;
use backflow_retl_scheduler::store::SyncStore;
use backflow_retl_scheduler::sync::{NewSync, SyncRecord};
use prost::Message;

mod support;
use std::time::Duration;

/// Run commands waiting in the outbox (sync changes are announced there too).
async fn pending_commands(db: &backflow_platform::db::Database) -> anyhow::Result<i64> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM platform_outbox WHERE published_at_ms IS NULL AND subject LIKE 'cmd.%'",
    )
    .fetch_one(db.pool())
    .await?;
    Ok(count)
}

const ACCOUNT: i64 = 42;
const JOB: i64 = 123;

struct Harness {
    bus: Bus,
    scheduler: Scheduler,
    shutdown: Shutdown,
    consumer: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn start(label: &str) -> anyhow::Result<Self> {
        let bus = Bus::connect(&testing::fresh_nats(label)).await?;
        bus.ensure_stream(&streams::EVT_DBT).await?;
        let db = Database::connect(&testing::fresh_sqlite_url(label), &MIGRATIONS).await?;
        let store = SyncStore::new(db, Outbox::new());
        support::webhook(&store, "ws", "dest").await?;
        let scheduler = Scheduler::new(store, support::models(&["ws"], "model").shared());
        let shutdown = Shutdown::new();
        let consumer = tokio::spawn(consumers::run_dbt_runs(
            bus.clone(),
            scheduler.store().clone(),
            scheduler.models(),
            shutdown.clone(),
        ));
        Ok(Self {
            bus,
            scheduler,
            shutdown,
            consumer,
        })
    }

    async fn sync(&self, name: &str, job_id: i64) -> anyhow::Result<SyncRecord> {
        self.sync_with(
            name,
            Schedule::AfterDbtCloudJob {
                account_id: ACCOUNT,
                job_id,
            },
            false,
        )
        .await
    }

    async fn sync_with(
        &self,
        name: &str,
        schedule: Schedule,
        only_if_model_rebuilt: bool,
    ) -> anyhow::Result<SyncRecord> {
        let mut new = NewSync::basic(
            "ws",
            name,
            "model",
            "dest",
            SyncMode::Upsert,
            Vec::new(),
            schedule,
        );
        new.only_if_model_rebuilt = only_if_model_rebuilt;
        Ok(self.scheduler.create_sync(new).await?)
    }

    async fn only_run(&self, sync: &SyncRecord) -> anyhow::Result<RunRecord> {
        let runs = self.scheduler.list_runs("ws", &sync.id, 0).await?;
        anyhow::ensure!(runs.len() == 1, "{} runs of {}", runs.len(), sync.name);
        Ok(runs[0].clone())
    }

    /// Publishes with only the inbox header, so JetStream keeps every copy.
    async fn publish_raw(&self, event_id: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(EVENT_ID_HEADER, event_id);
        let subject = self
            .bus
            .subject(&format!("evt.dbt.run.completed.{ACCOUNT}"));
        self.bus
            .jetstream()
            .publish_with_headers(subject, headers, payload.into())
            .await?
            .await?;
        Ok(())
    }

    /// Waits until the consumer acknowledged the first `count` messages of the stream.
    async fn wait_consumed(&self, count: u64) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let stream_name = self.bus.stream_name(&streams::EVT_DBT);
        loop {
            let stream = self.bus.jetstream().get_stream(&stream_name).await?;
            if let Ok(info) = stream.consumer_info(DBT_RUNS_CONSUMER).await {
                if info.ack_floor.stream_sequence >= count
                    && info.num_ack_pending == 0
                    && info.num_pending == 0
                {
                    return Ok(());
                }
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "consumer did not handle {count} messages in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn runs_of(&self, sync: &SyncRecord) -> anyhow::Result<usize> {
        Ok(self.scheduler.list_runs("ws", &sync.id, 0).await?.len())
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.consumer).await??;
        Ok(())
    }
}

fn completed(run_id: i64, run_status_code: i64, succeeded: bool) -> RunCompletedEvent {
    RunCompletedEvent {
        workspace_id: "ws".into(),
        connection_id: "conn".into(),
        account_id: ACCOUNT,
        job_id: JOB,
        run_id,
        run_status_code,
        succeeded,
        ..Default::default()
    }
}

#[tokio::test]
async fn successful_run_delivered_twice_makes_one_run_per_bound_sync() -> anyhow::Result<()> {
    let harness = Harness::start("retldbtok").await?;
    let bound = harness.sync("bound", JOB).await?;
    let also_bound = harness.sync("also bound", JOB).await?;
    let paused = harness.sync("paused", JOB).await?;
    harness.scheduler.set_paused("ws", &paused.id, true).await?;
    let other_job = harness.sync("other job", JOB + 1).await?;

    let payload = completed(9001, 10, true).encode_to_vec();
    harness.publish_raw("evt-dbt-9001", payload.clone()).await?;
    harness.publish_raw("evt-dbt-9001", payload).await?;
    harness.wait_consumed(2).await?;

    assert_eq!(harness.runs_of(&bound).await?, 1);
    assert_eq!(harness.runs_of(&also_bound).await?, 1);
    assert_eq!(harness.runs_of(&paused).await?, 0);
    assert_eq!(harness.runs_of(&other_job).await?, 0);
    let run = &harness.scheduler.list_runs("ws", &bound.id, 0).await?[0];
    assert_eq!(run.trigger, RunTrigger::DbtCloudJob);
    assert_eq!(run.cause_id, format!("dbt:{ACCOUNT}:9001"));
    // one command per run, waiting in the outbox (no relay runs in this test)
    assert_eq!(
        pending_commands(harness.scheduler.store().database()).await?,
        2
    );

    // published the platform way too (JetStream de-duplicates the second copy)
    let event = completed(9002, 10, true).encode_to_vec();
    let subject = format!("evt.dbt.run.completed.{ACCOUNT}");
    harness
        .bus
        .publish(&subject, "evt-dbt-9002", event.clone().into())
        .await?;
    harness
        .bus
        .publish(&subject, "evt-dbt-9002", event.into())
        .await?;
    harness.wait_consumed(3).await?;
    assert_eq!(harness.runs_of(&bound).await?, 2);
    assert_eq!(harness.runs_of(&also_bound).await?, 2);
    harness.stop().await
}

#[tokio::test]
async fn cancelled_errored_and_garbage_events_trigger_nothing() -> anyhow::Result<()> {
    let harness = Harness::start("retldbtno").await?;
    let bound = harness.sync("bound", JOB).await?;

    harness
        .publish_raw("evt-garbage", b"\xff\xff not protobuf".to_vec())
        .await?;
    harness
        .publish_raw("evt-cancelled", completed(1, 30, false).encode_to_vec())
        .await?;
    harness
        .publish_raw("evt-errored", completed(2, 20, false).encode_to_vec())
        .await?;
    harness.wait_consumed(3).await?;
    assert_eq!(harness.runs_of(&bound).await?, 0);
    assert_eq!(
        pending_commands(harness.scheduler.store().database()).await?,
        0
    );

    // the consumer is still alive for the next success
    harness
        .publish_raw("evt-ok", completed(3, 10, true).encode_to_vec())
        .await?;
    harness.wait_consumed(4).await?;
    assert_eq!(harness.runs_of(&bound).await?, 1);
    harness.stop().await
}

const MODEL: &str = "model.shop.contacts";
const TEST: &str = "test.shop.unique_contacts_id.c1";

fn with_nodes(
    mut event: RunCompletedEvent,
    succeeded: &[&str],
    failed: &[&str],
) -> RunCompletedEvent {
    event.node_results_known = true;
    event.succeeded_node_ids = succeeded.iter().map(|s| s.to_string()).collect();
    event.failed_node_ids = failed.iter().map(|s| s.to_string()).collect();
    event
}

#[tokio::test]
async fn one_run_announced_under_two_message_ids_makes_one_run() -> anyhow::Result<()> {
    let harness = Harness::start("retldbttwo").await?;
    let bound = harness.sync("bound", JOB).await?;
    let payload = completed(7001, 10, true).encode_to_vec();
    harness.publish_raw("evt-sub-a", payload.clone()).await?;
    harness.publish_raw("evt-sub-b", payload).await?;
    harness.wait_consumed(2).await?;
    let run = harness.only_run(&bound).await?;
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(
        pending_commands(harness.scheduler.store().database()).await?,
        1
    );
    harness.stop().await
}

#[tokio::test]
async fn only_if_rebuilt_skips_with_the_reason() -> anyhow::Result<()> {
    let harness = Harness::start("retldbtonly").await?;
    let job = Schedule::AfterDbtCloudJob {
        account_id: ACCOUNT,
        job_id: JOB,
    };
    let plain = harness.sync_with("plain", job.clone(), false).await?;
    let guarded = harness.sync_with("guarded", job.clone(), true).await?;

    // the run's results lack the model: the guarded sync is skipped, the plain one runs
    let lacking = with_nodes(completed(1, 10, true), &["model.shop.orders"], &[]);
    harness
        .publish_raw("evt-lacking", lacking.encode_to_vec())
        .await?;
    harness.wait_consumed(1).await?;
    assert_eq!(harness.only_run(&plain).await?.status, RunStatus::Queued);
    let skipped = harness.only_run(&guarded).await?;
    assert_eq!(skipped.status, RunStatus::Skipped);
    assert_eq!(
        skipped.error,
        format!("skipped: dbt cloud run 1 did not build model {MODEL}")
    );
    assert!(skipped.finished_at_ms > 0);
    assert_eq!(
        pending_commands(harness.scheduler.store().database()).await?,
        1,
        "a skipped run has no command"
    );

    // built but its test failed; then no node results; then built and tested
    let test_failed = with_nodes(completed(2, 10, true), &[MODEL], &[TEST]);
    harness
        .publish_raw("evt-test-failed", test_failed.encode_to_vec())
        .await?;
    let unknown = completed(3, 10, true);
    harness
        .publish_raw("evt-unknown", unknown.encode_to_vec())
        .await?;
    let good = with_nodes(completed(4, 10, true), &[MODEL, TEST], &[]);
    harness
        .publish_raw("evt-good", good.encode_to_vec())
        .await?;
    harness.wait_consumed(4).await?;
    let runs = harness.scheduler.list_runs("ws", &guarded.id, 0).await?;
    let by_cause = |cause: &str| runs.iter().find(|r| r.cause_id == cause).cloned();
    assert!(matches!(
        by_cause(&format!("dbt:{ACCOUNT}:2")),
        Some(r) if r.status == RunStatus::Skipped && r.error.contains(&format!("1 of its tests failed: {TEST}"))
    ));
    assert!(matches!(
        by_cause(&format!("dbt:{ACCOUNT}:3")),
        Some(r) if r.status == RunStatus::Skipped && r.error.contains("has no node results")
    ));
    assert!(matches!(
        by_cause(&format!("dbt:{ACCOUNT}:4")),
        Some(r) if r.status == RunStatus::Queued && r.error.is_empty()
    ));
    harness.stop().await
}

#[tokio::test]
async fn dbt_core_runs_start_the_syncs_whose_model_they_rebuilt() -> anyhow::Result<()> {
    let harness = Harness::start("retldbtcore").await?;
    let any = harness
        .sync_with(
            "any project",
            Schedule::AfterDbtCoreRun {
                project_name: String::new(),
            },
            false,
        )
        .await?;
    let shop = harness
        .sync_with(
            "shop",
            Schedule::AfterDbtCoreRun {
                project_name: "shop".into(),
            },
            true,
        )
        .await?;
    let finance = harness
        .sync_with(
            "finance",
            Schedule::AfterDbtCoreRun {
                project_name: "finance".into(),
            },
            false,
        )
        .await?;
    let cloud = harness.sync("cloud", JOB).await?;
    let core = |invocation: &str, succeeded: &[&str], failed: &[&str]| {
        with_nodes(
            RunCompletedEvent {
                workspace_id: "ws".into(),
                connection_id: "dbt-core".into(),
                succeeded: true,
                origin: "dbt_core".into(),
                invocation_id: invocation.into(),
                ..Default::default()
            },
            succeeded,
            failed,
        )
    };
    // a run that did not touch the model starts nothing (the guarded sync records why)
    harness
        .publish_raw(
            "core:other",
            core("other", &["model.shop.orders"], &[]).encode_to_vec(),
        )
        .await?;
    // one that rebuilt it starts the shop and any-project syncs, twice delivered
    let rebuilt = core("inv-1", &[MODEL, TEST], &[]).encode_to_vec();
    harness.publish_raw("core:inv-1", rebuilt.clone()).await?;
    harness.publish_raw("core:inv-1", rebuilt).await?;
    harness.wait_consumed(3).await?;
    let guarded_runs = harness.scheduler.list_runs("ws", &shop.id, 0).await?;
    assert!(matches!(
        guarded_runs.iter().find(|r| r.cause_id == "dbt-core:other"),
        Some(r) if r.status == RunStatus::Skipped
            && r.error == format!("skipped: dbt core run other did not build model {MODEL}")
    ));
    let any_run = harness.only_run(&any).await?;
    for (sync, run) in [
        (&any, Some(any_run)),
        (
            &shop,
            guarded_runs
                .iter()
                .find(|r| r.cause_id == "dbt-core:inv-1")
                .cloned(),
        ),
    ] {
        let run = run.ok_or_else(|| anyhow::anyhow!("no run of {}", sync.name))?;
        assert_eq!(run.status, RunStatus::Queued, "{}", sync.name);
        assert_eq!(run.trigger, RunTrigger::DbtCore);
        assert_eq!(run.cause_id, "dbt-core:inv-1");
    }
    assert_eq!(harness.runs_of(&finance).await?, 0);
    assert_eq!(harness.runs_of(&cloud).await?, 0);

    // the model rebuilt but its test failed: the guarded shop sync is skipped
    harness
        .publish_raw(
            "core:inv-2",
            core("inv-2", &[MODEL], &[TEST]).encode_to_vec(),
        )
        .await?;
    harness.wait_consumed(4).await?;
    let runs = harness.scheduler.list_runs("ws", &shop.id, 0).await?;
    assert!(matches!(
        runs.iter().find(|r| r.cause_id == "dbt-core:inv-2"),
        Some(r) if r.status == RunStatus::Skipped && r.error.contains("tests failed")
    ));
    assert_eq!(harness.runs_of(&any).await?, 2);
    harness.stop().await
}
