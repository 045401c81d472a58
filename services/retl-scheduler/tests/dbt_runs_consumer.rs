//! Completed dbt Cloud runs published on a real JetStream reach the scheduler's
//! consumer: a success delivered twice makes one run per bound sync, while cancelled,
//! errored and undecodable events make none and do not block the consumer.

use backflow_platform::bus::{streams, Bus, EVENT_ID_HEADER};
use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_proto::dbtcloud::v1::RunCompletedEvent;
use backflow_proto::retl::v1::{RunTrigger, SyncMode};
use backflow_retl_scheduler::app::MIGRATIONS;
use backflow_retl_scheduler::consumers::{self, DBT_RUNS_CONSUMER};
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
        Ok(self
            .scheduler
            .create_sync(NewSync::basic(
                "ws",
                name,
                "model",
                "dest",
                SyncMode::Upsert,
                Vec::new(),
                Schedule::AfterDbtCloudJob {
                    account_id: ACCOUNT,
                    job_id,
                },
            ))
            .await?)
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
