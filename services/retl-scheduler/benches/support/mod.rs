//! What the sync bench and the warehouse-side diff bench share: the local PostgreSQL as a
//! warehouse source, one manual run driven the way an executor drives it (queue → claim →
//! `pipeline::execute` → `finish_run`), its phase timings as printable pairs, and raw
//! `COPY (query) TO STDOUT`, the yardstick both benches divide by.

use std::time::{Duration, Instant};

use backflow_platform::lease::Leases;
use backflow_proto::retl::v1::{RunPhase, RunTrigger};
use backflow_retl_scheduler::executor::pipeline::{self, RunContext};
use backflow_retl_scheduler::run::{manual_cause, RunRecord};
use backflow_retl_scheduler::store::runs::{Claim, Finish};
use backflow_retl_scheduler::store::SyncStore;
use backflow_warehouse::SourceSettings;
use futures::StreamExt;
use sqlx::Connection;

/// Source settings for `database` on the local PostgreSQL (trust auth, no TLS).
pub fn local_postgres_settings(database: &str) -> SourceSettings {
    [
        ("host", "127.0.0.1"),
        ("port", "5432"),
        ("database", database),
        ("user", "postgres"),
        ("sslmode", "disable"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Queues a manual run of `sync_id`, then claims, executes and finishes it; the time is
/// measured from the claim to the finished commit.
pub async fn run_manual(
    store: &SyncStore,
    leases: &Leases,
    ctx: &RunContext,
    workspace_id: &str,
    sync_id: &str,
) -> anyhow::Result<(Duration, Finish)> {
    let run = RunRecord::queued(
        workspace_id,
        sync_id,
        RunTrigger::Manual,
        manual_cause(&backflow_platform::new_id()),
        backflow_platform::now_unix_ms(),
    );
    store.queue_manual_run(&run).await?;
    let started = Instant::now();
    let Claim::Claimed(run) = store.claim_run(leases, &run.id).await? else {
        anyhow::bail!("the bench run was not claimed");
    };
    let finish = pipeline::execute(ctx, &run, Default::default(), None).await;
    store.finish_run(leases, &run, &finish).await?;
    Ok((started.elapsed(), finish))
}

/// A run's phase timings as (lower-case phase name, ms).
pub fn phase_timings(timings: &[(RunPhase, i64)]) -> Vec<(String, i64)> {
    timings
        .iter()
        .map(|(phase, ms)| {
            (
                phase
                    .as_str_name()
                    .trim_start_matches("RUN_PHASE_")
                    .to_lowercase(),
                *ms,
            )
        })
        .collect()
}

/// One `COPY (select) TO STDOUT [options]` with the bytes discarded: its time and size.
pub async fn raw_copy(url: &str, select: &str, options: &str) -> anyhow::Result<(Duration, u64)> {
    // the same transport as the runs' source (`local_postgres_settings`): no TLS, which
    // the URL's default (`prefer`) would negotiate with a server that has it on
    let connect = url
        .parse::<sqlx::postgres::PgConnectOptions>()?
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    let mut conn = sqlx::PgConnection::connect_with(&connect).await?;
    let started = Instant::now();
    let mut stream = conn
        .copy_out_raw(&format!("COPY ({select}) TO STDOUT{options}"))
        .await?;
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        bytes += chunk?.len() as u64;
    }
    let elapsed = started.elapsed();
    drop(stream);
    conn.close().await?;
    Ok((elapsed, bytes))
}
