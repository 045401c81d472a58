//! Warehouse-side diff bench (issue 10, acceptance 5, last line): a 1,000,000-row model
//! in the local PostgreSQL (generate_series; `BENCH_WAREHOUSE_DIFF_ROWS` overrides), one
//! upsert sync per diff strategy, each run a real `pipeline::execute` into a no-op
//! destination (accepts every record at once, so the numbers are extract + diff +
//! commit). Printed per run: wall time, time per phase, and rows moved from the
//! warehouse to Backflow — warehouse-side: only the changed rows (plus one count row);
//! Backflow-side: every row of the model — for a first run, a run with nothing changed,
//! and a run with 1% of rows changed. Raw `COPY (query) TO STDOUT` is the yardstick.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The same allocator as the `backflow` binary the executor runs in.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backflow_platform::bus::Bus;
use backflow_platform::db::Database;
use backflow_platform::lease::{LeasePolicy, Leases};
use backflow_platform::outbox::Outbox;
use backflow_platform::testing;
use backflow_proto::retl::v1::{DiffStrategy, RunStatus, SyncMode};
use backflow_retl_scheduler::app::MIGRATIONS;
use backflow_retl_scheduler::destination_config::DestinationRecord;
use backflow_retl_scheduler::destinations::{
    BatchResult, Capabilities, Destination, DestinationError, DestinationKind, OutboundBatch,
    RecordOutcome, RecordResult,
};
use backflow_retl_scheduler::executor::error::ExecError;
use backflow_retl_scheduler::executor::pipeline::{RunContext, RunSettings};
use backflow_retl_scheduler::executor::resolve::{
    writable, FixedDestination, ModelSource, ResolvedModel,
};
use backflow_retl_scheduler::run::RunCounts;
use backflow_retl_scheduler::schedule::Schedule;
use backflow_retl_scheduler::store::diff_state::{bucket_name, DiffStateStore};
use backflow_retl_scheduler::store::runs::LEASE_KIND;
use backflow_retl_scheduler::store::SyncStore;
use backflow_retl_scheduler::sync::{Guards, Mapping, SyncRecord};
use backflow_warehouse::{SecretMaterial, WarehouseKind};

mod support;

use sqlx::Connection;

const WS: &str = "ws-whdiff-bench";
const COLUMNS: &[&str] = &[
    "id",
    "email",
    "plan",
    "country",
    "score",
    "ltv",
    "orders",
    "active",
    "updated_at",
];

fn create_model(rows: u64) -> String {
    format!(
        "create schema backflow; \
         create table bench_people as select g::bigint as id, 'user' || g || '@example.com' as email, \
           (array['free','team','pro','enterprise'])[1 + g % 4] as plan, \
           case when g % 7 = 0 then null else (array['DE','US','FR','BR','JP','IN'])[1 + g % 6] end as country, \
           ((g % 100000) * 1.37)::numeric(12,2) as score, (g % 9973) / 7.0::float8 as ltv, (g % 50)::int as orders, \
           g % 3 <> 0 as active, timestamptz '2024-01-01' + g * interval '1 second' as updated_at \
         from generate_series(1, {rows}) g; \
         alter table bench_people add primary key (id); analyze bench_people;"
    )
}

#[derive(Debug)]
struct Noop;

#[async_trait::async_trait]
impl Destination for Noop {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Webhook
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_records: 10_000,
            max_concurrency: 4,
            deletes: true,
            idempotent: true,
            default_rate_per_second: 1_000_000.0,
        }
    }
    fn rate_limit_key(&self) -> String {
        "noop".into()
    }
    async fn test(&self) -> Result<(), DestinationError> {
        Ok(())
    }
    async fn send(&self, batch: &OutboundBatch) -> Result<BatchResult, DestinationError> {
        Ok(BatchResult {
            results: batch
                .records
                .iter()
                .map(|r| RecordResult {
                    key_hash: r.key_hash,
                    outcome: RecordOutcome::Delivered,
                })
                .collect(),
            requests: 1,
        })
    }
}

#[derive(Debug)]
struct Model {
    database: String,
}

#[async_trait::async_trait]
impl ModelSource for Model {
    async fn resolve(&self, _: &str, id: &str) -> Result<ResolvedModel, ExecError> {
        let settings = support::local_postgres_settings(&self.database);
        let secret = SecretMaterial("unused".to_string().into());
        let writable = writable(WarehouseKind::Postgres, &settings, &secret, "backflow");
        Ok(ResolvedModel {
            retl_model_id: id.into(),
            sql: format!("select {} from bench_people", COLUMNS.join(", ")),
            primary_key: vec!["id".into()],
            columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
            connector: backflow_warehouse::connect(WarehouseKind::Postgres, &settings, secret)?,
            backflow_schema: "backflow".into(),
            writable,
            run_ledger: false,
        })
    }
}

struct Measured {
    elapsed: Duration,
    counts: RunCounts,
    timings: String,
}

async fn run_once(
    store: &SyncStore,
    ctx: &RunContext,
    leases: &Leases,
    sync_id: &str,
) -> anyhow::Result<Measured> {
    let (elapsed, finish) = support::run_manual(store, leases, ctx, WS, sync_id).await?;
    anyhow::ensure!(
        finish.status == RunStatus::Succeeded,
        "run failed: {}",
        finish.error
    );
    let timings = support::phase_timings(&finish.timings)
        .into_iter()
        .map(|(phase, ms)| format!("{phase} {ms} ms"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Measured {
        elapsed,
        counts: finish.counts,
        timings,
    })
}

async fn raw_copy(url: &str) -> anyhow::Result<Duration> {
    let select = format!("select {} from bench_people", COLUMNS.join(", "));
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let (elapsed, _) = support::raw_copy(url, &select, " (FORMAT binary)").await?;
        best = best.min(elapsed);
    }
    Ok(best)
}

fn main() -> anyhow::Result<()> {
    // the process settings of the `backflow` binary the executor runs in
    backflow_platform::memory::disable_transparent_huge_pages();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let rows: u64 = std::env::var("BENCH_WAREHOUSE_DIFF_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let warehouse_url = testing::fresh_postgres_url("whdiffbench_wh").await?;
    let database = warehouse_url
        .rsplit_once('/')
        .map(|(_, n)| n.to_string())
        .unwrap_or_default();
    let result = measure(rows, &warehouse_url, &database).await;
    if let Ok(mut admin) = sqlx::PgConnection::connect(&testing::postgres_admin_url()).await {
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .execute(&mut admin)
        .await;
    }
    result
}

async fn measure(rows: u64, warehouse_url: &str, database: &str) -> anyhow::Result<()> {
    println!(
        "warehouse-side diff bench: {rows}-row model in PostgreSQL, upsert sync, no-op destination"
    );
    {
        let mut conn = sqlx::PgConnection::connect(warehouse_url).await?;
        sqlx::raw_sql(&create_model(rows))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
    }
    let db = Database::connect(
        &testing::fresh_postgres_url("whdiffbench").await?,
        &MIGRATIONS,
    )
    .await?;
    let bus = Bus::connect(&testing::fresh_nats("whdiffbench")).await?;
    let store = SyncStore::new(db, Outbox::new());
    let states = DiffStateStore::open(bus.jetstream(), &bucket_name(&bus)).await?;
    let now = backflow_platform::now_unix_ms();
    store
        .create_destination(&DestinationRecord {
            id: "noop".into(),
            workspace_id: WS.into(),
            name: "noop".into(),
            kind: DestinationKind::Webhook,
            settings: [("url".to_string(), "http://127.0.0.1:9/".to_string())]
                .into_iter()
                .collect(),
            credential_id: String::new(),
            rate_limit_per_second: 0.0,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
            last_test: None,
        })
        .await?;
    let leases = Leases::new(
        store.database().clone(),
        LEASE_KIND,
        LeasePolicy::from_ttl(Duration::from_secs(600))?,
    );
    let ctx = RunContext {
        store: store.clone(),
        states,
        models: Arc::new(Model {
            database: database.to_string(),
        }),
        destinations: Arc::new(FixedDestination(Arc::new(Noop))),
        settings: RunSettings::default(),
    };
    let mut syncs = Vec::new();
    for strategy in [DiffStrategy::Warehouse, DiffStrategy::Backflow] {
        let record = SyncRecord {
            id: format!("whbench-{}", backflow_platform::new_id()),
            workspace_id: WS.into(),
            name: format!("bench {strategy:?}"),
            retl_model_id: "bench_people".into(),
            destination_id: "noop".into(),
            mode: SyncMode::Upsert,
            mappings: COLUMNS[1..].iter().map(|c| Mapping::column(c, c)).collect(),
            schedule: Schedule::Manual,
            paused: false,
            paused_reason: String::new(),
            created_at_ms: now,
            updated_at_ms: now,
            destination_options: BTreeMap::new(),
            guards: Guards::default(),
            diff_strategy: strategy,
            max_record_attempts: 5,
            only_if_model_rebuilt: false,
            state_epoch: 0,
            primary_key: vec!["id".into()],
            version: 1,
        };
        store.create_sync(&record).await?;
        syncs.push((strategy, record.id));
    }
    let copy = raw_copy(warehouse_url).await?;
    println!(
        "  raw COPY (query) TO STDOUT: {:.0} ms (best of 3)",
        copy.as_secs_f64() * 1000.0
    );
    let one_percent = (rows / 100).max(1);
    let steps: [(&str, Option<String>); 3] = [
        ("first run", None),
        ("nothing changed", None),
        (
            "1% changed",
            Some(format!("update bench_people set plan = 'changed', orders = orders + 1 where id % 100 = 0 and id <= {}", one_percent * 100)),
        ),
    ];
    let mut conn = sqlx::PgConnection::connect(warehouse_url).await?;
    for (step, change) in steps {
        if let Some(sql) = change {
            sqlx::query(&sql).execute(&mut conn).await?;
        }
        for (strategy, sync_id) in &syncs {
            let m = run_once(&store, &ctx, &leases, sync_id).await?;
            let c = m.counts;
            // warehouse-side pulls the changed (and rejected) rows plus one count row;
            // backflow-side streams every row of the model
            let moved = match strategy {
                DiffStrategy::Warehouse => c.added + c.updated + c.rejected + 1,
                _ => c.extracted,
            };
            println!(
                "  {step:<16} {:<9} {:>8.0} ms ({:.2}x COPY)  rows moved to backflow {moved:>8}  added {} updated {} delivered {}  [{}]",
                format!("{strategy:?}").to_lowercase(),
                m.elapsed.as_secs_f64() * 1000.0,
                m.elapsed.as_secs_f64() / copy.as_secs_f64(),
                c.added,
                c.updated,
                c.delivered,
                m.timings
            );
        }
    }
    conn.close().await?;
    Ok(())
}
