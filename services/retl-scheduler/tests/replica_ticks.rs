//! Two scheduler replicas (two `App`s) on one PostgreSQL database and one NATS server
//! tick the same schedules: every tick makes exactly one run and exactly one
//! `cmd.retl.run_sync.<id>` message on the CMD stream, and a paused sync fires nothing.
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
        models: Some(support::models(&["ws"], "model").shared()),
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

#[tokio::test]
async fn two_replicas_make_one_run_and_one_command_per_tick() -> anyhow::Result<()> {
    let database_url = testing::fresh_postgres_url("retlticks").await?;
    let nats = testing::fresh_nats("retlticks");
    let authority = testing::TokenAuthority::start().await?;
    let clock = fast_clock();
    let first = replica(&database_url, &nats, &authority, clock.clone()).await?;
    let second = replica(&database_url, &nats, &authority, clock.clone()).await?;
    let scheduler = first.scheduler.clone();
    support::webhook(scheduler.store(), "ws", "hook").await?;

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

    // wait for a few ticks of each scheduled sync
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = scheduler.list_runs("ws", &every_minute.id, 0).await?.len();
        let b = scheduler.list_runs("ws", &cron.id, 0).await?.len();
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
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (pending,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM platform_outbox WHERE published_at_ms IS NULL")
                .fetch_one(scheduler.store().database().pool())
                .await?;
        if pending == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{pending} outbox rows never published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

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
