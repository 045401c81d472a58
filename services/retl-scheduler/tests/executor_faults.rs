//! Issue 10, acceptance 2 (the faults `executor_runs.rs` does not already cover): a
//! connection dropped mid-batch (a proxy reads part of the request and closes the
//! socket), the executor process killed with SIGKILL mid-run and started again, NATS
//! restarted mid-run, PostgreSQL (the service's store and the warehouse) restarted
//! mid-run. NATS and PostgreSQL that get restarted are this test's own
//! (`testing::servers`), never the shared ones.
//!
//! After each fault the run succeeds and the Standard Webhooks receiver (which drops
//! resends by `webhook-id`, as the spec asks) holds exactly the model's rows; no key was
//! applied twice (resends repeated their webhook-id) and no webhook-id ever came back
//! with other records (which a receiver drops, losing them); the next run sends nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use backflow_platform::bus::Bus;
use backflow_platform::lease::LeasePolicy;
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_platform::testing::cut_proxy::CutProxy;
use backflow_platform::testing::servers::{OwnNats, OwnPostgres};
use backflow_proto::retl::v1::{DiffStrategy, RunPhase, RunStatus, RunTrigger, SyncMode};
use backflow_retl_scheduler::destination_config::{DestinationRecord, NoSecrets};
use backflow_retl_scheduler::destinations::test_support::webhook::WebhookReceiver;
use backflow_retl_scheduler::destinations::DestinationKind;
use backflow_retl_scheduler::executor::pipeline::{RunContext, RunSettings};
use backflow_retl_scheduler::executor::Executor;
use backflow_retl_scheduler::run::{manual_cause, RunRecord};
use backflow_retl_scheduler::schedule::Schedule;
use backflow_retl_scheduler::store::SyncStore;
use backflow_retl_scheduler::sync::{Guards, Mapping, SyncRecord};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

mod support;

use support::places::Places;

const WS: &str = "ws-faults";
/// Set (to the child's settings) when this binary runs as the executor child.
const CHILD: &str = "BACKFLOW_FAULTS_EXECUTOR_CHILD";
const LEASE_MS: u64 = 1200;

/// The store, the bus (with the outbox relay) and a run context over `places`.
async fn connect(
    places: &Places,
    shutdown: &Shutdown,
) -> anyhow::Result<(SyncStore, Bus, RunContext)> {
    let settings = RunSettings {
        batch_rows: 500,
        progress_every: Duration::from_millis(100),
        checkpoint_every: Duration::from_millis(50),
        ..RunSettings::default()
    };
    support::places::connect(places, shutdown, Arc::new(NoSecrets), settings).await
}

fn executor(ctx: &RunContext) -> Executor {
    let policy = LeasePolicy::from_ttl(Duration::from_millis(LEASE_MS)).unwrap();
    Executor::new(ctx.clone(), policy, 4)
}

/// The executor child: runs an executor over the places in `$CHILD` until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the executor process `an_executor_killed_mid_run_resumes_after_a_restart` starts"]
async fn executor_child() -> anyhow::Result<()> {
    let Ok(places) = std::env::var(CHILD) else {
        return Ok(());
    };
    let places = Places::from_env(&places);
    let shutdown = Shutdown::new();
    let (_, bus, ctx) = connect(&places, &shutdown).await?;
    executor(&ctx).run(bus, shutdown).await;
    Ok(())
}

/// An executor process of this test's own (this binary, as `executor_child`).
struct ExecutorProcess {
    places: Places,
    child: Option<Child>,
}

impl ExecutorProcess {
    fn start(places: &Places) -> anyhow::Result<Self> {
        let mut process = Self {
            places: places.clone(),
            child: None,
        };
        process.spawn()?;
        Ok(process)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new(std::env::current_exe()?)
            .args(["executor_child", "--exact", "--ignored", "--test-threads=1"])
            .env(CHILD, self.places.to_env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL: no shutdown, no lease released, batches in flight cut.
    fn kill_9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for ExecutorProcess {
    fn drop(&mut self) {
        let _ = self.kill_9();
    }
}

struct Rig {
    places: Places,
    warehouse: sqlx::PgPool,
    store: SyncStore,
    ctx: RunContext,
    bus: Bus,
    receiver: WebhookReceiver,
    shutdown: Shutdown,
}

/// The webhook's settings: batches of 100, two in flight, `rate` requests a second (so
/// a run lasts long enough to meet its fault mid-way).
struct Hook<'a> {
    url: &'a str,
    rate: f64,
}

impl Rig {
    /// Store and warehouse on `pg` (default the shared PostgreSQL), bus on `nats`
    /// (default the shared NATS).
    async fn start(
        label: &str,
        pg: Option<&OwnPostgres>,
        nats: Option<&OwnNats>,
    ) -> anyhow::Result<Self> {
        let (store_url, warehouse_url) = match pg {
            Some(pg) => (
                pg.create_database("store").await?,
                pg.create_database("warehouse").await?,
            ),
            None => (
                testing::fresh_postgres_url(label).await?,
                testing::fresh_postgres_url(&format!("{label}_wh")).await?,
            ),
        };
        let places = Places {
            store_url,
            warehouse_url,
            nats: match nats {
                Some(nats) => nats.config(label),
                None => testing::fresh_nats(label),
            },
        };
        let shutdown = Shutdown::new();
        let (store, bus, ctx) = connect(&places, &shutdown).await?;
        let warehouse = sqlx::PgPool::connect(&places.warehouse_url).await?;
        Ok(Self {
            places,
            warehouse,
            store,
            ctx,
            bus,
            receiver: WebhookReceiver::start(None).await,
            shutdown,
        })
    }

    fn executor(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(executor(&self.ctx).run(self.bus.clone(), self.shutdown.clone()))
    }

    async fn sql(&self, statements: &[&str]) -> anyhow::Result<()> {
        for statement in statements {
            sqlx::query(statement).execute(&self.warehouse).await?;
        }
        Ok(())
    }

    /// A table of `rows` people and an upsert sync of it to the webhook `hook`.
    async fn people(
        &self,
        table: &str,
        rows: u32,
        hook: Hook<'_>,
        mode: SyncMode,
    ) -> anyhow::Result<String> {
        self.sql(&[
            &format!("CREATE TABLE {table} (id bigint, email text, plan text)"),
            &format!(
                "INSERT INTO {table} SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, {rows}) g"
            ),
        ])
        .await?;
        let now = backflow_platform::now_unix_ms();
        let destination = format!("hook-{table}");
        self.store
            .create_destination(&DestinationRecord {
                id: destination.clone(),
                workspace_id: WS.into(),
                name: destination.clone(),
                kind: DestinationKind::Webhook,
                settings: [
                    ("url".to_string(), hook.url.to_string()),
                    ("batch_size".to_string(), "100".to_string()),
                    ("max_concurrency".to_string(), "2".to_string()),
                ]
                .into_iter()
                .collect(),
                credential_id: String::new(),
                rate_limit_per_second: hook.rate,
                created_at_ms: now,
                updated_at_ms: now,
                version: 1,
                last_test: None,
            })
            .await?;
        let record = SyncRecord {
            id: format!("{table}-{}", backflow_platform::new_id()),
            workspace_id: WS.into(),
            name: table.into(),
            retl_model_id: table.into(),
            destination_id: destination,
            mode,
            mappings: ["email", "plan"]
                .iter()
                .map(|c| Mapping::column(c, c))
                .collect(),
            schedule: Schedule::Manual,
            paused: false,
            paused_reason: String::new(),
            created_at_ms: now,
            updated_at_ms: now,
            destination_options: BTreeMap::new(),
            guards: Guards::default(),
            diff_strategy: DiffStrategy::Backflow,
            max_record_attempts: 5,
            only_if_model_rebuilt: false,
            state_epoch: 0,
            primary_key: vec!["id".into()],
            version: 1,
        };
        self.store.create_sync(&record).await?;
        Ok(record.id)
    }

    async fn queue(&self, sync_id: &str) -> anyhow::Result<String> {
        let run = RunRecord::queued(
            WS,
            sync_id,
            RunTrigger::Manual,
            manual_cause(&backflow_platform::new_id()),
            backflow_platform::now_unix_ms(),
        );
        self.store.queue_manual_run(&run).await?;
        Ok(run.id)
    }

    /// Waits (up to 45 s, riding out store outages) until the run has ended.
    async fn ended(&self, run_id: &str) -> anyhow::Result<RunRecord> {
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            match self.store.get_run(WS, run_id).await {
                Ok(run)
                    if matches!(
                        run.status,
                        RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
                    ) =>
                {
                    return Ok(run)
                }
                Ok(run) => anyhow::ensure!(
                    Instant::now() < deadline,
                    "run {run_id} still {:?} ({:?}, {})",
                    run.status,
                    run.exec.phase,
                    run.error
                ),
                Err(error) => anyhow::ensure!(Instant::now() < deadline, "run {run_id}: {error}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 30 s) until the receiver holds at least `records` records.
    async fn holding(&self, records: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.receiver.holds().records.len() < records {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the receiver holds only {} records",
                self.receiver.holds().records.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Waits (up to 30 s) until the run is in `phase`.
    async fn in_phase(&self, run_id: &str, phase: RunPhase) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let run = self.store.get_run(WS, run_id).await?;
            if run.exec.phase == phase {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "run {run_id} is {:?} {:?}",
                run.status,
                run.exec.phase
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The model's rows as the receiver should hold them: id → fields.
    async fn model(&self, table: &str) -> anyhow::Result<BTreeMap<String, Value>> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as(&format!("SELECT id, email, plan FROM {table}"))
                .fetch_all(&self.warehouse)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, email, plan)| (id.to_string(), json!({"email": email, "plan": plan})))
            .collect())
    }

    /// The receiver holds exactly the model, and since `before` (what it had applied per
    /// key) each of the run's `changes` was applied once: resends repeated their
    /// webhook-id, and no webhook-id came back with other records (which the receiver
    /// drops as a duplicate, losing them).
    async fn holds_exactly(
        &self,
        table: &str,
        before: &BTreeMap<String, u64>,
        changes: u64,
    ) -> anyhow::Result<()> {
        let holds = self.receiver.holds();
        let model = self.model(table).await?;
        let missing: Vec<_> = model
            .keys()
            .filter(|k| !holds.records.contains_key(*k))
            .collect();
        let wrong: Vec<_> = holds
            .records
            .iter()
            .filter(|(k, v)| model.get(*k) != Some(v))
            .map(|(k, _)| k)
            .collect();
        assert!(
            missing.is_empty() && wrong.is_empty(),
            "{} of {} rows missing (e.g. {:?}), {} held wrongly (e.g. {:?})",
            missing.len(),
            model.len(),
            &missing[..missing.len().min(5)],
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        assert_eq!(
            self.receiver.id_conflicts(),
            0,
            "a webhook-id came back with other records"
        );
        let applied = self.receiver.applied_per_key();
        let more = |key: &String, times: &u64| times - before.get(key).copied().unwrap_or(0);
        let twice: Vec<_> = applied.iter().filter(|(k, t)| more(k, t) > 1).collect();
        assert!(
            twice.is_empty(),
            "applied more than once: {:?}",
            &twice[..twice.len().min(5)]
        );
        let total: u64 = applied.iter().map(|(k, t)| more(k, t)).sum();
        assert_eq!(total, changes, "changes applied");
        Ok(())
    }

    /// The next run finds nothing to send (the faulted run committed all it delivered).
    async fn next_run_sends_nothing(&self, sync: &str) -> anyhow::Result<()> {
        let run = self.ended(&self.queue(sync).await?).await?;
        assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
        assert_eq!((run.exec.counts.added, run.exec.counts.requests), (0, 0));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_dropped_mid_batch_lose_nothing() -> anyhow::Result<()> {
    let rig = Rig::start("faults_cut", None, None).await?;
    let proxy = CutProxy::start(
        rig.receiver
            .url()
            .trim_start_matches("http://")
            .trim_end_matches("/hook")
            .parse()?,
    )
    .await?;
    let url = format!("http://{}/hook", proxy.addr());
    let sync = rig
        .people(
            "cut",
            1000,
            Hook {
                url: &url,
                rate: 0.0,
            },
            SyncMode::Mirror,
        )
        .await?;
    let _executor = rig.executor();
    // the first two requests are read in part (headers and a little body), then closed
    proxy.cut_next(300);
    proxy.cut_next(300);
    let run = rig.ended(&rig.queue(&sync).await?).await?;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
    assert_eq!(proxy.cuts(), 2);
    assert_eq!(
        (run.exec.counts.delivered, run.exec.counts.failed),
        (1000, 0)
    );
    assert_eq!(
        run.exec.counts.requests,
        10 + 2,
        "ten batches, two of them twice"
    );
    assert_eq!(
        rig.receiver.holds().duplicates,
        0,
        "a cut request never reached the receiver"
    );
    rig.holds_exactly("cut", &BTreeMap::new(), 1000).await?;

    // updates and deletes meet a cut too
    let before = rig.receiver.applied_per_key();
    rig.sql(&[
        "UPDATE cut SET plan = 'pro' WHERE id % 10 = 0",
        "DELETE FROM cut WHERE id % 10 = 5",
    ])
    .await?;
    proxy.cut_next(64);
    let run = rig.ended(&rig.queue(&sync).await?).await?;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
    assert_eq!(
        (
            run.exec.counts.updated,
            run.exec.counts.deleted,
            run.exec.counts.delivered
        ),
        (100, 100, 200)
    );
    assert_eq!(proxy.cuts(), 3);
    rig.holds_exactly("cut", &before, 200).await?;
    rig.next_run_sends_nothing(&sync).await?;
    rig.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_killed_mid_run_resumes_after_a_restart() -> anyhow::Result<()> {
    let rig = Rig::start("faults_kill", None, None).await?;
    let url = rig.receiver.url();
    // 60 batches at 25 a second: the run lasts over two seconds
    let sync = rig
        .people(
            "killed",
            6000,
            Hook {
                url: &url,
                rate: 25.0,
            },
            SyncMode::Upsert,
        )
        .await?;
    let mut process = ExecutorProcess::start(&rig.places)?;
    let run_id = rig.queue(&sync).await?;
    rig.holding(1500).await?;
    process.kill_9()?;
    let at_kill = rig.receiver.holds().records.len();
    let run = rig.store.get_run(WS, &run_id).await?;
    assert_eq!(run.status, RunStatus::Running, "killed mid-run");
    assert!(at_kill < 6000, "killed mid-run");
    // a new process reaps the lapsed lease and resumes the run from its checkpoint
    process.spawn()?;
    let run = rig.ended(&run_id).await?;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
    assert_eq!(run.exec.resumed, 1);
    assert_eq!(run.exec.counts.delivered, 6000);
    rig.holds_exactly("killed", &BTreeMap::new(), 6000).await?;
    let holds = rig.receiver.holds();
    eprintln!(
        "held at the kill {at_kill}; requests {}, resends dropped by webhook-id {}",
        holds.requests, holds.duplicates
    );
    rig.next_run_sends_nothing(&sync).await?;
    drop(process);
    rig.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarted_mid_run_loses_nothing() -> anyhow::Result<()> {
    let mut nats = OwnNats::start()?;
    let rig = Rig::start("faults_nats", None, Some(&nats)).await?;
    let url = rig.receiver.url();
    let sync = rig
        .people(
            "natsdown",
            3000,
            Hook {
                url: &url,
                rate: 25.0,
            },
            SyncMode::Upsert,
        )
        .await?;
    let _executor = rig.executor();
    let run_id = rig.queue(&sync).await?;
    rig.holding(500).await?;
    // NATS goes away while the run delivers, and stays away until it commits (the diff
    // state lives in the NATS object store)
    nats.kill()?;
    rig.holding(3000).await?;
    rig.in_phase(&run_id, RunPhase::Committing).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.start_again()?;
    let run = rig.ended(&run_id).await?;
    eprintln!(
        "nats: run {:?} resumed {} error {:?} timings {:?}",
        run.status, run.exec.resumed, run.error, run.exec.timings
    );
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
    rig.holds_exactly("natsdown", &BTreeMap::new(), 3000)
        .await?;
    rig.next_run_sends_nothing(&sync).await?;
    // the work queue and the outbox came back: a change is delivered
    let before = rig.receiver.applied_per_key();
    rig.sql(&["UPDATE natsdown SET plan = 'pro' WHERE id <= 10"])
        .await?;
    let run = rig.ended(&rig.queue(&sync).await?).await?;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
    assert_eq!(run.exec.counts.updated, 10);
    rig.holds_exactly("natsdown", &before, 10).await?;
    rig.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_run_loses_nothing() -> anyhow::Result<()> {
    let pg = OwnPostgres::start()?;
    let rig = Rig::start("faults_pg", Some(&pg), None).await?;
    let url = rig.receiver.url();
    let sync = rig
        .people(
            "pgdown",
            3000,
            Hook {
                url: &url,
                rate: 25.0,
            },
            SyncMode::Mirror,
        )
        .await?;
    let _executor = rig.executor();
    let run_id = rig.queue(&sync).await?;
    rig.holding(500).await?;
    // the service's store and the warehouse go down mid-delivery, as in a crash
    pg.crash()?;
    tokio::time::sleep(Duration::from_millis(LEASE_MS)).await;
    pg.start_again()?;
    let run = rig.ended(&run_id).await?;
    eprintln!(
        "pg: run {:?} resumed {} error {:?} timings {:?} held {}",
        run.status,
        run.exec.resumed,
        run.error,
        run.exec.timings,
        rig.receiver.holds().records.len()
    );
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
    rig.holds_exactly("pgdown", &BTreeMap::new(), 3000).await?;
    rig.next_run_sends_nothing(&sync).await?;
    rig.shutdown.cancel();
    Ok(())
}
