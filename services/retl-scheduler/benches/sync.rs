//! Sync bench (issue 10, acceptance 5): a 1,000,000-row model in the local PostgreSQL → a
//! local no-op HTTP receiver (reads each request body, answers 200), measured in one run:
//!
//! - raw `COPY (query) TO STDOUT` of the model's query (best of 3, bytes discarded): the
//!   yardstick every other line is a ratio to; the 1% line's yardstick is COPY of the
//!   changed table, measured right before each of its runs (same table state);
//! - Backflow's full first sync, a sync with nothing changed (best of 3 runs, like COPY) and
//!   a sync with 1% of rows changed (best of 3 rounds, each changing another 1% of rows,
//!   `VACUUM ANALYZE`, COPY, run), each a real run (claim → `pipeline::execute` →
//!   `finish_run`) on the real
//!   store (PostgreSQL), diff state (NATS object store) and webhook destination (Standard
//!   Webhooks JSON batches signed with a `whsec_` secret as a user's would be, its largest
//!   batch, 10,000 records, its default 8 requests in flight); requests the receiver
//!   got, peak RSS (VmHWM, reset before each run; the whole process, receiver included)
//!   and CPU time of the process during the run (utime + stime, receiver included: what
//!   a loaded machine cannot blur, unlike the wall time);
//! - the open-source peer drt (PyPI `drt-core`, `make bench` installs it into `.venv-drt`)
//!   as Postgres source → `rest_api` destination in batch mode, same rows and receiver, its
//!   largest batch (every row in one batch: `sync.batch_size` has no upper bound), in two
//!   configurations: `mode: full` (no change detection, like Backflow's diff needs no
//!   cursor column) on the full and the no-change sync, and `mode: incremental` on the
//!   `updated_at` cursor (its cheapest no-change sync); wall time of each `drt run`
//!   process and its peak RSS. Without drt the bench says why and prints the rest.
//!
//! Targets: full ≤ 1.5× COPY; nothing changed ≤ 1.2× COPY with 0 requests; 1% changed
//! ≤ 1.25× COPY; full sync ≥ 10× faster than drt. `BENCH_SYNC_ROWS` overrides the row
//! count, `DRT_BIN` the drt executable. Build in release: `cargo bench` does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The same allocator as the `backflow` binary the executor runs in.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backflow_platform::bus::Bus;
use backflow_platform::db::Database;
use backflow_platform::lease::{LeasePolicy, Leases};
use backflow_platform::outbox::Outbox;
use backflow_platform::testing;
use backflow_proto::retl::v1::{DiffStrategy, RunStatus, SyncMode};
use backflow_retl_scheduler::app::MIGRATIONS;
use backflow_retl_scheduler::destination_config::{DestinationRecord, SecretResolver};
use backflow_retl_scheduler::destinations::DestinationKind;
use backflow_retl_scheduler::error::RetlError;
use backflow_retl_scheduler::executor::error::ExecError;
use backflow_retl_scheduler::executor::pipeline::{RunContext, RunSettings};
use backflow_retl_scheduler::executor::resolve::{ModelSource, ResolvedModel, StoreDestinations};
use backflow_retl_scheduler::run::RunCounts;
use backflow_retl_scheduler::schedule::Schedule;
use backflow_retl_scheduler::store::diff_state::{bucket_name, DiffStateStore};
use backflow_retl_scheduler::store::runs::LEASE_KIND;
use backflow_retl_scheduler::store::SyncStore;
use backflow_retl_scheduler::sync::{Guards, Mapping, SyncRecord};
use backflow_warehouse::{SecretMaterial, WarehouseKind};
mod support;

use sqlx::Connection;

const WS: &str = "ws-bench";
const COLUMNS: &[&str] = &[
    "id",
    "email",
    "full_name",
    "plan",
    "country",
    "score",
    "lifetime_value",
    "orders",
    "active",
    "created_at",
    "updated_at",
    "last_seen_at",
];

fn query() -> String {
    format!("select {} from bench_model", COLUMNS.join(", "))
}

/// A realistic mix: ids, text, numeric, floats, integers, booleans, timestamps, NULLs.
fn create_model(rows: u64) -> String {
    format!(
        "create table bench_model as select \
           g::bigint as id, \
           'user' || g || '@example.com' as email, \
           case when g % 20 = 0 then null else initcap(md5(g::text)) end as full_name, \
           (array['free','team','pro','enterprise'])[1 + g % 4] as plan, \
           case when g % 7 = 0 then null else (array['DE','US','FR','BR','JP','IN'])[1 + g % 6] end as country, \
           case when g % 10 = 0 then null else ((g % 100000) * 1.37)::numeric(12,2) end as score, \
           (g % 9973) / 7.0::float8 as lifetime_value, \
           (g % 50)::int as orders, \
           g % 3 <> 0 as active, \
           timestamptz '2023-01-01' + g * interval '17 seconds' as created_at, \
           timestamptz '2024-01-01' + g * interval '1 second' as updated_at, \
           case when g % 5 = 0 then null else timestamptz '2024-06-01' + g * interval '3 seconds' end as last_seen_at \
         from generate_series(1, {rows}) g; \
         alter table bench_model add primary key (id);"
    )
}

// ---------------------------------------------------------------------------------------
// The no-op receiver: its own thread and runtime; reads every body, answers 200.

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
}

fn start_receiver() -> (String, Arc<Counters>) {
    use http_body_util::BodyExt;
    let counters = Arc::new(Counters::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let shared = counters.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let counters = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let counters = counters.clone();
                            async move {
                                let mut body = request.into_body();
                                let mut bytes = 0u64;
                                while let Some(frame) = body.frame().await {
                                    if let Ok(data) = frame?.into_data() {
                                        bytes += data.len() as u64;
                                    }
                                }
                                counters.requests.fetch_add(1, Ordering::Relaxed);
                                counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                                Ok::<_, hyper::Error>(hyper::Response::new(
                                    http_body_util::Full::new(bytes::Bytes::from_static(b"OK")),
                                ))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    let addr = rx.recv().unwrap();
    (format!("http://{addr}/hook"), counters)
}

// ---------------------------------------------------------------------------------------
// Memory of this process.

fn status_kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn own_hwm_kib() -> u64 {
    status_kib(
        &std::fs::read_to_string("/proc/self/status").unwrap_or_default(),
        "VmHWM:",
    )
}

/// CPU time of this whole process (every thread, the receiver's included), from
/// `/proc/self/stat` utime + stime (clock ticks of 10 ms).
fn own_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0; best effort).
fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

// ---------------------------------------------------------------------------------------
// Backflow.

/// The webhook's signing secret (every request is signed, as a user's would be).
#[derive(Debug)]
struct SigningSecret;

#[async_trait::async_trait]
impl SecretResolver for SigningSecret {
    async fn resolve(&self, _: &str, _: &str, _: &str) -> Result<secrecy::SecretString, RetlError> {
        Ok(secrecy::SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
        ))
    }
}

#[derive(Debug)]
struct BenchModel {
    database: String,
}

#[async_trait::async_trait]
impl ModelSource for BenchModel {
    async fn resolve(&self, _: &str, retl_model_id: &str) -> Result<ResolvedModel, ExecError> {
        let settings = support::local_postgres_settings(&self.database);
        let connector = backflow_warehouse::connect(
            WarehouseKind::Postgres,
            &settings,
            SecretMaterial("unused".to_string().into()),
        )?;
        Ok(ResolvedModel {
            retl_model_id: retl_model_id.into(),
            sql: query(),
            primary_key: vec!["id".into()],
            columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
            connector,
            backflow_schema: String::new(),
            // The Backflow-side diff (the warehouse-side one has its own bench line).
            writable: Err("the bench measures the backflow-side diff".into()),
            run_ledger: false,
        })
    }
}

struct Measured {
    elapsed: Duration,
    /// CPU time of this process during the run (Backflow and the receiver).
    cpu: Duration,
    requests: u64,
    bytes: u64,
    peak_rss_kib: u64,
    counts: RunCounts,
    status: RunStatus,
    error: String,
    timings: Vec<(String, i64)>,
}

struct Backflow {
    store: SyncStore,
    ctx: RunContext,
    leases: Leases,
    sync_id: String,
    counters: Arc<Counters>,
}

impl Backflow {
    async fn run(&self) -> anyhow::Result<Measured> {
        let requests = self.counters.requests.load(Ordering::Relaxed);
        let bytes = self.counters.bytes.load(Ordering::Relaxed);
        reset_hwm();
        let cpu = own_cpu();
        let (elapsed, finish) =
            support::run_manual(&self.store, &self.leases, &self.ctx, WS, &self.sync_id).await?;
        Ok(Measured {
            elapsed,
            cpu: own_cpu().saturating_sub(cpu),
            requests: self.counters.requests.load(Ordering::Relaxed) - requests,
            bytes: self.counters.bytes.load(Ordering::Relaxed) - bytes,
            peak_rss_kib: own_hwm_kib(),
            counts: finish.counts,
            status: finish.status,
            error: finish.error,
            timings: support::phase_timings(&finish.timings),
        })
    }
}

async fn backflow(
    warehouse_db: &str,
    hook_url: &str,
    counters: Arc<Counters>,
) -> anyhow::Result<Backflow> {
    let db = Database::connect(
        &testing::fresh_postgres_url("syncbench").await?,
        &MIGRATIONS,
    )
    .await?;
    let bus = Bus::connect(&testing::fresh_nats("syncbench")).await?;
    let store = SyncStore::new(db, Outbox::new());
    let states = DiffStateStore::open(bus.jetstream(), &bucket_name(&bus)).await?;
    let now = backflow_platform::now_unix_ms();
    store
        .create_destination(&DestinationRecord {
            id: "hook".into(),
            workspace_id: WS.into(),
            name: "no-op receiver".into(),
            kind: DestinationKind::Webhook,
            settings: [
                ("url".to_string(), hook_url.to_string()),
                ("batch_size".to_string(), "10000".to_string()),
            ]
            .into_iter()
            .collect(),
            credential_id: "bench-signing-secret".into(),
            rate_limit_per_second: 0.0,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
            last_test: None,
        })
        .await?;
    let record = SyncRecord {
        id: format!("bench-{}", backflow_platform::new_id()),
        workspace_id: WS.into(),
        name: "bench".into(),
        retl_model_id: "bench_model".into(),
        destination_id: "hook".into(),
        mode: SyncMode::Upsert,
        mappings: COLUMNS[1..].iter().map(|c| Mapping::column(c, c)).collect(),
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
    store.create_sync(&record).await?;
    let leases = Leases::new(
        store.database().clone(),
        LEASE_KIND,
        LeasePolicy::from_ttl(Duration::from_secs(600))?,
    );
    let ctx = RunContext {
        store: store.clone(),
        states,
        models: Arc::new(BenchModel {
            database: warehouse_db.to_string(),
        }),
        destinations: Arc::new(StoreDestinations {
            store: store.clone(),
            secrets: Arc::new(SigningSecret),
        }),
        settings: RunSettings::default(),
    };
    Ok(Backflow {
        store,
        ctx,
        leases,
        sync_id: record.id,
        counters,
    })
}

// ---------------------------------------------------------------------------------------
// COPY.

async fn raw_copy(url: &str) -> anyhow::Result<(Duration, u64)> {
    support::raw_copy(url, &query(), "").await
}

// ---------------------------------------------------------------------------------------
// drt.

fn drt_bin() -> Result<PathBuf, String> {
    if let Ok(bin) = std::env::var("DRT_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = repo.join(".venv-drt/bin/drt");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "drt is not installed ({} is missing; `make drt` installs drt-core from PyPI into .venv-drt)",
            bin.display()
        ))
    }
}

struct Drt {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

struct DrtRun {
    elapsed: Duration,
    requests: u64,
    bytes: u64,
    peak_rss_kib: u64,
    summary: String,
}

impl Drt {
    fn new(bin: PathBuf, database: &str, hook_url: &str, rows: u64) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let home = dir.path().join("home/.drt");
        let project = dir.path().join("project/syncs");
        std::fs::create_dir_all(&home)?;
        std::fs::create_dir_all(&project)?;
        std::fs::write(
            home.join("profiles.yml"),
            format!(
                "bench:\n  type: postgres\n  host: 127.0.0.1\n  port: 5432\n  dbname: {database}\n  user: postgres\n  password: \"\"\n"
            ),
        )?;
        std::fs::write(
            dir.path().join("project/drt_project.yml"),
            "name: bench\nversion: \"0.1\"\nprofile: bench\n",
        )?;
        let destination = format!(
            "destination:\n  type: rest_api\n  url: \"{hook_url}\"\n  method: POST\n  headers:\n    Content-Type: \"application/json\"\n  body_mode: batch\n  batch_template: \"{{{{ rows | tojson_safe }}}}\"\n"
        );
        let model = format!("model: \"{}\"\n", query());
        std::fs::write(
            project.join("rows_full.yml"),
            format!("name: rows_full\n{model}{destination}sync:\n  mode: full\n  batch_size: {rows}\n  on_error: fail\n"),
        )?;
        std::fs::write(
            project.join("rows_cursor.yml"),
            format!("name: rows_cursor\n{model}{destination}sync:\n  mode: incremental\n  cursor_field: updated_at\n  batch_size: {rows}\n  on_error: fail\n"),
        )?;
        Ok(Self { bin, dir })
    }

    /// `drt run --select <sync>`, timed, with the child's peak RSS (polled VmHWM).
    fn run(&self, sync: &str, counters: &Counters) -> anyhow::Result<DrtRun> {
        let requests = counters.requests.load(Ordering::Relaxed);
        let bytes = counters.bytes.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut child = std::process::Command::new(&self.bin)
            .args(["run", "--select", sync])
            .current_dir(self.dir.path().join("project"))
            .env("HOME", self.dir.path().join("home"))
            .env("DO_NOT_TRACK", "1")
            .env("DRT_TELEMETRY", "0")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let status_path = format!("/proc/{}/status", child.id());
        let mut peak = 0;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if let Ok(text) = std::fs::read_to_string(&status_path) {
                peak = peak.max(status_kib(&text, "VmHWM:"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = started.elapsed();
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        }
        if let Some(mut stderr) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut out);
        }
        anyhow::ensure!(
            status.success(),
            "drt run --select {sync} failed ({status}): {}",
            out.trim()
        );
        // drt's own line for the sync: "✓ 100000 synced  (0.8s)" or "✓ 0 rows (no rows)".
        let summary = out
            .lines()
            .map(str::trim)
            .find(|line| line.contains(" synced") || line.contains("(no rows)"))
            .unwrap_or("")
            .to_string();
        Ok(DrtRun {
            elapsed,
            requests: counters.requests.load(Ordering::Relaxed) - requests,
            bytes: counters.bytes.load(Ordering::Relaxed) - bytes,
            peak_rss_kib: peak,
            summary,
        })
    }
}

// ---------------------------------------------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT MET"
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    // the process settings of the `backflow` binary the executor runs in
    backflow_platform::memory::disable_transparent_huge_pages();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let rows: u64 = std::env::var("BENCH_SYNC_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    println!("sync bench: {rows}-row model in PostgreSQL → local no-op HTTP receiver (load average before: {})", load());
    let warehouse_url = testing::fresh_postgres_url("syncbench_wh").await?;
    let warehouse_db = warehouse_url
        .rsplit_once('/')
        .map(|(_, name)| name.to_string())
        .unwrap_or_default();
    let result = async {
        let mut conn = sqlx::PgConnection::connect(&warehouse_url).await?;
        sqlx::raw_sql(&create_model(rows))
            .execute(&mut conn)
            .await?;
        // VACUUM runs outside a transaction: a statement of its own.
        sqlx::raw_sql("vacuum analyze bench_model")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        measure(rows, &warehouse_url, &warehouse_db).await
    }
    .await;
    // The model is large: drop its database whatever happened.
    if let Ok(mut admin) = sqlx::PgConnection::connect(&testing::postgres_admin_url()).await {
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{warehouse_db}\" WITH (FORCE)"
        ))
        .execute(&mut admin)
        .await;
    }
    result
}

async fn measure(rows: u64, warehouse_url: &str, warehouse_db: &str) -> anyhow::Result<()> {
    let (hook_url, counters) = start_receiver();
    let flow = backflow(warehouse_db, &hook_url, counters.clone()).await?;

    let mut copy = Duration::MAX;
    let mut copy_bytes = 0;
    for _ in 0..3 {
        let (elapsed, bytes) = raw_copy(warehouse_url).await?;
        copy = copy.min(elapsed);
        copy_bytes = bytes;
    }

    let full = flow.run().await?;
    // The same statistic as COPY's: best of 3 (each a real run; every request counts).
    let mut unchanged = flow.run().await?;
    for _ in 0..2 {
        let again = flow.run().await?;
        let requests = unchanged.requests + again.requests;
        if again.elapsed < unchanged.elapsed {
            unchanged = again;
        }
        unchanged.requests = requests;
    }

    // drt, on the same rows, before they change.
    let drt = match drt_bin() {
        Ok(bin) => {
            let drt = Drt::new(bin, warehouse_db, &hook_url, rows)?;
            let runs = (|| -> anyhow::Result<_> {
                let full = drt.run("rows_full", &counters)?;
                let again = drt.run("rows_full", &counters)?;
                let cursor_first = drt.run("rows_cursor", &counters)?;
                let cursor_again = drt.run("rows_cursor", &counters)?;
                Ok((full, again, cursor_first, cursor_again))
            })();
            runs.map_err(|e| e.to_string())
        }
        Err(why) => Err(why),
    };

    // 1% changed, three rounds of: another 1% of rows changed, VACUUM ANALYZE, COPY of the
    // table as it now is, the run. Best run against best COPY, both of the changed table.
    let mut rounds: Vec<(Duration, Measured)> = Vec::new();
    for round in 0..3 {
        let mut conn = sqlx::PgConnection::connect(warehouse_url).await?;
        sqlx::raw_sql(&format!(
            "update bench_model set email = 'changed.' || email, updated_at = updated_at + interval '1 day' \
             where id % 100 = {round}"
        ))
        .execute(&mut conn)
        .await?;
        sqlx::raw_sql("vacuum analyze bench_model")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let (copy_now, _) = raw_copy(warehouse_url).await?;
        rounds.push((copy_now, flow.run().await?));
    }
    let copy_changed = rounds.iter().map(|(copy, _)| *copy).min().unwrap_or(copy);
    let round_lines: Vec<String> = rounds
        .iter()
        .map(|(copy, run)| {
            format!(
                "COPY {:.1} ms → run {:.1} ms ({:.2}×)",
                ms(*copy),
                ms(run.elapsed),
                run.elapsed.as_secs_f64() / copy.as_secs_f64()
            )
        })
        .collect();
    let changed = rounds
        .into_iter()
        .map(|(_, run)| run)
        .min_by_key(|run| run.elapsed)
        .expect("three rounds");

    let ratio = |d: Duration| d.as_secs_f64() / copy.as_secs_f64();
    println!(
        "raw COPY (query) TO STDOUT, best of 3: {:.1} ms, {:.1} MiB of text",
        ms(copy),
        copy_bytes as f64 / 1048576.0
    );
    println!();
    println!(
        "{:<34} {:>10} {:>8} {:>9} {:>9} {:>10} {:>9}  target",
        "backflow (webhook, batch 10000)",
        "time ms",
        "× COPY",
        "sent",
        "requests",
        "body MiB",
        "peak RSS"
    );
    let line = |name: &str, m: &Measured, yardstick: Duration, target: f64, zero_requests: bool| {
        let sent = m.counts.delivered;
        let ratio = m.elapsed.as_secs_f64() / yardstick.as_secs_f64();
        let ok = ratio <= target && (!zero_requests || m.requests == 0);
        println!(
            "{:<34} {:>10.1} {:>7.2}× {:>9} {:>9} {:>10.1} {:>6.0} MiB  ≤ {target}×{}: {}",
            name,
            ms(m.elapsed),
            ratio,
            sent,
            m.requests,
            m.bytes as f64 / 1048576.0,
            mib(m.peak_rss_kib),
            if zero_requests { ", 0 requests" } else { "" },
            verdict(ok)
        );
    };
    line("full first sync", &full, copy, 1.5, false);
    line("nothing changed (best of 3)", &unchanged, copy, 1.2, true);
    line(
        "1% changed (best of 3)",
        &changed,
        copy_changed,
        1.25,
        false,
    );
    println!(
        "  (1% changed is a ratio to COPY of the changed table, best of its 3 rounds: {:.1} ms; rounds: {})",
        ms(copy_changed),
        round_lines.join("; ")
    );
    for (name, m) in [
        ("full", &full),
        ("nothing changed", &unchanged),
        ("1% changed", &changed),
    ] {
        anyhow::ensure!(
            m.status == RunStatus::Succeeded,
            "the {name} run ended {:?}: {}",
            m.status,
            m.error
        );
        let phases: Vec<String> = m
            .timings
            .iter()
            .map(|(phase, ms)| format!("{phase} {ms} ms"))
            .collect();
        println!(
            "  {name}: cpu {:.0} ms (this process: backflow and the receiver); extracted {}, added {}, updated {}, delivered {}, failed {}; phases: {}",
            ms(m.cpu),
            m.counts.extracted,
            m.counts.added,
            m.counts.updated,
            m.counts.delivered,
            m.counts.failed,
            phases.join(", ")
        );
    }
    println!();
    match drt {
        Ok((full_drt, again, cursor_first, cursor_again)) => {
            println!(
                "{:<34} {:>10} {:>8} {:>9} {:>9} {:>10} {:>9}",
                "drt 1.2.1 (rest_api, one batch)",
                "time ms",
                "× COPY",
                "",
                "requests",
                "body MiB",
                "peak RSS"
            );
            for (name, run) in [
                ("mode full: full sync", &full_drt),
                ("mode full: nothing changed", &again),
                ("incremental (cursor): first sync", &cursor_first),
                ("incremental (cursor): no change", &cursor_again),
            ] {
                println!(
                    "{:<34} {:>10.1} {:>7.2}× {:>9} {:>9} {:>10.1} {:>6.0} MiB  drt says: {}",
                    name,
                    ms(run.elapsed),
                    ratio(run.elapsed),
                    "",
                    run.requests,
                    run.bytes as f64 / 1048576.0,
                    mib(run.peak_rss_kib),
                    run.summary
                );
            }
            let speedup = full_drt.elapsed.as_secs_f64() / full.elapsed.as_secs_f64();
            println!(
                "backflow speed-up over drt: full sync {speedup:.1}× (target ≥ 10×: {}); nothing changed {:.1}× vs drt mode full, {:.1}× vs drt incremental on a cursor",
                verdict(speedup >= 10.0),
                again.elapsed.as_secs_f64() / unchanged.elapsed.as_secs_f64(),
                cursor_again.elapsed.as_secs_f64() / unchanged.elapsed.as_secs_f64(),
            );
            println!("  (drt times are whole `drt run` processes, Python start-up included; its peak RSS is its own process)");
        }
        Err(why) => println!("drt: not measured: {why}"),
    }
    println!("load average after: {}", load());
    Ok(())
}
