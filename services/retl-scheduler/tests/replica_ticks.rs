//! Two scheduler replicas (two `App`s) on one PostgreSQL database and one NATS server
//! tick the same schedules: every tick makes exactly one run and exactly one
//! `cmd.retl.run_sync.<id>` message on the CMD stream, and a paused sync fires nothing.
//! A tick while a run of the sync is still queued makes no run (it is coalesced into
//! the queued one), also with two replicas; a running run does not hold a tick back.
//! With two executors pulling the one work queue besides them, every tick's run is
//! executed exactly once, and both executors take work (issue 10, acceptance 4).
//!
//! The replicas share a clock that runs 120 times faster than real time, so a
//! one-minute interval ticks every half second.

use backflow_platform::bus::{streams, Bus};
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_proto::retl::v1::{RunSyncCommand, RunTrigger, SyncMode};
use backflow_retl_scheduler::app::Overrides;
use backflow_retl_scheduler::schedule::Schedule;
use backflow_retl_scheduler::scheduler::Scheduler;
use backflow_retl_scheduler::sync::{Mapping, NewSync};
use backflow_retl_scheduler::ticker::Clock;
use backflow_retl_scheduler::{App, Config};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;

use backflow_platform::lease::{LeasePolicy, Leases};
use backflow_proto::retl::v1::RunStatus;
use backflow_retl_scheduler::destination_config::{DestinationRecord, NoSecrets};
use backflow_retl_scheduler::destinations::test_support::webhook::WebhookReceiver;
use backflow_retl_scheduler::destinations::DestinationKind;
use backflow_retl_scheduler::executor::error::ExecError;
use backflow_retl_scheduler::executor::pipeline::{RunContext, RunSettings};
use backflow_retl_scheduler::executor::resolve::{ModelSource, ResolvedModel, StoreDestinations};
use backflow_retl_scheduler::executor::Executor;
use backflow_retl_scheduler::run::RunRecord;
use backflow_retl_scheduler::store::diff_state::{bucket_name, DiffStateStore};
use backflow_retl_scheduler::store::runs::{Claim, LEASE_KIND};
use std::sync::atomic::{AtomicUsize, Ordering};

const SPEED: i64 = 120;
const TICKS_WANTED: usize = 4;

fn fast_clock() -> Clock {
    let real_start = Instant::now();
    let start_ms = backflow_platform::now_unix_ms();
    Arc::new(move || {
        let elapsed = i64::try_from(real_start.elapsed().as_millis()).unwrap_or(i64::MAX / SPEED);
        start_ms + elapsed * SPEED
    })
}

struct Replica {
    scheduler: Scheduler,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<Result<(), backflow_retl_scheduler::RetlStartupError>>,
}

async fn replica(
    database_url: &str,
    nats: &backflow_platform::config::NatsConfig,
    authority: &testing::TokenAuthority,
    clock: Clock,
) -> anyhow::Result<Replica> {
    replica_of(database_url, nats, authority, clock, "model").await
}

async fn replica_of(
    database_url: &str,
    nats: &backflow_platform::config::NatsConfig,
    authority: &testing::TokenAuthority,
    clock: Clock,
    model: &str,
) -> anyhow::Result<Replica> {
    let config = Config {
        database_url: database_url.to_string(),
        grpc_listen: "127.0.0.1:0".into(),
        credentials_url: authority.url.clone(),
        catalog_url: "http://127.0.0.1:9".into(),
        tick_poll_ms: 50,
        service_token: authority.service_token.clone().into(),
        tls: Default::default(),
        // scheduler replicas only (executors scale apart): the commands stay on the queue
        executor: backflow_retl_scheduler::config::ExecutorConfig {
            enabled: false,
            ..Default::default()
        },
    };
    let overrides = Overrides {
        models: Some(support::models(&["ws"], model).shared()),
        clock: Some(clock),
        ..Default::default()
    };
    let app = App::build_with(config, nats, overrides).await?;
    let scheduler = app.scheduler().clone();
    let shutdown = Shutdown::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    Ok(Replica {
        scheduler,
        shutdown,
        server,
    })
}

/// Every message on the CMD stream, decoded, by subject.
async fn commands(bus: &Bus) -> anyhow::Result<BTreeMap<String, Vec<RunSyncCommand>>> {
    let stream = bus
        .jetstream()
        .get_stream(bus.stream_name(&streams::CMD_RETL))
        .await?;
    let info = stream.get_info().await?;
    let mut by_subject: BTreeMap<String, Vec<RunSyncCommand>> = BTreeMap::new();
    if info.state.messages == 0 {
        return Ok(by_subject);
    }
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        let message = stream.get_raw_message(sequence).await?;
        by_subject
            .entry(message.subject.to_string())
            .or_default()
            .push(RunSyncCommand::decode(message.payload.as_ref())?);
    }
    Ok(by_subject)
}

/// Two scheduler replicas on one fresh database and NATS namespace, sharing a fast
/// clock, with the webhook destination `hook` in workspace `ws`.
struct Replicas {
    first: Replica,
    second: Replica,
    nats: backflow_platform::config::NatsConfig,
    _authority: testing::TokenAuthority,
}

async fn two_replicas(label: &str) -> anyhow::Result<Replicas> {
    let database_url = testing::fresh_postgres_url(label).await?;
    let nats = testing::fresh_nats(label);
    let authority = testing::TokenAuthority::start().await?;
    let clock = fast_clock();
    let first = replica(&database_url, &nats, &authority, clock.clone()).await?;
    let second = replica(&database_url, &nats, &authority, clock).await?;
    support::webhook(first.scheduler.store(), "ws", "hook").await?;
    Ok(Replicas {
        first,
        second,
        nats,
        _authority: authority,
    })
}

/// Waits until the relays published every outbox row.
async fn outbox_drained(scheduler: &Scheduler) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (pending,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM platform_outbox WHERE published_at_ms IS NULL")
                .fetch_one(scheduler.store().database().pool())
                .await?;
        if pending == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{pending} outbox rows never published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_replicas_make_one_run_and_one_command_per_tick() -> anyhow::Result<()> {
    let Replicas {
        first,
        second,
        nats,
        _authority,
    } = two_replicas("retlticks").await?;
    let scheduler = first.scheduler.clone();

    let sync = |name: &str, schedule: Schedule| {
        NewSync::basic(
            "ws",
            name,
            "model",
            "hook",
            SyncMode::Upsert,
            vec![Mapping::column("email", "Email")],
            schedule,
        )
    };
    let every_minute = scheduler
        .create_sync(sync("every minute", Schedule::Interval { seconds: 60 }))
        .await?;
    let cron = scheduler
        .create_sync(sync(
            "cron berlin",
            Schedule::Cron {
                expression: "* * * * *".into(),
                time_zone: "Europe/Berlin".into(),
            },
        ))
        .await?;
    let mut paused = sync("paused", Schedule::Interval { seconds: 60 });
    paused.paused = true;
    let paused = second.scheduler.create_sync(paused).await?;
    let manual = scheduler
        .create_sync(sync("manual", Schedule::Manual))
        .await?;

    // wait for a few runs of each scheduled sync; no executor runs them, so each is
    // cancelled once seen (a tick while one is queued would be coalesced into it)
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = [0; 2];
        for (at, sync) in [&every_minute, &cron].into_iter().enumerate() {
            let runs = scheduler.list_runs("ws", &sync.id, 0).await?;
            seen[at] = runs.len();
            for run in runs.iter().filter(|run| run.status == RunStatus::Queued) {
                scheduler.store().cancel_run("ws", &run.id).await?;
            }
        }
        let [a, b] = seen;
        if a >= TICKS_WANTED && b >= TICKS_WANTED {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {a} and {b} ticks fired in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // stop the ticks (pausing is announced through the same outbox), then let the relays drain
    scheduler.set_paused("ws", &every_minute.id, true).await?;
    second.scheduler.set_paused("ws", &cron.id, true).await?;
    outbox_drained(&scheduler).await?;

    let bus = Bus::connect(&nats).await?;
    let published = commands(&bus).await?;
    for sync in [&every_minute, &cron] {
        let runs = scheduler.list_runs("ws", &sync.id, 0).await?;
        assert!(runs.iter().all(|run| run.trigger == RunTrigger::Schedule
            && run.cause_id.starts_with(&format!("sync:{}:", sync.id))));
        let causes: BTreeSet<_> = runs.iter().map(|run| run.cause_id.as_str()).collect();
        assert_eq!(
            causes.len(),
            runs.len(),
            "{}: a tick made two runs",
            sync.name
        );
        let subject = bus.subject(&format!("cmd.retl.run_sync.{}", sync.id));
        let sent = published.get(&subject).cloned().unwrap_or_default();
        let sent_runs: BTreeSet<_> = sent.iter().map(|command| command.run_id.clone()).collect();
        let queued_runs: BTreeSet<_> = runs.iter().map(|run| run.id.clone()).collect();
        assert_eq!(sent.len(), runs.len(), "{}: one command per run", sync.name);
        assert_eq!(sent_runs, queued_runs, "{}", sync.name);
    }
    for quiet in [&paused, &manual] {
        assert!(scheduler.list_runs("ws", &quiet.id, 0).await?.is_empty());
        let subject = bus.subject(&format!("cmd.retl.run_sync.{}", quiet.id));
        assert!(!published.contains_key(&subject), "{} fired", quiet.name);
    }

    for replica in [first, second] {
        replica.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), replica.server).await???;
    }
    Ok(())
}

/// Waits until `sync` has a run matching `wanted`, returning every run (newest first).
async fn runs_until(
    scheduler: &Scheduler,
    sync_id: &str,
    what: &str,
    wanted: impl Fn(&[RunRecord]) -> bool,
) -> anyhow::Result<Vec<RunRecord>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = scheduler.list_runs("ws", sync_id, 0).await?;
        if wanted(&runs) {
            return Ok(runs);
        }
        anyhow::ensure!(Instant::now() < deadline, "never {what}: {runs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_tick_while_a_run_is_queued_is_coalesced_on_both_replicas() -> anyhow::Result<()> {
    let Replicas {
        first,
        second,
        nats,
        _authority,
    } = two_replicas("retlcoalesce").await?;
    let scheduler = first.scheduler.clone();
    let mut new = NewSync::basic(
        "ws",
        "every minute",
        "model",
        "hook",
        SyncMode::Upsert,
        vec![Mapping::column("email", "Email")],
        Schedule::Interval { seconds: 60 },
    );
    new.paused = true;
    let sync = scheduler.create_sync(new).await?;
    // a queued dry run sends nothing: ticks are not folded into it
    let dry = scheduler.dry_run("ws", &sync.id).await?;
    second.scheduler.set_paused("ws", &sync.id, false).await?;

    // no executor runs anything: the first tick queues a run, the next ones fold into it
    let scheduled = |runs: &[RunRecord]| -> Vec<RunRecord> {
        runs.iter()
            .filter(|run| run.trigger == RunTrigger::Schedule)
            .cloned()
            .collect()
    };
    let runs = runs_until(&scheduler, &sync.id, "three ticks coalesced", |runs| {
        scheduled(runs).iter().any(|run| run.coalesced_ticks >= 3)
    })
    .await?;
    let first_run = scheduled(&runs).remove(0);
    assert_eq!(
        scheduled(&runs).len(),
        1,
        "a queued run held the ticks back"
    );
    assert_eq!(first_run.status, RunStatus::Queued);
    let dry = runs.iter().find(|run| run.id == dry.id).cloned();
    assert!(
        matches!(dry, Some(run) if run.coalesced_ticks == 0 && run.status == RunStatus::Queued)
    );

    // once the run has started, the next tick queues a run again, and later ticks fold
    // into that one
    let leases = Leases::new(
        scheduler.store().database().clone(),
        LEASE_KIND,
        LeasePolicy::from_ttl(Duration::from_secs(600))?,
    );
    let claimed = scheduler.store().claim_run(&leases, &first_run.id).await?;
    assert!(matches!(claimed, Claim::Claimed(_)), "{claimed:?}");
    let runs = runs_until(&scheduler, &sync.id, "a second run coalescing", |runs| {
        let scheduled = scheduled(runs);
        scheduled.len() >= 2 && scheduled[0].coalesced_ticks >= 2
    })
    .await?;
    let scheduled_runs = scheduled(&runs);
    assert_eq!(
        scheduled_runs.len(),
        2,
        "one queued run behind the running one"
    );
    assert_eq!(scheduled_runs[0].status, RunStatus::Queued);
    assert_eq!(scheduled_runs[1].id, first_run.id);
    assert_eq!(scheduled_runs[1].status, RunStatus::Running);
    for run in &scheduled_runs {
        assert!(run.cause_id.starts_with(&format!("sync:{}:", sync.id)));
    }
    assert_ne!(scheduled_runs[0].cause_id, scheduled_runs[1].cause_id);

    // one command per run, whichever replica fired the tick
    scheduler.set_paused("ws", &sync.id, true).await?;
    outbox_drained(&scheduler).await?;
    let bus = Bus::connect(&nats).await?;
    let published = commands(&bus).await?;
    let subject = bus.subject(&format!("cmd.retl.run_sync.{}", sync.id));
    let sent: BTreeSet<_> = published
        .get(&subject)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|command| command.run_id)
        .collect();
    let runs = scheduler.list_runs("ws", &sync.id, 0).await?;
    let all: BTreeSet<_> = runs.iter().map(|run| run.id.clone()).collect();
    assert_eq!(
        runs.len(),
        3,
        "the dry run and two scheduled runs: {runs:?}"
    );
    assert_eq!(sent, all);

    for replica in [first, second] {
        replica.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), replica.server).await???;
    }
    Ok(())
}

/// The model source of one executor, counting the runs it started.
#[derive(Debug)]
struct Counted {
    tables: support::Tables,
    runs: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl ModelSource for Counted {
    async fn resolve(&self, workspace: &str, model: &str) -> Result<ResolvedModel, ExecError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.tables.resolve(workspace, model).await
    }
}

/// An executor (its own bus connection, one run at a time) over the shared store.
async fn executor(
    store: &backflow_retl_scheduler::store::SyncStore,
    nats: &backflow_platform::config::NatsConfig,
    tables: &support::Tables,
    shutdown: &Shutdown,
) -> anyhow::Result<Arc<AtomicUsize>> {
    let bus = Bus::connect(nats).await?;
    let runs = Arc::new(AtomicUsize::new(0));
    let ctx = RunContext {
        store: store.clone(),
        states: DiffStateStore::open(bus.jetstream(), &bucket_name(&bus)).await?,
        models: Arc::new(Counted {
            tables: tables.clone(),
            runs: runs.clone(),
        }),
        destinations: Arc::new(StoreDestinations {
            store: store.clone(),
            secrets: Arc::new(NoSecrets),
        }),
        settings: RunSettings {
            progress_every: Duration::from_millis(100),
            ..RunSettings::default()
        },
    };
    let policy = backflow_platform::lease::LeasePolicy::from_ttl(Duration::from_secs(5))?;
    tokio::spawn(Executor::new(ctx, policy, 1).run(bus, shutdown.clone()));
    Ok(runs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_and_two_executors_run_each_tick_once() -> anyhow::Result<()> {
    let database_url = testing::fresh_postgres_url("retlexecs").await?;
    let warehouse_url = testing::fresh_postgres_url("retlexecs_wh").await?;
    let warehouse = sqlx::PgPool::connect(&warehouse_url).await?;
    sqlx::query("CREATE TABLE contacts (id bigint, email text, name text)")
        .execute(&warehouse)
        .await?;
    sqlx::query(
        "INSERT INTO contacts SELECT g, 'u' || g || '@x', 'n' || g FROM generate_series(1, 20) g",
    )
    .execute(&warehouse)
    .await?;
    let nats = testing::fresh_nats("retlexecs");
    let authority = testing::TokenAuthority::start().await?;
    let clock = fast_clock();
    let first = replica_of(&database_url, &nats, &authority, clock.clone(), "contacts").await?;
    let second = replica_of(&database_url, &nats, &authority, clock.clone(), "contacts").await?;
    let scheduler = first.scheduler.clone();
    let receiver = WebhookReceiver::start(None).await;
    let now = backflow_platform::now_unix_ms();
    scheduler
        .store()
        .create_destination(&DestinationRecord {
            id: "hook".into(),
            workspace_id: "ws".into(),
            name: "hook".into(),
            kind: DestinationKind::Webhook,
            settings: [("url".to_string(), receiver.url())].into_iter().collect(),
            credential_id: String::new(),
            rate_limit_per_second: 0.0,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
            last_test: None,
        })
        .await?;
    let tables = support::Tables::of_url(&warehouse_url, &["id", "email", "name"]);
    let executors = Shutdown::new();
    let a = executor(scheduler.store(), &nats, &tables, &executors).await?;
    let b = executor(scheduler.store(), &nats, &tables, &executors).await?;

    let mut syncs = Vec::new();
    for n in 0..4 {
        let new = NewSync::basic(
            "ws",
            &format!("every minute {n}"),
            "contacts",
            "hook",
            SyncMode::Upsert,
            vec![Mapping::column("email", "Email")],
            Schedule::Interval { seconds: 60 },
        );
        let replica = if n % 2 == 0 { &first } else { &second };
        syncs.push(replica.scheduler.create_sync(new).await?);
    }
    // a few ticks of each (then no more, so the executors' backlog stays bounded)
    let ended = |runs: &[RunRecord]| {
        runs.iter()
            .filter(|run| !matches!(run.status, RunStatus::Queued | RunStatus::Running))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut fewest = usize::MAX;
        for sync in &syncs {
            fewest = fewest.min(scheduler.list_runs("ws", &sync.id, 0).await?.len());
        }
        if fewest >= 3 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {fewest} ticks of a sync in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for sync in &syncs {
        scheduler.set_paused("ws", &sync.id, true).await?;
    }
    // every run queued so far ends
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut all = Vec::new();
    loop {
        all.clear();
        for sync in &syncs {
            all.extend(scheduler.list_runs("ws", &sync.id, 0).await?);
        }
        if ended(&all) == all.len() {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "runs never ended: {all:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let causes: BTreeSet<_> = all.iter().map(|run| run.cause_id.clone()).collect();
    assert_eq!(causes.len(), all.len(), "a tick made two runs");
    for run in &all {
        assert_eq!(
            run.status,
            RunStatus::Succeeded,
            "{}: {}",
            run.id,
            run.error
        );
        assert_eq!(run.exec.resumed, 0);
    }
    let (by_a, by_b) = (a.load(Ordering::SeqCst), b.load(Ordering::SeqCst));
    eprintln!(
        "{} runs: {by_a} by one executor, {by_b} by the other",
        all.len()
    );
    assert_eq!(
        by_a + by_b,
        all.len(),
        "every run was executed exactly once"
    );
    assert!(
        by_a > 0 && by_b > 0,
        "both executors took work ({by_a}, {by_b})"
    );
    // the first run of each sync delivered the rows; later ones found nothing new
    let holds = receiver.holds();
    assert_eq!(holds.records.len(), 20);
    let delivered: i64 = all.iter().map(|run| run.exec.counts.delivered).sum();
    assert_eq!(
        delivered,
        4 * 20,
        "each sync delivered its rows once, whichever executor ran it"
    );

    executors.cancel();
    for replica in [first, second] {
        replica.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), replica.server).await???;
    }
    Ok(())
}
