//! The sync store behaves the same on SQLite and PostgreSQL: workspace isolation,
//! pause rules, runs queued with their command in one transaction, one run per
//! (sync, cause), a dbt Cloud run handled once per message id, and schedule ticks fired
//! once per tick and coalesced into a run still queued.

use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;
use backflow_platform::testing;
use backflow_proto::retl::v1::{RunStatus, RunSyncCommand, RunTrigger, SyncMode};
use backflow_retl_scheduler::app::MIGRATIONS;
use backflow_retl_scheduler::schedule::Schedule;
use backflow_retl_scheduler::scheduler::Scheduler;
use backflow_retl_scheduler::store::{DbtRunHandled, DueSync, Fired, SyncStore};
use backflow_retl_scheduler::sync::{Mapping, NewSync, NullPolicy, SyncUpdate};
use backflow_retl_scheduler::ticker;
use backflow_retl_scheduler::RetlError;
use prost::Message;

mod support;

/// Run commands waiting in the outbox (sync changes are announced there too).
async fn pending_commands(db: &backflow_platform::db::Database) -> anyhow::Result<i64> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM platform_outbox WHERE published_at_ms IS NULL AND subject LIKE 'cmd.%'",
    )
    .fetch_one(db.pool())
    .await?;
    Ok(count)
}

const CONSUMER: &str = "contract";

const WORKSPACES: [&str; 5] = ["ws-a", "ws-b", "ws-d", "ws-e", "ws-g"];

async fn scheduler_on(url: &str) -> anyhow::Result<Scheduler> {
    let db = Database::connect(url, &MIGRATIONS).await?;
    let store = SyncStore::new(db, Outbox::new());
    for workspace in WORKSPACES {
        support::webhook(&store, workspace, &format!("dest-{workspace}")).await?;
    }
    Ok(Scheduler::new(
        store,
        support::models(&WORKSPACES, "model-1").shared(),
    ))
}

fn new_sync(workspace: &str, name: &str, schedule: Schedule) -> NewSync {
    NewSync::basic(
        workspace,
        name,
        "model-1",
        &format!("dest-{workspace}"),
        SyncMode::Upsert,
        vec![Mapping::column("email", "Email")],
        schedule,
    )
}

fn after_job(job_id: i64) -> Schedule {
    Schedule::AfterDbtCloudJob {
        account_id: 1,
        job_id,
    }
}

/// Commands waiting in the outbox, decoded, in order.
async fn queued_commands(scheduler: &Scheduler) -> anyhow::Result<Vec<(String, RunSyncCommand)>> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT subject, payload FROM platform_outbox WHERE published_at_ms IS NULL AND subject LIKE 'cmd.%' ORDER BY seq",
    )
    .fetch_all(scheduler.store().database().pool())
    .await?;
    rows.into_iter()
        .map(|(subject, payload)| Ok((subject, RunSyncCommand::decode(payload.as_slice())?)))
        .collect()
}

async fn contract(url: &str) -> anyhow::Result<()> {
    let scheduler = scheduler_on(url).await?;
    let cron = Schedule::Cron {
        expression: "0 9 * * 1-5".into(),
        time_zone: "Europe/Berlin".into(),
    };
    let created = scheduler
        .create_sync(new_sync("ws-a", "contacts", cron.clone()))
        .await?;
    assert_eq!(scheduler.get_sync("ws-a", &created.id).await?, created);
    assert_eq!(created.schedule, cron);

    // names are unique per workspace, not globally; every call is workspace-scoped
    assert!(matches!(
        scheduler
            .create_sync(new_sync("ws-a", "contacts", Schedule::Manual))
            .await,
        Err(RetlError::AlreadyExists(_))
    ));
    let other = scheduler
        .create_sync(new_sync("ws-b", "contacts", Schedule::Manual))
        .await?;
    assert_eq!(scheduler.list_syncs("ws-a").await?, vec![created.clone()]);
    assert!(matches!(
        scheduler.get_sync("ws-b", &created.id).await,
        Err(RetlError::NotFound(_))
    ));
    assert!(matches!(
        scheduler.trigger("ws-a", &other.id).await,
        Err(RetlError::NotFound(_))
    ));
    assert!(matches!(
        scheduler.list_runs("ws-a", &other.id, 0).await,
        Err(RetlError::NotFound(_))
    ));
    assert!(matches!(
        scheduler.list_syncs("").await,
        Err(RetlError::InvalidArgument(_))
    ));

    // every schedule kind survives storage
    for (name, schedule) in [
        ("manual", Schedule::Manual),
        ("interval", Schedule::Interval { seconds: 900 }),
        ("dbt", after_job(123)),
        (
            "dbt core",
            Schedule::AfterDbtCoreRun {
                project_name: "shop".into(),
            },
        ),
    ] {
        let sync = scheduler
            .create_sync(new_sync("ws-a", name, schedule.clone()))
            .await?;
        assert_eq!(
            scheduler.get_sync("ws-a", &sync.id).await?.schedule,
            schedule
        );
    }

    // a manual trigger makes a queued run and its command, in one transaction
    let run = scheduler.trigger("ws-a", &created.id).await?;
    assert_eq!(run.trigger, RunTrigger::Manual);
    assert_eq!(run.status, RunStatus::Queued);
    assert!(run.cause_id.starts_with("manual:"));
    let commands = queued_commands(&scheduler).await?;
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].0, format!("cmd.retl.run_sync.{}", created.id));
    assert_eq!(commands[0].1.run_id, run.id);
    assert_eq!(commands[0].1.workspace_id, "ws-a");

    // paused syncs refuse triggers until resumed; pausing twice is harmless
    assert!(
        scheduler
            .set_paused("ws-a", &created.id, true)
            .await?
            .paused
    );
    assert!(
        scheduler
            .set_paused("ws-a", &created.id, true)
            .await?
            .paused
    );
    assert!(matches!(
        scheduler.trigger("ws-a", &created.id).await,
        Err(RetlError::FailedPrecondition(_))
    ));
    assert!(matches!(
        scheduler.set_paused("ws-b", &created.id, true).await,
        Err(RetlError::NotFound(_))
    ));
    assert!(
        !scheduler
            .set_paused("ws-a", &created.id, false)
            .await?
            .paused
    );
    let second = scheduler.trigger("ws-a", &created.id).await?;
    assert_eq!(pending_commands(scheduler.store().database()).await?, 2);

    // runs are listed newest first, with a limit
    let runs = scheduler.list_runs("ws-a", &created.id, 0).await?;
    let ids: Vec<_> = runs.iter().map(|run| run.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), run.id.as_str()]);
    assert_eq!(
        scheduler.list_runs("ws-a", &created.id, 1).await?,
        vec![second.clone()]
    );
    assert_eq!(scheduler.list_runs("ws-a", "", 0).await?.len(), 2);
    assert!(scheduler.list_runs("ws-b", "", 0).await?.is_empty());

    sync_changes(&scheduler, &created.id).await?;
    dbt_runs(&scheduler).await?;
    lifecycle(&scheduler).await?;
    ticks(&scheduler).await?;
    carried_deletes(&scheduler).await?;
    endpoint_gone(&scheduler).await
}

/// The deletes a mirror run owes after carrying them across a diff strategy change:
/// written with the epoch move (or alone), replacing the earlier ones, read at their epoch
/// only, refused (nothing written) once the epoch moved on, forgotten with the state.
async fn carried_deletes(scheduler: &Scheduler) -> anyhow::Result<()> {
    let sync = scheduler
        .create_sync(new_sync("ws-a", "owed", Schedule::Manual))
        .await?;
    let store = scheduler.store();
    let epoch = sync.state_epoch;
    let epoch_now = || async {
        anyhow::Ok(
            store
                .get_sync("ws-a", &sync.id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("sync gone"))?
                .state_epoch,
        )
    };
    // more than one insert's worth, a key hash with the top bit set
    let mut owed: Vec<(u64, String)> = (0..450u64)
        .map(|id| {
            (
                id.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                format!("{{\"id\":{id}}}"),
            )
        })
        .collect();
    owed.push((u64::MAX, r#"{"id":"max"}"#.to_string()));
    owed.sort();
    let sync_id = sync.id.as_str();
    let read = |epoch: i64| async move {
        let mut read = store.carried_deletes(sync_id, epoch).await?;
        read.sort();
        anyhow::Ok(read)
    };
    assert_eq!(
        store
            .settle_carried_deletes("ws-a", &sync.id, epoch, true, &owed)
            .await?,
        epoch + 1
    );
    assert_eq!(epoch_now().await?, epoch + 1);
    assert_eq!(read(epoch + 1).await?, owed);
    assert!(read(epoch).await?.is_empty());
    // the next run keeps the epoch; what it still owes replaces the rest
    let still = vec![owed[3].clone()];
    assert_eq!(
        store
            .settle_carried_deletes("ws-a", &sync.id, epoch + 1, false, &still)
            .await?,
        epoch + 1
    );
    assert_eq!(read(epoch + 1).await?, still);
    // a run of before a reset writes nothing
    assert!(matches!(
        store
            .settle_carried_deletes("ws-a", &sync.id, epoch, true, &[])
            .await,
        Err(RetlError::FailedPrecondition(_))
    ));
    assert_eq!(epoch_now().await?, epoch + 1);
    assert_eq!(read(epoch + 1).await?, still);
    store.forget_sync_state(&sync.id).await?;
    assert!(read(epoch + 1).await?.is_empty());
    Ok(())
}

/// Backflow pausing every enabled sync of a destination whose endpoint answered 410: with
/// the reason shown, once (a second call, as another run or replica makes, changes
/// nothing), leaving a sync a user paused and other destinations as they were; no tick
/// fires and no trigger is taken until a resume, which clears the reason.
async fn endpoint_gone(scheduler: &Scheduler) -> anyhow::Result<()> {
    let store = scheduler.store();
    support::webhook(store, "ws-g", "dest-other").await?;
    let every_minute = Schedule::Interval { seconds: 60 };
    let a = scheduler
        .create_sync(new_sync("ws-g", "a", every_minute.clone()))
        .await?;
    let b = scheduler
        .create_sync(new_sync("ws-g", "b", every_minute.clone()))
        .await?;
    let mut by_user = new_sync("ws-g", "paused by a user", every_minute.clone());
    by_user.paused = true;
    let by_user = scheduler.create_sync(by_user).await?;
    let mut elsewhere = new_sync("ws-g", "elsewhere", every_minute);
    elsewhere.destination_id = "dest-other".into();
    let elsewhere = scheduler.create_sync(elsewhere).await?;
    let reason = "destination dest-ws-g answered 410 gone at 127.0.0.1:9 in run r-1 (gone); \
                  fix or replace the endpoint, then resume the sync";
    let mut both = vec![a.id.clone(), b.id.clone()];
    both.sort();
    assert_eq!(
        store
            .pause_syncs_of_destination("ws-g", "dest-ws-g", reason)
            .await?,
        both
    );
    assert!(store
        .pause_syncs_of_destination("ws-g", "dest-ws-g", "a second 410")
        .await?
        .is_empty());
    assert!(store
        .pause_syncs_of_destination("ws-a", "dest-ws-g", reason)
        .await?
        .is_empty());
    for id in &both {
        let sync = scheduler.get_sync("ws-g", id).await?;
        assert_eq!(
            (sync.paused, sync.paused_reason.as_str(), sync.version),
            (true, reason, 2)
        );
    }
    let still = scheduler.get_sync("ws-g", &by_user.id).await?;
    assert_eq!(
        (still.paused, still.paused_reason.as_str(), still.version),
        (true, "", 1)
    );
    assert!(!scheduler.get_sync("ws-g", &elsewhere.id).await?.paused);
    assert!(matches!(
        scheduler.trigger("ws-g", &a.id).await,
        Err(RetlError::FailedPrecondition(message)) if message.contains(reason)
    ));
    let due_ids =
        |due: Vec<DueSync>| -> Vec<String> { due.into_iter().map(|d| d.record.id).collect() };
    let due = due_ids(store.due_syncs(i64::MAX / 2, 10_000).await?);
    assert!(!due.contains(&a.id) && !due.contains(&b.id), "{due:?}");
    assert!(due.contains(&elsewhere.id), "{due:?}");
    let resumed = scheduler.set_paused("ws-g", &a.id, false).await?;
    assert_eq!(
        (resumed.paused, resumed.paused_reason.as_str()),
        (false, "")
    );
    let due = due_ids(store.due_syncs(i64::MAX / 2, 10_000).await?);
    assert!(due.contains(&a.id) && !due.contains(&b.id), "{due:?}");
    scheduler.trigger("ws-g", &a.id).await?;
    Ok(())
}

/// Fires the due tick of `sync_id` at `now_ms` as the ticker does (read, plan, fire);
/// also returns what was read, to fire it again as a second replica would.
async fn fire_due(
    store: &SyncStore,
    sync_id: &str,
    now_ms: i64,
) -> anyhow::Result<(DueSync, Fired)> {
    let due = store
        .due_syncs(now_ms, 1000)
        .await?
        .into_iter()
        .find(|due| due.record.id == sync_id)
        .ok_or_else(|| anyhow::anyhow!("sync {sync_id} is not due at {now_ms}"))?;
    let plan = ticker::plan(
        &due.record.schedule,
        due.anchor_ms,
        due.next_tick_ms,
        now_ms,
    )
    .ok_or_else(|| anyhow::anyhow!("nothing planned"))?;
    let fired = store.fire_tick(&due, plan.next_ms, now_ms).await?;
    Ok((due, fired))
}

/// A tick queues a run (once, whichever replica fires it), unless a run of the sync is
/// still queued: then it is folded into that run and counted there. A running run or a
/// queued dry run does not hold a tick back.
async fn ticks(scheduler: &Scheduler) -> anyhow::Result<()> {
    let store = scheduler.store();
    let sync = scheduler
        .create_sync(new_sync(
            "ws-e",
            "ticking",
            Schedule::Interval { seconds: 60 },
        ))
        .await?;
    let mut now = backflow_platform::now_unix_ms();
    let mut next_tick = || {
        now += 120_000;
        now
    };
    let at = next_tick();
    let (due, fired) = fire_due(store, &sync.id, at).await?;
    let Fired::Queued(first) = fired else {
        anyhow::bail!("the first tick queued no run: {fired:?}");
    };
    assert_eq!(
        first.cause_id,
        format!("sync:{}:{}", sync.id, due.next_tick_ms)
    );
    // the same tick fired by a second replica does nothing
    assert_eq!(
        store.fire_tick(&due, due.next_tick_ms + 60_000, at).await?,
        Fired::NotFired
    );
    for coalesced_ticks in 1..=2 {
        let (_, fired) = fire_due(store, &sync.id, next_tick()).await?;
        assert_eq!(
            fired,
            Fired::Coalesced {
                run_id: first.id.clone(),
                coalesced_ticks
            }
        );
    }
    let runs = scheduler.list_runs("ws-e", &sync.id, 0).await?;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].coalesced_ticks, 2);

    // started: the next tick queues a run again
    set_run_status(scheduler, &first.id, RunStatus::Running).await?;
    let (_, fired) = fire_due(store, &sync.id, next_tick()).await?;
    let Fired::Queued(second) = fired else {
        anyhow::bail!("a running run held the tick back: {fired:?}");
    };
    assert_ne!(second.cause_id, first.cause_id);
    // a queued dry run sends nothing: a tick is not folded into it
    set_run_status(scheduler, &second.id, RunStatus::Succeeded).await?;
    let dry = scheduler.dry_run("ws-e", &sync.id).await?;
    let (_, fired) = fire_due(store, &sync.id, next_tick()).await?;
    let Fired::Queued(third) = fired else {
        anyhow::bail!("a dry run held the tick back: {fired:?}");
    };
    let (_, fired) = fire_due(store, &sync.id, next_tick()).await?;
    assert!(
        matches!(fired, Fired::Coalesced { ref run_id, coalesced_ticks: 1 } if *run_id == third.id)
    );
    assert_eq!(store.get_run("ws-e", &dry.id).await?.coalesced_ticks, 0);
    // one command per run
    let subject = backflow_proto::subjects::RUN_SYNC.for_id(&sync.id);
    let commanded: Vec<String> = queued_commands(scheduler)
        .await?
        .into_iter()
        .filter(|(s, _)| *s == subject)
        .map(|(_, command)| command.run_id)
        .collect();
    assert_eq!(commanded, [first.id, second.id, dry.id, third.id]);
    Ok(())
}

/// The `SyncChangedEvent`s written for a sync, in order.
async fn events_of(
    scheduler: &Scheduler,
    sync_id: &str,
) -> anyhow::Result<Vec<backflow_proto::retl::v1::SyncChangedEvent>> {
    let rows: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT payload FROM platform_outbox WHERE subject = $1 ORDER BY seq")
            .bind(backflow_proto::subjects::SYNC_CHANGED.for_id(sync_id))
            .fetch_all(scheduler.store().database().pool())
            .await?;
    Ok(rows
        .iter()
        .map(|(payload,)| backflow_proto::retl::v1::SyncChangedEvent::decode(payload.as_slice()))
        .collect::<Result<_, _>>()?)
}

async fn set_run_status(
    scheduler: &Scheduler,
    run_id: &str,
    status: RunStatus,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE retl_runs SET status = $1 WHERE id = $2")
        .bind(status as i32)
        .bind(run_id)
        .execute(scheduler.store().database().pool())
        .await?;
    Ok(())
}

/// Create (paused, constants, null policy), validation against the model and the
/// destination, update, dry run, reset and delete, each announced where it changes use.
async fn lifecycle(scheduler: &Scheduler) -> anyhow::Result<()> {
    let invalid = |result: Result<_, RetlError>, needle: &str| match result {
        Err(RetlError::InvalidArgument(message)) if message.contains(needle) => Ok(()),
        other => Err(anyhow::anyhow!(
            "expected invalid argument with {needle:?}, got {other:?}"
        )),
    };
    let mut new = new_sync("ws-a", "lifecycle", Schedule::Manual);
    let mut omit = Mapping::column("name", "FullName");
    omit.null_policy = NullPolicy::OmitField;
    new.mappings.push(omit);
    new.mappings.push(Mapping::constant("source", "backflow"));
    new.paused = true;
    let sync = scheduler.create_sync(new.clone()).await?;
    assert!(sync.paused);
    assert_eq!(sync.primary_key, vec!["id".to_string()]);
    assert_eq!(scheduler.get_sync("ws-a", &sync.id).await?, sync);
    let created = events_of(scheduler, &sync.id).await?;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].used_columns, vec!["id", "email", "name"]);
    assert!(!created[0].enabled);

    // the model and the destination must fit
    let mut unknown_column = new.clone();
    unknown_column.name = "unknown column".into();
    unknown_column.mappings = vec![Mapping::column("e_mail", "Email")];
    invalid(
        scheduler.create_sync(unknown_column).await,
        "\"e_mail\" is not a column",
    )?;
    let mut unknown_model = new.clone();
    unknown_model.name = "unknown model".into();
    unknown_model.retl_model_id = "model-2".into();
    let refused = scheduler.create_sync(unknown_model).await;
    assert!(
        matches!(&refused, Err(RetlError::ModelNotFound(id)) if id == "model-2"),
        "{refused:?}"
    );
    let mut other_destination = new.clone();
    other_destination.name = "foreign destination".into();
    other_destination.destination_id = "dest-ws-b".into();
    let refused = scheduler.create_sync(other_destination).await;
    assert!(
        matches!(&refused, Err(RetlError::DestinationNotFound(id)) if id == "dest-ws-b"),
        "{refused:?}"
    );

    // a dry run is allowed while paused and carries its flag; a trigger is not
    let dry = scheduler.dry_run("ws-a", &sync.id).await?;
    assert!(dry.exec.dry_run);
    assert!(
        scheduler.list_runs("ws-a", &sync.id, 0).await?[0]
            .exec
            .dry_run
    );
    assert!(matches!(
        scheduler.trigger("ws-a", &sync.id).await,
        Err(RetlError::FailedPrecondition(_))
    ));

    // a partial update keeps the rest, is checked against the model, and is announced
    let update = SyncUpdate {
        mappings: vec![Mapping::column("id", "ExternalId")],
        mode: Some(SyncMode::Mirror as i32),
        ..Default::default()
    };
    let updated = scheduler.update_sync("ws-a", &sync.id, update).await?;
    assert_eq!(updated.mode, SyncMode::Mirror);
    assert_eq!(updated.mappings.len(), 4);
    assert_eq!(updated.version, 2);
    assert_eq!(scheduler.get_sync("ws-a", &sync.id).await?, updated);
    let unchanged = scheduler
        .update_sync("ws-a", &sync.id, SyncUpdate::default())
        .await?;
    assert_eq!(unchanged.version, 2);
    let bad = SyncUpdate {
        mappings: vec![Mapping::column("missing", "Email")],
        ..Default::default()
    };
    invalid(
        scheduler.update_sync("ws-a", &sync.id, bad).await,
        "not a column",
    )?;
    let taken = SyncUpdate {
        name: Some("contacts".into()),
        ..Default::default()
    };
    assert!(matches!(
        scheduler.update_sync("ws-a", &sync.id, taken).await,
        Err(RetlError::AlreadyExists(_))
    ));
    assert_eq!(
        events_of(scheduler, &sync.id)
            .await?
            .iter()
            .map(|e| e.version)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );

    // reset bumps the state epoch; refused while a run is running
    set_run_status(scheduler, &dry.id, RunStatus::Running).await?;
    assert!(matches!(
        scheduler.reset_state("ws-a", &sync.id).await,
        Err(RetlError::FailedPrecondition(_))
    ));
    // delete too; and the destination cannot go while the sync uses it
    assert!(matches!(
        scheduler.delete_sync("ws-a", &sync.id).await,
        Err(RetlError::FailedPrecondition(m)) if m.contains(&dry.id)
    ));
    let refused = scheduler.destinations().delete("ws-a", "dest-ws-a").await;
    assert!(
        matches!(&refused, Err(RetlError::FailedPrecondition(m)) if m.contains("\"lifecycle\"")),
        "{refused:?}"
    );
    set_run_status(scheduler, &dry.id, RunStatus::Succeeded).await?;
    let reset = scheduler.reset_state("ws-a", &sync.id).await?;
    assert_eq!(reset.state_epoch, updated.state_epoch + 1);
    // deleting keeps the run history; a run still queued ends cancelled
    let queued = scheduler.dry_run("ws-a", &sync.id).await?;
    scheduler.delete_sync("ws-a", &sync.id).await?;
    assert!(matches!(
        scheduler.get_sync("ws-a", &sync.id).await,
        Err(RetlError::NotFound(_))
    ));
    assert!(scheduler
        .list_syncs("ws-a")
        .await?
        .iter()
        .all(|s| s.id != sync.id));
    let history = scheduler.list_runs("ws-a", &sync.id, 0).await?;
    assert_eq!(
        history
            .iter()
            .map(|run| (run.id.clone(), run.status))
            .collect::<Vec<_>>(),
        vec![
            (queued.id.clone(), RunStatus::Cancelled),
            (dry.id.clone(), RunStatus::Succeeded)
        ]
    );
    assert_eq!(history[0].error, "the sync was deleted");
    assert_eq!(
        scheduler.store().get_run("ws-a", &dry.id).await?.status,
        RunStatus::Succeeded
    );
    assert!(matches!(
        scheduler.list_runs("ws-b", &sync.id, 0).await,
        Err(RetlError::NotFound(_))
    ));
    // its name is free again, and it no longer ticks
    let again = scheduler.create_sync(new.clone()).await?;
    assert_ne!(again.id, sync.id);
    scheduler.delete_sync("ws-a", &again.id).await?;
    let last = events_of(scheduler, &sync.id).await?;
    let gone = last.last().ok_or_else(|| anyhow::anyhow!("no events"))?;
    assert!(gone.deleted && !gone.enabled);
    assert_eq!(gone.version, 3);
    assert!(matches!(
        scheduler.delete_sync("ws-a", &sync.id).await,
        Err(RetlError::NotFound(_))
    ));

    // a destination nothing uses can go
    support::webhook(scheduler.store(), "ws-a", "spare").await?;
    assert_eq!(scheduler.destinations().list("ws-a").await?.len(), 2);
    scheduler.destinations().delete("ws-a", "spare").await?;
    assert!(matches!(
        scheduler.destinations().get("ws-a", "spare").await,
        Err(RetlError::DestinationNotFound(_))
    ));
    Ok(())
}

/// Create, pause and resume each wrote one `SyncChangedEvent` in their transaction,
/// with a version that increases and `enabled` following the pause state.
async fn sync_changes(scheduler: &Scheduler, sync_id: &str) -> anyhow::Result<()> {
    let rows: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT payload FROM platform_outbox WHERE subject = $1 ORDER BY seq")
            .bind(backflow_proto::subjects::SYNC_CHANGED.for_id(sync_id))
            .fetch_all(scheduler.store().database().pool())
            .await?;
    let events: Vec<_> = rows
        .iter()
        .map(|(payload,)| backflow_proto::retl::v1::SyncChangedEvent::decode(payload.as_slice()))
        .collect::<Result<_, _>>()?;
    let seen: Vec<(i64, bool)> = events.iter().map(|e| (e.version, e.enabled)).collect();
    assert_eq!(seen, vec![(1, true), (2, false), (3, true)]);
    assert!(events.iter().all(|e| e.workspace_id == "ws-a"
        && e.used_columns == vec!["id".to_string(), "email".to_string()]
        && !e.deleted));
    Ok(())
}

/// What the dbt run consumer writes for a run of job 7 in ws-d: a run per unpaused
/// bound sync, `skip` skipped.
async fn queue_bound(
    store: &backflow_retl_scheduler::store::SyncStore,
    message_id: &str,
    cause_id: &str,
    skip: Option<&str>,
) -> anyhow::Result<DbtRunHandled> {
    let decisions: Vec<(String, Option<String>)> = store
        .dbt_bound_syncs("ws-d", &after_job(7))
        .await?
        .into_iter()
        .map(|sync| {
            let reason =
                (skip == Some(sync.id.as_str())).then(|| "skipped: not rebuilt".to_string());
            (sync.id, reason)
        })
        .collect();
    Ok(store
        .record_dbt_run(
            CONSUMER,
            message_id,
            "ws-d",
            RunTrigger::DbtCloudJob,
            cause_id,
            &decisions,
        )
        .await?)
}

/// Runs triggered by dbt Cloud: only unpaused syncs bound to the job, in the event's
/// workspace; once per message id and once per dbt run.
async fn dbt_runs(scheduler: &Scheduler) -> anyhow::Result<()> {
    let store = scheduler.store();
    let bound = scheduler
        .create_sync(new_sync("ws-d", "bound", after_job(7)))
        .await?;
    let also_bound = scheduler
        .create_sync(new_sync("ws-d", "also bound", after_job(7)))
        .await?;
    let paused = scheduler
        .create_sync(new_sync("ws-d", "paused", after_job(7)))
        .await?;
    scheduler.set_paused("ws-d", &paused.id, true).await?;
    let other_job = scheduler
        .create_sync(new_sync("ws-d", "other job", after_job(8)))
        .await?;
    let other_workspace = scheduler
        .create_sync(new_sync("ws-e", "bound", after_job(7)))
        .await?;
    let before = pending_commands(store.database()).await?;

    let DbtRunHandled::Recorded(runs) = queue_bound(store, "evt-1", "dbt:1:100", None).await?
    else {
        anyhow::bail!("first delivery was taken for a duplicate");
    };
    let mut triggered: Vec<_> = runs.iter().map(|run| run.sync_id.clone()).collect();
    triggered.sort();
    let mut expected = vec![bound.id.clone(), also_bound.id.clone()];
    expected.sort();
    assert_eq!(triggered, expected);
    assert!(runs
        .iter()
        .all(|run| run.trigger == RunTrigger::DbtCloudJob && run.cause_id == "dbt:1:100"));
    assert_eq!(pending_commands(store.database()).await?, before + 2);

    // the same message again: nothing
    assert_eq!(
        queue_bound(store, "evt-1", "dbt:1:100", None).await?,
        DbtRunHandled::Duplicate
    );
    // the same dbt run under another message id (webhook and poll): no second run
    assert_eq!(
        queue_bound(store, "evt-2", "dbt:1:100", None).await?,
        DbtRunHandled::Recorded(Vec::new())
    );
    // the next dbt run: one more each, one of them skipped (with its reason, no command)
    let DbtRunHandled::Recorded(next) =
        queue_bound(store, "evt-3", "dbt:1:101", Some(&also_bound.id)).await?
    else {
        anyhow::bail!("next delivery was taken for a duplicate");
    };
    assert_eq!(next.len(), 2);
    assert_eq!(pending_commands(store.database()).await?, before + 3);
    let skipped = scheduler
        .list_runs("ws-d", &also_bound.id, 1)
        .await?
        .remove(0);
    assert_eq!(skipped.status, backflow_proto::retl::v1::RunStatus::Skipped);
    assert_eq!(skipped.error, "skipped: not rebuilt");
    assert_eq!(skipped.exec.phase, backflow_proto::retl::v1::RunPhase::Done);
    for (sync, expected_runs) in [(&bound, 2), (&also_bound, 2), (&paused, 0), (&other_job, 0)] {
        assert_eq!(
            scheduler.list_runs("ws-d", &sync.id, 0).await?.len(),
            expected_runs,
            "{}",
            sync.name
        );
    }
    assert!(scheduler
        .list_runs("ws-e", &other_workspace.id, 0)
        .await?
        .is_empty());
    Ok(())
}

#[tokio::test]
async fn store_contract_on_sqlite_and_postgres() -> anyhow::Result<()> {
    for url in testing::both_backends("retl").await? {
        contract(&url)
            .await
            .map_err(|err| anyhow::anyhow!("{url}: {err:#}"))?;
    }
    Ok(())
}
