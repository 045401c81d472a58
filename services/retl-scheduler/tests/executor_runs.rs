//! Issue 10 acceptance on real PostgreSQL (warehouse and service database), real NATS
//! (work queue, diff states) and a local HTTP receiver: the mode table (first run,
//! change, delete, re-add, key change, null value, duplicate and null keys) per mode,
//! checked against what the receiver holds; the guards (90% delete, an empty model)
//! stopping for approval, approve and reject; a dry run sending nothing; and an executor
//! dropped mid-run whose run resumes on a new executor without losing a record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::extract::State as AxumState;
use axum::routing::post;
use axum::Json;
use backflow_platform::bus::{streams, Bus};
use backflow_platform::db::Database;
use backflow_platform::lease::LeasePolicy;
use backflow_platform::outbox::Outbox;
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_proto::retl::v1::{
    DiffStrategy, RecordChange, RunPhase, RunStatus, RunTrigger, SyncMode,
};
use backflow_retl_scheduler::app::MIGRATIONS;
use backflow_retl_scheduler::destination_config::DestinationRecord;
use backflow_retl_scheduler::destination_config::NoSecrets;
use backflow_retl_scheduler::destinations::test_support::webhook::WebhookReceiver;
use backflow_retl_scheduler::destinations::test_support::Fault;
use backflow_retl_scheduler::destinations::{
    BatchResult, Capabilities, Destination, DestinationError, DestinationKind, Operation,
    OutboundBatch, RecordOutcome, RecordResult,
};
use backflow_retl_scheduler::executor::error::ExecError;
use backflow_retl_scheduler::executor::pipeline::{RunContext, RunSettings};
use backflow_retl_scheduler::executor::resolve::{
    writable, DestinationSource, FixedDestination, ModelSource, ResolvedModel, StoreDestinations,
};
use backflow_retl_scheduler::executor::Executor;
use backflow_retl_scheduler::run::{manual_cause, RunCounts, RunRecord};
use backflow_retl_scheduler::schedule::Schedule;
use backflow_retl_scheduler::store::diff_state::{bucket_name, DiffStateStore};
use backflow_retl_scheduler::store::runs::RecordError;
use backflow_retl_scheduler::store::SyncStore;
use backflow_retl_scheduler::sync::{Guards, Mapping, SyncRecord};
use backflow_warehouse::{SecretMaterial, WarehouseKind};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WS: &str = "ws-exec";

/// What the receiver holds per sync: key JSON text → fields.
#[derive(Debug, Default)]
struct Receiver {
    held: Mutex<HashMap<String, BTreeMap<String, Value>>>,
    requests: AtomicU64,
    records: AtomicU64,
    /// Milliseconds each request waits before answering.
    delay_ms: AtomicU64,
    /// Key texts (`{"id":5}`) whose deletes are refused, like a record whose plan is
    /// `refused`.
    refused_deletes: Mutex<HashSet<String>>,
}

async fn receive(
    AxumState(receiver): AxumState<Arc<Receiver>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let delay = receiver.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    receiver.requests.fetch_add(1, Ordering::Relaxed);
    let sync = body["sync_id"].as_str().unwrap_or_default().to_string();
    let operation = body["operation"].as_str().unwrap_or_default().to_string();
    let mut results = Vec::new();
    let refused_deletes = receiver.refused_deletes.lock().unwrap().clone();
    let mut held = receiver.held.lock().unwrap();
    let entry = held.entry(sync).or_default();
    for record in body["records"].as_array().cloned().unwrap_or_default() {
        receiver.records.fetch_add(1, Ordering::Relaxed);
        let key = record["key"].to_string();
        let fields = record["fields"].clone();
        let ok = fields["plan"] != json!("refused")
            && !(operation == "delete" && refused_deletes.contains(&key));
        if ok {
            match operation.as_str() {
                "upsert" => {
                    entry.insert(key, fields);
                }
                "insert" => {
                    entry.entry(key).or_insert(fields);
                }
                "update" => {
                    if let Some(held) = entry.get_mut(&key) {
                        *held = fields;
                    }
                }
                "delete" => {
                    entry.remove(&key);
                }
                _ => {}
            }
        }
        results.push(json!({"key_hash": record["key_hash"], "ok": ok}));
    }
    Json(json!({ "results": results }))
}

/// POSTs each batch as JSON to the receiver; per-record results from its answer.
#[derive(Debug)]
struct HttpDestination {
    url: String,
    client: reqwest::Client,
    batch: usize,
}

#[async_trait::async_trait]
impl Destination for HttpDestination {
    fn kind(&self) -> DestinationKind {
        DestinationKind::Webhook
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch_records: self.batch,
            max_concurrency: 2,
            deletes: true,
            idempotent: true,
            default_rate_per_second: 1000.0,
        }
    }
    fn rate_limit_key(&self) -> String {
        self.url.clone()
    }
    async fn test(&self) -> Result<(), DestinationError> {
        Ok(())
    }
    async fn send(&self, batch: &OutboundBatch) -> Result<BatchResult, DestinationError> {
        let operation = match batch.operation {
            Operation::Upsert => "upsert",
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
        };
        let body = json!({
            "sync_id": batch.sync_id,
            "operation": operation,
            "idempotency_key": batch.idempotency_key,
            "records": batch.records.iter().map(|r| json!({
                "key_hash": r.key_hash.to_string(), "key": r.key, "fields": r.fields
            })).collect::<Vec<_>>(),
        });
        let answer: Value = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| DestinationError::Transient {
                message: e.to_string(),
                status: 0,
                retry_after: None,
            })?
            .json()
            .await
            .map_err(|e| DestinationError::Transient {
                message: e.to_string(),
                status: 0,
                retry_after: None,
            })?;
        let results = answer["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| RecordResult {
                key_hash: r["key_hash"].as_str().unwrap_or("0").parse().unwrap_or(0),
                outcome: if r["ok"] == json!(true) {
                    RecordOutcome::Delivered
                } else {
                    RecordOutcome::Failed {
                        message: "plan refused by the receiver".into(),
                        status: 422,
                    }
                },
            })
            .collect();
        Ok(BatchResult {
            results,
            requests: 1,
        })
    }
}

/// Every sync reads table `<sync name>` of the test warehouse.
#[derive(Debug)]
struct Tables {
    database: String,
}

#[async_trait::async_trait]
impl ModelSource for Tables {
    async fn resolve(&self, _: &str, retl_model_id: &str) -> Result<ResolvedModel, ExecError> {
        let settings = [
            ("host".to_string(), "127.0.0.1".to_string()),
            ("port".to_string(), "5432".to_string()),
            ("database".to_string(), self.database.clone()),
            ("user".to_string(), "postgres".to_string()),
            ("sslmode".to_string(), "disable".to_string()),
        ]
        .into();
        let secret = SecretMaterial("unused".to_string().into());
        let writable = writable(WarehouseKind::Postgres, &settings, &secret, "backflow");
        let connector = backflow_warehouse::connect(WarehouseKind::Postgres, &settings, secret)?;
        Ok(ResolvedModel {
            retl_model_id: retl_model_id.into(),
            sql: format!("select id, email, plan from {retl_model_id}"),
            primary_key: vec!["id".into()],
            columns: vec!["id".into(), "email".into(), "plan".into()],
            connector,
            backflow_schema: "backflow".into(),
            writable,
            // every run of these tests also writes the ledger (backflow.backflow_runs)
            run_ledger: true,
        })
    }
}

struct Harness {
    warehouse: sqlx::PgPool,
    /// What the stored destination `hook` points at.
    hook_url: String,
    store: SyncStore,
    receiver: Arc<Receiver>,
    ctx: RunContext,
    bus: Bus,
    shutdown: Shutdown,
}

impl Harness {
    async fn start(label: &str, batch: usize) -> anyhow::Result<Self> {
        Self::start_with(label, batch, None).await
    }

    /// With the stored destination `hook` (a webhook to `hook_url`, built as a run would)
    /// instead of the local receiver's (which then holds nothing).
    async fn start_with(
        label: &str,
        batch: usize,
        hook_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let warehouse_url = testing::fresh_postgres_url(&format!("{label}_wh")).await?;
        let database = warehouse_url
            .rsplit_once('/')
            .map(|(_, n)| n.to_string())
            .unwrap_or_default();
        let warehouse = sqlx::PgPool::connect(&warehouse_url).await?;
        // the schema a warehouse-side sync keeps its state in
        sqlx::query("CREATE SCHEMA backflow")
            .execute(&warehouse)
            .await?;
        let db = Database::connect(&testing::fresh_postgres_url(label).await?, &MIGRATIONS).await?;
        let bus = Bus::connect(&testing::fresh_nats(label)).await?;
        for spec in [streams::CMD_RETL, streams::EVT_RETL] {
            bus.ensure_stream(&spec).await?;
        }
        let outbox = Outbox::new();
        let shutdown = Shutdown::new();
        {
            let (outbox, db, bus, shutdown) =
                (outbox.clone(), db.clone(), bus.clone(), shutdown.clone());
            tokio::spawn(async move {
                outbox
                    .run_relay_for("retl_scheduler", db, bus, shutdown)
                    .await
            });
        }
        let store = SyncStore::new(db, outbox);
        let receiver = Arc::new(Receiver::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let states = DiffStateStore::open(bus.jetstream(), &bucket_name(&bus)).await?;
        let destinations: Arc<dyn DestinationSource> = match &hook_url {
            Some(_) => Arc::new(StoreDestinations {
                store: store.clone(),
                secrets: Arc::new(NoSecrets),
            }),
            None => Arc::new(FixedDestination(Arc::new(HttpDestination {
                url: url.clone(),
                client: reqwest::Client::new(),
                batch,
            }))),
        };
        let hook_url = hook_url.unwrap_or(url);
        let ctx = RunContext {
            store: store.clone(),
            states,
            models: Arc::new(Tables { database }),
            destinations,
            settings: RunSettings {
                batch_rows: 500,
                progress_every: Duration::from_millis(100),
                checkpoint_every: Duration::from_millis(20),
                ..RunSettings::default()
            },
        };
        Ok(Self {
            warehouse,
            hook_url,
            store,
            receiver,
            ctx,
            bus,
            shutdown,
        })
    }

    /// An executor whose leases outlive any stall under load (renewed every 5 s, lapsing
    /// after 15 s without renewal): a run is never reaped and resumed behind the test's
    /// back, which would change its counts.
    fn executor(&self) -> tokio::task::JoinHandle<()> {
        self.executor_with(Duration::from_secs(15))
    }

    /// An executor whose leases lapse soon after it dies (for the resume tests), still
    /// renewed often enough (every second) not to lapse while it lives.
    fn lapsing_executor(&self) -> tokio::task::JoinHandle<()> {
        self.executor_with(Duration::from_secs(3))
    }

    fn executor_with(&self, lease_ttl: Duration) -> tokio::task::JoinHandle<()> {
        let policy = LeasePolicy::from_ttl(lease_ttl).unwrap();
        let executor = Executor::new(self.ctx.clone(), policy, 4);
        tokio::spawn(executor.run(self.bus.clone(), self.shutdown.clone()))
    }

    async fn sql(&self, statements: &[&str]) -> anyhow::Result<()> {
        for statement in statements {
            sqlx::query(statement).execute(&self.warehouse).await?;
        }
        Ok(())
    }

    /// Sets how many runs in a row a record may fail before it is given up.
    async fn set_max_attempts(&self, sync_id: &str, attempts: i32) -> anyhow::Result<()> {
        let current = self.store.get_sync(WS, sync_id).await?.expect("sync");
        let mut next = current.clone();
        next.max_record_attempts = attempts;
        next.version += 1;
        self.store
            .update_sync(&next, current.version, false)
            .await?;
        Ok(())
    }

    /// Moves the sync to another diff strategy, as `syncs update --diff-strategy` does.
    async fn switch_strategy(&self, sync_id: &str, strategy: DiffStrategy) -> anyhow::Result<()> {
        let current = self.store.get_sync(WS, sync_id).await?.expect("sync");
        let mut next = current.clone();
        next.diff_strategy = strategy;
        next.version += 1;
        self.store
            .update_sync(&next, current.version, false)
            .await?;
        Ok(())
    }

    async fn sync(&self, table: &str, mode: SyncMode) -> anyhow::Result<String> {
        self.sync_with(table, mode, DiffStrategy::Backflow).await
    }

    async fn sync_with(
        &self,
        table: &str,
        mode: SyncMode,
        strategy: DiffStrategy,
    ) -> anyhow::Result<String> {
        let now = backflow_platform::now_unix_ms();
        if self.store.get_destination(WS, "hook").await?.is_none() {
            self.store
                .create_destination(&DestinationRecord {
                    id: "hook".into(),
                    workspace_id: WS.into(),
                    name: "hook".into(),
                    kind: DestinationKind::Webhook,
                    settings: [("url".to_string(), self.hook_url.clone())]
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
        }
        let record = SyncRecord {
            id: format!("{table}-{}", backflow_platform::new_id()),
            workspace_id: WS.into(),
            name: format!("{table} {mode:?} {strategy:?}"),
            retl_model_id: table.into(),
            destination_id: "hook".into(),
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
            diff_strategy: strategy,
            max_record_attempts: 5,
            only_if_model_rebuilt: false,
            state_epoch: 0,
            primary_key: vec!["id".into()],
            version: 1,
        };
        self.store.create_sync(&record).await?;
        Ok(record.id)
    }

    async fn queue(&self, sync_id: &str, dry_run: bool) -> anyhow::Result<String> {
        let mut run = RunRecord::queued(
            WS,
            sync_id,
            RunTrigger::Manual,
            manual_cause(&backflow_platform::new_id()),
            backflow_platform::now_unix_ms(),
        );
        if dry_run {
            run = run.dry_run();
        }
        self.store.queue_manual_run(&run).await?;
        Ok(run.id)
    }

    /// Waits (up to 60 s) until the run is in one of `statuses`.
    async fn wait(&self, run_id: &str, statuses: &[RunStatus]) -> anyhow::Result<RunRecord> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let run = self.store.get_run(WS, run_id).await?;
            if statuses.contains(&run.status) {
                return Ok(run);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("run {run_id} still {:?} ({})", run.status, run.error);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn run(&self, sync_id: &str) -> anyhow::Result<RunRecord> {
        let id = self.queue(sync_id, false).await?;
        let run = self
            .wait(
                &id,
                &[
                    RunStatus::Succeeded,
                    RunStatus::Failed,
                    RunStatus::AwaitingApproval,
                ],
            )
            .await?;
        Ok(run)
    }

    /// What the receiver holds for a sync: id → (email, plan).
    fn held(&self, sync_id: &str) -> BTreeMap<i64, (Value, Value)> {
        let held = self.receiver.held.lock().unwrap();
        held.get(sync_id)
            .map(|records| {
                records
                    .iter()
                    .map(|(key, fields)| {
                        let key: Value = serde_json::from_str(key).unwrap();
                        (
                            key["id"].as_i64().unwrap(),
                            (fields["email"].clone(), fields["plan"].clone()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn preload(&self, sync_id: &str, rows: &BTreeMap<i64, (Value, Value)>) {
        let mut held = self.receiver.held.lock().unwrap();
        let entry = held.entry(sync_id.to_string()).or_default();
        for (id, (email, plan)) in rows {
            entry.insert(
                json!({"id": id}).to_string(),
                json!({"email": email, "plan": plan}),
            );
        }
    }

    async fn rows(
        &self,
        table: &str,
    ) -> anyhow::Result<Vec<(Option<i64>, Option<String>, Option<String>)>> {
        Ok(
            sqlx::query_as(&format!("SELECT id, email, plan FROM {table}"))
                .fetch_all(&self.warehouse)
                .await?,
        )
    }
}

type Held = BTreeMap<i64, (Value, Value)>;

/// What a destination should hold after a run of `mode` over `rows`, given `before`.
fn expected(
    mode: SyncMode,
    before: &Held,
    rows: &[(Option<i64>, Option<String>, Option<String>)],
) -> Held {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for (id, _, _) in rows {
        if let Some(id) = id {
            *counts.entry(*id).or_default() += 1;
        }
    }
    let value = |v: &Option<String>| v.clone().map(Value::String).unwrap_or(Value::Null);
    let valid: Vec<(i64, (Value, Value))> = rows
        .iter()
        .filter_map(|(id, email, plan)| id.map(|id| (id, (value(email), value(plan)))))
        .filter(|(id, _)| counts[id] == 1)
        .collect();
    let mut after = before.clone();
    match mode {
        SyncMode::Upsert => {
            for (id, fields) in valid {
                after.insert(id, fields);
            }
        }
        SyncMode::Insert => {
            for (id, fields) in valid {
                after.entry(id).or_insert(fields);
            }
        }
        SyncMode::Update => {
            for (id, fields) in valid {
                if let Some(held) = after.get_mut(&id) {
                    *held = fields;
                }
            }
        }
        SyncMode::Mirror => {
            after = valid.into_iter().collect();
            for (id, count) in counts {
                if count > 1 {
                    if let Some(kept) = before.get(&id) {
                        after.insert(id, kept.clone());
                    }
                }
            }
        }
        SyncMode::Unspecified => {}
    }
    after
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mode_table_holds_for_every_mode() -> anyhow::Result<()> {
    let h = Harness::start("exec_modes", 2).await?;
    let _executor = h.executor();
    h.sql(&[
        "CREATE TABLE people (id bigint, email text, plan text)",
        "INSERT INTO people VALUES (1, 'a@x', 'free'), (2, 'b@x', 'pro'), (3, 'c@x', 'free')",
    ])
    .await?;
    let modes = [
        SyncMode::Upsert,
        SyncMode::Insert,
        SyncMode::Update,
        SyncMode::Mirror,
    ];
    // every mode on both diff strategies: Backflow-side (NATS object store) and
    // warehouse-side (state table in the warehouse's `backflow` schema, diff in SQL)
    let mut syncs = Vec::new();
    for mode in modes {
        for strategy in [DiffStrategy::Backflow, DiffStrategy::Warehouse] {
            let id = h.sync_with("people", mode, strategy).await?;
            if mode == SyncMode::Update {
                // an update sync updates records the destination already has
                let rows = h.rows("people").await?;
                h.preload(&id, &expected(SyncMode::Upsert, &Held::new(), &rows));
            }
            syncs.push((mode, strategy, id));
        }
    }
    let steps: &[(&str, &[&str])] = &[
        ("first run", &[]),
        ("change", &["UPDATE people SET plan = 'team' WHERE id = 2"]),
        ("delete", &["DELETE FROM people WHERE id = 3"]),
        ("re-add", &["INSERT INTO people VALUES (3, 'c@x', 'free')"]),
        ("key change", &["UPDATE people SET id = 10 WHERE id = 1"]),
        (
            "null value",
            &["UPDATE people SET email = NULL WHERE id = 2"],
        ),
        (
            "duplicate and null keys",
            &["INSERT INTO people VALUES (2, 'dup@x', 'pro'), (NULL, 'n@x', 'free')"],
        ),
        (
            "duplicate resolved",
            &[
                "DELETE FROM people WHERE email = 'dup@x' OR id IS NULL",
                "UPDATE people SET plan = 'gold' WHERE id = 2",
            ],
        ),
    ];
    for (step, statements) in steps {
        h.sql(statements).await?;
        let rows = h.rows("people").await?;
        let mut counts_by_mode = HashMap::new();
        for (mode, strategy, sync_id) in &syncs {
            let before = h.held(sync_id);
            let run = h.run(sync_id).await?;
            assert_eq!(
                run.status,
                RunStatus::Succeeded,
                "{step} {mode:?} {strategy:?}: {}",
                run.error
            );
            // a resumed run would have other counts (its first attempt may have committed)
            assert_eq!(run.exec.resumed, 0, "{step} {mode:?} {strategy:?}");
            assert_eq!(
                h.held(sync_id),
                expected(*mode, &before, &rows),
                "{step} {mode:?} {strategy:?}"
            );
            // both strategies find the same changes
            let mut counts = run.exec.counts;
            counts.requests = 0;
            let first = counts_by_mode.entry(*mode).or_insert(counts);
            assert_eq!(*first, counts, "{step} {mode:?} {strategy:?}");
            if *step == "duplicate and null keys" {
                assert_eq!(
                    run.exec.counts.rejected, 2,
                    "{mode:?}: duplicated id 2 and the null key"
                );
                let errors = h.store.list_record_errors(WS, &run.id, 100).await?;
                assert!(
                    errors
                        .iter()
                        .any(|e| e.rejected && e.message.contains("\"id\" is null")),
                    "{errors:?}"
                );
                let duplicates: Vec<_> = errors
                    .iter()
                    .filter(|e| e.message.contains("more than once"))
                    .collect();
                assert_eq!(duplicates.len(), 1, "{mode:?} {errors:?}");
                assert_eq!(duplicates[0].key_json, "{\"id\":2}");
            }
        }
    }
    // nothing changed: nothing sent
    let requests = h.receiver.requests.load(Ordering::Relaxed);
    for (_, _, sync_id) in &syncs {
        let run = h.run(sync_id).await?;
        assert_eq!(
            (run.exec.counts.delivered, run.exec.counts.requests),
            (0, 0)
        );
    }
    assert_eq!(h.receiver.requests.load(Ordering::Relaxed), requests);
    // the warehouse-side syncs kept their state in the warehouse, one table each
    let (states,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM backflow.backflow_syncs WHERE version >= 9 AND state_epoch = 1",
    )
    .fetch_one(&h.warehouse)
    .await?;
    assert_eq!(states, 4);
    h.shutdown.cancel();
    Ok(())
}

/// Columns of `backflow.backflow_runs` the ledger test reads.
type RunLedgerRow = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
);

/// A row of `backflow.backflow_run_records`.
type LedgerRow = (String, String, String, i32, String, i32);

fn ledger_row(
    key: &str,
    change: &str,
    outcome: &str,
    status: i32,
    message: &str,
    attempts: i32,
) -> LedgerRow {
    (
        key.into(),
        change.into(),
        outcome.into(),
        status,
        message.into(),
        attempts,
    )
}

/// A sync's diff strategy changes back and forth: each first run under a strategy starts
/// from an empty state (the other strategy's state is never trusted again, so a change made
/// while the other strategy ran is not missed), later runs diff normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_strategy_change_starts_from_an_empty_state_once() -> anyhow::Result<()> {
    let h = Harness::start("exec_strategy", 50).await?;
    let _executor = h.executor();
    h.sql(&[
        "CREATE TABLE switching (id bigint, email text, plan text)",
        "INSERT INTO switching SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, 20) g",
    ])
    .await?;
    let sync_id = h
        .sync_with("switching", SyncMode::Upsert, DiffStrategy::Backflow)
        .await?;
    let counts = |run: &RunRecord| {
        assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
        (
            run.exec.counts.added,
            run.exec.counts.updated,
            run.exec.counts.delivered,
        )
    };
    assert_eq!(counts(&h.run(&sync_id).await?), (20, 0, 20));
    assert_eq!(counts(&h.run(&sync_id).await?), (0, 0, 0));

    // to the warehouse: no state there yet, every row again
    h.sql(&["UPDATE switching SET plan = 'pro' WHERE id = 1"])
        .await?;
    h.switch_strategy(&sync_id, DiffStrategy::Warehouse).await?;
    assert_eq!(counts(&h.run(&sync_id).await?), (20, 0, 20));
    h.sql(&["UPDATE switching SET plan = 'team' WHERE id = 2"])
        .await?;
    assert_eq!(counts(&h.run(&sync_id).await?), (0, 1, 1));

    // back: row 1 is as the old backflow-side state says, but the destination holds
    // 'pro'; that state is void, so every row is sent again
    h.sql(&["UPDATE switching SET plan = 'free' WHERE id = 1"])
        .await?;
    h.switch_strategy(&sync_id, DiffStrategy::Backflow).await?;
    assert_eq!(counts(&h.run(&sync_id).await?), (20, 0, 20));
    assert_eq!(h.held(&sync_id)[&1].1, json!("free"));
    assert_eq!(counts(&h.run(&sync_id).await?), (0, 0, 0));

    // and the warehouse state of before is void too
    h.switch_strategy(&sync_id, DiffStrategy::Warehouse).await?;
    assert_eq!(counts(&h.run(&sync_id).await?), (20, 0, 20));
    assert_eq!(counts(&h.run(&sync_id).await?), (0, 0, 0));
    let rows = h.rows("switching").await?;
    assert_eq!(
        h.held(&sync_id),
        expected(SyncMode::Upsert, &Held::new(), &rows)
    );
    // one new epoch per first commit under a strategy
    let sync = h.store.get_sync(WS, &sync_id).await?.expect("sync");
    assert_eq!(sync.state_epoch, 4);
    h.shutdown.cancel();
    Ok(())
}

/// A mirror sync whose diff strategy changes still deletes the records whose rows left
/// the model since the last run under the old strategy, in both directions (the first
/// run under the new strategy reads what the old state says was delivered); a dry run
/// counts them; after a reset nothing is carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_sync_deletes_rows_that_left_across_a_strategy_change() -> anyhow::Result<()> {
    let h = Harness::start("exec_strategy_mirror", 50).await?;
    let _executor = h.executor();
    h.sql(&[
        // a primary key: a first run may deliver while it extracts, unless it carries keys
        "CREATE TABLE leaving (id bigint PRIMARY KEY, email text, plan text)",
        "INSERT INTO leaving SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, 10) g",
    ])
    .await?;
    let sync_id = h
        .sync_with("leaving", SyncMode::Mirror, DiffStrategy::Backflow)
        .await?;
    let counts = |run: &RunRecord| {
        assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
        (
            run.exec.counts.added,
            run.exec.counts.deleted,
            run.exec.counts.delivered,
            run.exec.counts.failed,
        )
    };
    let held_ids = |sync_id: &str| h.held(sync_id).keys().copied().collect::<Vec<i64>>();
    assert_eq!(counts(&h.run(&sync_id).await?), (10, 0, 10, 0));
    assert_eq!(held_ids(&sync_id), (1..=10).collect::<Vec<_>>());
    // ids 9 and 10 leave while the sync moves to the warehouse-side strategy
    h.sql(&["DELETE FROM leaving WHERE id >= 9"]).await?;
    h.switch_strategy(&sync_id, DiffStrategy::Warehouse).await?;
    let dry = h.queue(&sync_id, true).await?;
    let dry = h
        .wait(&dry, &[RunStatus::Succeeded, RunStatus::Failed])
        .await?;
    assert_eq!(counts(&dry), (8, 2, 0, 0));
    let mut deleted: Vec<&str> = dry
        .exec
        .samples
        .iter()
        .filter(|s| s.change == RecordChange::Deleted as i32)
        .map(|s| s.key_json.as_str())
        .collect();
    deleted.sort_unstable();
    assert_eq!(deleted, vec!["{\"id\":10}", "{\"id\":9}"]);
    assert_eq!(counts(&h.run(&sync_id).await?), (8, 2, 10, 0));
    assert_eq!(held_ids(&sync_id), (1..=8).collect::<Vec<_>>());
    assert_eq!(counts(&h.run(&sync_id).await?), (0, 0, 0, 0));
    // and back: id 8 leaves while the sync moves to the backflow-side strategy
    h.sql(&["DELETE FROM leaving WHERE id = 8"]).await?;
    h.switch_strategy(&sync_id, DiffStrategy::Backflow).await?;
    assert_eq!(counts(&h.run(&sync_id).await?), (7, 1, 8, 0));
    assert_eq!(held_ids(&sync_id), (1..=7).collect::<Vec<_>>());
    assert_eq!(counts(&h.run(&sync_id).await?), (0, 0, 0, 0));
    // a reset forgets what was delivered: nothing is carried into the next run
    h.sql(&["DELETE FROM leaving WHERE id = 7"]).await?;
    h.store.bump_state_epoch(WS, &sync_id).await?;
    h.store.forget_sync_state(&sync_id).await?;
    h.switch_strategy(&sync_id, DiffStrategy::Warehouse).await?;
    assert_eq!(counts(&h.run(&sync_id).await?), (6, 0, 6, 0));
    assert_eq!(held_ids(&sync_id), (1..=7).collect::<Vec<_>>());
    h.shutdown.cancel();
    Ok(())
}

/// A delete carried across a diff strategy change that the destination refuses is not
/// lost with the old strategy's state: the next runs try it again (counting its attempts)
/// until it goes through, is given up, or its row comes back to the model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_carried_delete_is_retried_by_the_next_runs() -> anyhow::Result<()> {
    let h = Harness::start("exec_strategy_owed", 50).await?;
    let _executor = h.executor();
    h.sql(&[
        "CREATE TABLE owed (id bigint PRIMARY KEY, email text, plan text)",
        "INSERT INTO owed SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, 5) g",
    ])
    .await?;
    let sync_id = h
        .sync_with("owed", SyncMode::Mirror, DiffStrategy::Backflow)
        .await?;
    let run = |expected: RunCounts| {
        let h = &h;
        let sync_id = sync_id.clone();
        async move {
            let run = h.run(&sync_id).await?;
            assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
            let mut counts = run.exec.counts;
            counts.requests = 0;
            assert_eq!(counts, expected);
            anyhow::Ok(h.store.list_record_errors(WS, &run.id, 100).await?)
        }
    };
    let counts = |extracted, added, deleted, delivered, failed, given_up| RunCounts {
        extracted,
        added,
        deleted,
        delivered,
        failed,
        given_up,
        ..RunCounts::default()
    };
    let refused = |id: i64, attempts: i32, given_up: bool| RecordError {
        change: RecordChange::Deleted,
        key_json: format!("{{\"id\":{id}}}"),
        rejected: false,
        message: "plan refused by the receiver".into(),
        destination_status: 422,
        attempts,
        given_up,
    };
    let refuse = |ids: &[i64]| {
        *h.receiver.refused_deletes.lock().unwrap() =
            ids.iter().map(|id| format!("{{\"id\":{id}}}")).collect();
    };
    let held_ids = || h.held(&sync_id).keys().copied().collect::<Vec<i64>>();
    assert_eq!(run(counts(5, 5, 0, 5, 0, 0)).await?, vec![]);

    // id 5 leaves while the sync moves to the warehouse-side strategy; its delete is refused
    h.sql(&["DELETE FROM owed WHERE id = 5"]).await?;
    h.switch_strategy(&sync_id, DiffStrategy::Warehouse).await?;
    refuse(&[5]);
    assert_eq!(
        run(counts(4, 4, 1, 4, 1, 0)).await?,
        vec![refused(5, 1, false)]
    );
    assert_eq!(held_ids(), vec![1, 2, 3, 4, 5]);
    // the next run tries it again, and the destination takes it
    refuse(&[]);
    assert_eq!(run(counts(4, 0, 1, 1, 0, 0)).await?, vec![]);
    assert_eq!(held_ids(), vec![1, 2, 3, 4]);
    assert_eq!(run(counts(4, 0, 0, 0, 0, 0)).await?, vec![]);

    // and back: ids 3 and 4 leave while the sync moves to the backflow-side strategy,
    // both deletes refused; a record gets two runs
    h.set_max_attempts(&sync_id, 2).await?;
    h.sql(&["DELETE FROM owed WHERE id >= 3"]).await?;
    h.switch_strategy(&sync_id, DiffStrategy::Backflow).await?;
    refuse(&[3, 4]);
    let mut errors = run(counts(2, 2, 2, 2, 2, 0)).await?;
    errors.sort_by(|a, b| a.key_json.cmp(&b.key_json));
    assert_eq!(errors, vec![refused(3, 1, false), refused(4, 1, false)]);
    assert_eq!(held_ids(), vec![1, 2, 3, 4]);
    // id 3 comes back: sent again, and no longer deleted; id 4 fails its second run
    h.sql(&["INSERT INTO owed VALUES (3, 'u3@x', 'pro')"])
        .await?;
    assert_eq!(
        run(counts(3, 1, 1, 1, 1, 1)).await?,
        vec![refused(4, 2, true)]
    );
    assert_eq!(held_ids(), vec![1, 2, 3, 4]);
    assert_eq!(h.held(&sync_id)[&3].1, json!("pro"));
    // given up: not tried again
    refuse(&[]);
    assert_eq!(run(counts(3, 0, 0, 0, 0, 0)).await?, vec![]);
    assert_eq!(held_ids(), vec![1, 2, 3, 4]);
    h.shutdown.cancel();
    Ok(())
}

/// A record carried across a diff strategy change whose row is still in the model but
/// whose upsert the destination refuses stays out of the new state, while the destination
/// still holds its old version: when the row leaves before it got through, it is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carried_record_that_failed_is_deleted_when_its_row_leaves() -> anyhow::Result<()> {
    let h = Harness::start("exec_strategy_held", 50).await?;
    let _executor = h.executor();
    h.sql(&[
        "CREATE TABLE held (id bigint PRIMARY KEY, email text, plan text)",
        "INSERT INTO held SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, 3) g",
    ])
    .await?;
    let sync_id = h
        .sync_with("held", SyncMode::Mirror, DiffStrategy::Backflow)
        .await?;
    let run = |expected: (i64, i64, i64, i64, i64)| {
        let h = &h;
        let sync_id = sync_id.clone();
        async move {
            let run = h.run(&sync_id).await?;
            assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
            let (extracted, added, deleted, delivered, failed) = expected;
            let mut counts = run.exec.counts;
            counts.requests = 0;
            assert_eq!(
                counts,
                RunCounts {
                    extracted,
                    added,
                    deleted,
                    delivered,
                    failed,
                    ..RunCounts::default()
                }
            );
            anyhow::Ok(h.store.list_record_errors(WS, &run.id, 100).await?)
        }
    };
    let held_ids = || h.held(&sync_id).keys().copied().collect::<Vec<i64>>();
    assert_eq!(run((3, 3, 0, 3, 0)).await?, vec![]);
    // the first run under the warehouse-side strategy: id 3 changed, and is refused
    h.sql(&["UPDATE held SET plan = 'refused' WHERE id = 3"])
        .await?;
    h.switch_strategy(&sync_id, DiffStrategy::Warehouse).await?;
    assert_eq!(
        run((3, 3, 0, 2, 1)).await?,
        vec![RecordError {
            change: RecordChange::Added,
            key_json: "{\"id\":3}".into(),
            rejected: false,
            message: "plan refused by the receiver".into(),
            destination_status: 422,
            attempts: 1,
            given_up: false,
        }]
    );
    assert_eq!(h.held(&sync_id)[&3].1, json!("free"));
    // its row leaves: the destination's old version is deleted
    h.sql(&["DELETE FROM held WHERE id = 3"]).await?;
    assert_eq!(run((2, 0, 1, 1, 0)).await?, vec![]);
    assert_eq!(held_ids(), vec![1, 2]);
    assert_eq!(run((2, 0, 0, 0, 0)).await?, vec![]);
    h.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_count_the_deletes_carried_across_a_strategy_change() -> anyhow::Result<()> {
    let h = Harness::start("exec_strategy_guard", 50).await?;
    let _executor = h.executor();
    h.sql(&[
        "CREATE TABLE carried (id bigint PRIMARY KEY, email text, plan text)",
        "INSERT INTO carried SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, 10) g",
    ])
    .await?;
    let sync_id = h
        .sync_with("carried", SyncMode::Mirror, DiffStrategy::Backflow)
        .await?;
    let first = h.run(&sync_id).await?;
    assert_eq!(first.status, RunStatus::Succeeded, "{}", first.error);
    assert_eq!(h.held(&sync_id).len(), 10);
    // 9 of the 10 delivered rows leave while the sync moves to the warehouse-side strategy
    h.sql(&["DELETE FROM carried WHERE id > 1"]).await?;
    h.switch_strategy(&sync_id, DiffStrategy::Warehouse).await?;
    let stopped = h.run(&sync_id).await?;
    assert_eq!(
        stopped.status,
        RunStatus::AwaitingApproval,
        "{}",
        stopped.error
    );
    assert_eq!(
        stopped.exec.approval_reason,
        "would delete 9 of 10 records (90%), more than the sync allows (50%)"
    );
    assert_eq!(
        h.held(&sync_id).len(),
        10,
        "nothing was deleted before approval"
    );
    h.store.approve_run(WS, &stopped.id).await?;
    let approved = h
        .wait(&stopped.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await?;
    assert_eq!(approved.status, RunStatus::Succeeded, "{}", approved.error);
    assert_eq!(
        h.held(&sync_id).keys().copied().collect::<Vec<i64>>(),
        vec![1]
    );
    // and back: the model is emptied while the sync moves to the backflow-side strategy
    h.sql(&["DELETE FROM carried"]).await?;
    h.switch_strategy(&sync_id, DiffStrategy::Backflow).await?;
    let empty = h.run(&sync_id).await?;
    assert_eq!(empty.status, RunStatus::AwaitingApproval, "{}", empty.error);
    assert!(
        empty.exec.approval_reason.contains("no rows"),
        "{}",
        empty.exec.approval_reason
    );
    assert_eq!(
        h.held(&sync_id).len(),
        1,
        "nothing was deleted before approval"
    );
    h.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_ledger_in_the_warehouse_holds_each_run_and_record() -> anyhow::Result<()> {
    let h = Harness::start("exec_ledger", 10).await?;
    let _executor = h.executor();
    h.sql(&[
        "CREATE TABLE members (id bigint, email text, plan text)",
        "INSERT INTO members VALUES (1, 'a@x', 'free'), (2, 'b@x', 'refused'), (NULL, 'n@x', 'free')",
    ])
    .await?;
    let sync = h
        .sync_with("members", SyncMode::Upsert, DiffStrategy::Warehouse)
        .await?;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let run = h.run(&sync).await?;
        assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
        runs.push(run);
    }
    let rows: Vec<RunLedgerRow> = sqlx::query_as(
        "SELECT run_id, status, trigger, diff_strategy, extracted, added, delivered, failed, rejected, error \
         FROM backflow.backflow_runs WHERE sync_id = $1 ORDER BY finished_at",
    )
    .bind(&sync)
    .fetch_all(&h.warehouse)
    .await?;
    let run_row = |id: &str, added: i64, delivered: i64| {
        (
            id.to_string(),
            "succeeded".to_string(),
            "manual".to_string(),
            "warehouse".to_string(),
            3,
            added,
            delivered,
            1,
            1,
            String::new(),
        )
    };
    // the second run retries only the refused record
    assert_eq!(
        rows,
        vec![run_row(&runs[0].id, 2, 1), run_row(&runs[1].id, 1, 0)]
    );
    let records = |run_id: String| {
        let warehouse = h.warehouse.clone();
        async move {
            sqlx::query_as::<_, LedgerRow>(
                "SELECT key_json, change, outcome, destination_status, message, attempts \
                 FROM backflow.backflow_run_records WHERE run_id = $1 ORDER BY outcome, key_json",
            )
            .bind(run_id)
            .fetch_all(&warehouse)
            .await
        }
    };
    let refused = "plan refused by the receiver";
    let null_key = "primary key column \"id\" is null";
    assert_eq!(
        records(runs[0].id.clone()).await?,
        vec![
            ledger_row("{\"id\":1}", "added", "delivered", 0, "", 0),
            ledger_row("{\"id\":2}", "added", "failed", 422, refused, 1),
            ledger_row("{\"id\":null}", "none", "rejected", 0, null_key, 0),
        ]
    );
    assert_eq!(
        records(runs[1].id.clone()).await?,
        vec![
            ledger_row("{\"id\":2}", "added", "failed", 422, refused, 2),
            ledger_row("{\"id\":null}", "none", "rejected", 0, null_key, 0),
        ]
    );
    h.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_stop_for_approval_and_dry_runs_send_nothing() -> anyhow::Result<()> {
    let h = Harness::start("exec_guards", 50).await?;
    let _executor = h.executor();
    h.sql(&[
        "CREATE TABLE accounts (id bigint, email text, plan text)",
        "INSERT INTO accounts SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, 10) g",
    ])
    .await?;
    let sync = h.sync("accounts", SyncMode::Mirror).await?;
    assert_eq!(h.run(&sync).await?.status, RunStatus::Succeeded);
    assert_eq!(h.held(&sync).len(), 10);

    // dry run: counts and samples, nothing sent, nothing committed
    h.sql(&[
        "UPDATE accounts SET plan = 'pro' WHERE id <= 2",
        "DELETE FROM accounts WHERE id = 10",
    ])
    .await?;
    let requests = h.receiver.requests.load(Ordering::Relaxed);
    let dry = h.queue(&sync, true).await?;
    let dry = h
        .wait(&dry, &[RunStatus::Succeeded, RunStatus::Failed])
        .await?;
    assert_eq!(dry.status, RunStatus::Succeeded, "{}", dry.error);
    assert!(dry.exec.dry_run);
    assert_eq!(
        (
            dry.exec.counts.updated,
            dry.exec.counts.deleted,
            dry.exec.counts.delivered
        ),
        (2, 1, 0)
    );
    assert_eq!(dry.exec.samples.len(), 3, "{:?}", dry.exec.samples);
    assert!(
        dry.exec.samples.iter().any(|s| s.key_json == "{\"id\":10}"),
        "{:?}",
        dry.exec.samples
    );
    assert_eq!(h.receiver.requests.load(Ordering::Relaxed), requests);
    let real = h.run(&sync).await?;
    assert_eq!(
        (real.exec.counts.updated, real.exec.counts.deleted),
        (2, 1),
        "the dry run committed nothing"
    );
    assert_eq!(h.held(&sync).len(), 9);

    // 8 of 9 deleted (89%): stops for approval, nothing sent; approve delivers
    h.sql(&["DELETE FROM accounts WHERE id > 1"]).await?;
    let stopped = h.run(&sync).await?;
    assert_eq!(stopped.status, RunStatus::AwaitingApproval);
    assert_eq!(
        stopped.exec.approval_reason,
        "would delete 8 of 9 records (89%), more than the sync allows (50%)"
    );
    assert_eq!(h.held(&sync).len(), 9);
    h.store.approve_run(WS, &stopped.id).await?;
    let approved = h
        .wait(&stopped.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await?;
    assert_eq!(approved.status, RunStatus::Succeeded, "{}", approved.error);
    assert_eq!(h.held(&sync).len(), 1);

    // an empty model stops too; rejecting it ends the run and changes nothing
    h.sql(&["DELETE FROM accounts"]).await?;
    let empty = h.run(&sync).await?;
    assert_eq!(empty.status, RunStatus::AwaitingApproval);
    assert!(
        empty.exec.approval_reason.contains("no rows"),
        "{}",
        empty.exec.approval_reason
    );
    let rejected = h.store.reject_run(WS, &empty.id).await?;
    assert_eq!(rejected.status, RunStatus::Rejected);
    assert_eq!(h.held(&sync).len(), 1);
    // the state was not committed: the next run stops again
    assert_eq!(h.run(&sync).await?.status, RunStatus::AwaitingApproval);
    h.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_executor_died_resumes_without_losing_records() -> anyhow::Result<()> {
    resumes_without_losing_records(DiffStrategy::Backflow, "exec_resume", false).await
}

/// The same over a primary key, so the first run delivers while it extracts (the key is
/// proven unique): the resumed run also starts from an empty state and streams again,
/// skipping what the checkpoint says was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_delivering_while_it_extracts_resumes_without_losing_records() -> anyhow::Result<()> {
    resumes_without_losing_records(DiffStrategy::Backflow, "exec_resume_pk", true).await
}

/// The same with the state in the warehouse: the resumed run diffs again in SQL (the
/// interrupted attempt committed nothing) and skips what its checkpoint says was acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warehouse_side_run_whose_executor_died_resumes_without_losing_records(
) -> anyhow::Result<()> {
    resumes_without_losing_records(DiffStrategy::Warehouse, "exec_resume_wh", false).await
}

async fn resumes_without_losing_records(
    strategy: DiffStrategy,
    label: &str,
    primary_key: bool,
) -> anyhow::Result<()> {
    let h = Harness::start(label, 100).await?;
    h.sql(&[
        if primary_key {
            "CREATE TABLE events (id bigint primary key, email text, plan text)"
        } else {
            "CREATE TABLE events (id bigint, email text, plan text)"
        },
        "INSERT INTO events SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, 6000) g",
    ])
    .await?;
    let sync = h.sync_with("events", SyncMode::Upsert, strategy).await?;
    h.receiver.delay_ms.store(20, Ordering::Relaxed);
    let first = h.lapsing_executor();
    let run_id = h.queue(&sync, false).await?;
    // kill the executor once a good part was acknowledged
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while h.receiver.records.load(Ordering::Relaxed) < 2000 {
        assert!(tokio::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.abort();
    let _ = first.await;
    let sent_before = h.receiver.records.load(Ordering::Relaxed);
    assert_eq!(
        h.store.get_run(WS, &run_id).await?.status,
        RunStatus::Running
    );
    // a new executor reaps the lapsed lease and resumes the run
    h.receiver.delay_ms.store(0, Ordering::Relaxed);
    let _second = h.lapsing_executor();
    let run = h
        .wait(&run_id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await?;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
    assert_eq!(run.exec.resumed, 1);
    assert_eq!(h.held(&sync).len(), 6000, "every row arrived");
    let total = h.receiver.records.load(Ordering::Relaxed);
    let resent = total - 6000;
    eprintln!("sent before the kill {sent_before}, total {total}, resent {resent}");
    assert!(
        resent < 1000,
        "resent {resent} of {sent_before} already sent"
    );
    // the resumed run committed everything: nothing to send next time
    let _ = h.receiver.records.load(Ordering::Relaxed);
    let again = h.run(&sync).await?;
    assert_eq!(again.exec.counts.requests, 0);
    h.shutdown.cancel();
    Ok(())
}

/// A first run over a key the warehouse proves unique (a primary key) delivers while it
/// extracts; a first run over a model that may repeat keys (a union over the same table)
/// waits for the end of the extract and never sends a duplicated key, not even once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_proven_unique_key_delivers_while_extracting() -> anyhow::Result<()> {
    let h = Harness::start("exec_stream", 50).await?;
    let _executor = h.executor();
    h.sql(&[
        "CREATE TABLE uniq (id bigint primary key, email text, plan text)",
        "INSERT INTO uniq SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, 2000) g",
        "INSERT INTO uniq VALUES (2001, 'r@x', NULL)",
        "CREATE VIEW dups AS SELECT * FROM uniq UNION ALL SELECT * FROM uniq WHERE id <= 5",
    ])
    .await?;
    h.receiver.delay_ms.store(25, Ordering::Relaxed);
    for (table, streams) in [("uniq", true), ("dups", false)] {
        let sync = h.sync(table, SyncMode::Upsert).await?;
        let run_id = h.queue(&sync, false).await?;
        // the first progress saved with a delivered record tells the phase it came in
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let run = loop {
            let run = h.store.get_run(WS, &run_id).await?;
            if run.exec.counts.delivered > 0 {
                break run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{table}: nothing delivered"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let expected_phase = if streams {
            RunPhase::Extracting
        } else {
            RunPhase::Delivering
        };
        assert_eq!(run.exec.phase, expected_phase, "{table}");
        let run = h
            .wait(&run_id, &[RunStatus::Succeeded, RunStatus::Failed])
            .await?;
        assert_eq!(run.status, RunStatus::Succeeded, "{table}: {}", run.error);
        let held = h.held(&sync);
        let duplicated = if streams { 0 } else { 5 };
        assert_eq!(held.len(), 2001 - duplicated, "{table}");
        assert_eq!(
            run.exec.counts.delivered,
            2001 - duplicated as i64,
            "{table}"
        );
        assert_eq!(run.exec.counts.rejected, duplicated as i64, "{table}");
        for id in 1..=5 {
            assert_eq!(held.contains_key(&id), streams, "{table}: id {id}");
        }
        assert_eq!(held[&2001], (json!("r@x"), Value::Null), "{table}");
        let errors = h.store.list_record_errors(WS, &run.id, 100).await?;
        assert_eq!(errors.len(), duplicated, "{table}: {errors:?}");
        // the state holds what was delivered: nothing to send next time
        let again = h.run(&sync).await?;
        assert_eq!(again.exec.counts.requests, 0, "{table}");
    }
    h.shutdown.cancel();
    Ok(())
}

/// The webhook destination `hook` at `url` sending one batch of 50 at a time, and a
/// 300-row `leads` table in the warehouse.
async fn one_batch_hook_over_leads(h: &Harness, url: &str) -> anyhow::Result<()> {
    h.store
        .create_destination(&DestinationRecord {
            id: "hook".into(),
            workspace_id: WS.into(),
            name: "hook".into(),
            kind: DestinationKind::Webhook,
            settings: [
                ("url".to_string(), url.to_string()),
                ("batch_size".to_string(), "50".to_string()),
                ("max_concurrency".to_string(), "1".to_string()),
            ]
            .into_iter()
            .collect(),
            credential_id: String::new(),
            rate_limit_per_second: 0.0,
            created_at_ms: 0,
            updated_at_ms: 0,
            version: 1,
            last_test: None,
        })
        .await?;
    h.sql(&[
        "CREATE TABLE leads (id bigint, email text, plan text)",
        "INSERT INTO leads SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, 300) g",
    ])
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_faults_lose_nothing_and_refused_records_are_retried_then_given_up(
) -> anyhow::Result<()> {
    // the destination as stored (settings on the row) and built at run start
    let receiver = WebhookReceiver::start(None).await;
    let h = Harness::start_with("exec_webhook", 50, Some(receiver.url())).await?;
    // one batch of 50 at a time: what the receiver does meets the first batch, and no other
    // batch is out
    one_batch_hook_over_leads(&h, &receiver.url()).await?;
    let _executor = h.executor();
    let sync = h.sync("leads", SyncMode::Upsert).await?;
    // 500 then 200, 429 with Retry-After, a connection dropped before and after applying
    for fault in [
        Fault::Status(500),
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        Fault::DropConnection,
        Fault::DropAfterApply,
    ] {
        receiver.push_fault(fault);
    }
    // (a record refused in a batch whose answer was lost would count as delivered: the
    // receiver drops the resend as a duplicate and answers 200, as the spec asks)
    receiver.refuse("299", "email bounced");
    let run = h.run(&sync).await?;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
    let holds = receiver.holds();
    assert_eq!(holds.records.len(), 299, "every row but the refused one");
    assert!(!holds.records.contains_key("299"));
    assert_eq!(
        holds.duplicates, 1,
        "the batch whose answer was lost was resent with its webhook-id"
    );
    assert_eq!(receiver.unauthorized(), 0);
    assert_eq!(
        (run.exec.counts.delivered, run.exec.counts.failed),
        (299, 1)
    );
    assert!(run.exec.counts.requests >= 6 + 4, "{:?}", run.exec.counts);
    let errors = h.store.list_record_errors(WS, &run.id, 10).await?;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].key_json, "{\"id\":299}");
    assert!(errors[0].message.contains("email bounced"), "{errors:?}");
    assert_eq!((errors[0].attempts, errors[0].given_up), (1, false));
    // retried every run (with fresh values) until the attempt limit, then given up
    for attempt in 2..=5 {
        let run = h.run(&sync).await?;
        assert_eq!(
            (run.exec.counts.delivered, run.exec.counts.failed),
            (0, 1),
            "attempt {attempt}"
        );
        let errors = h.store.list_record_errors(WS, &run.id, 10).await?;
        assert_eq!(errors[0].attempts, attempt);
        assert_eq!(errors[0].given_up, attempt == 5);
        assert_eq!(run.exec.counts.given_up, i64::from(attempt == 5));
    }
    let after = h.run(&sync).await?;
    assert_eq!(
        after.exec.counts.requests, 0,
        "a given-up record is not sent again"
    );
    // until its values change
    h.sql(&["UPDATE leads SET plan = 'pro' WHERE id = 299"])
        .await?;
    let changed = h.run(&sync).await?;
    assert_eq!(
        (changed.exec.counts.updated, changed.exec.counts.failed),
        (1, 1)
    );
    h.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_endpoint_gone_stops_the_run_and_pauses_its_syncs_until_resumed(
) -> anyhow::Result<()> {
    let receiver = WebhookReceiver::start(None).await;
    let h = Harness::start_with("exec_gone", 50, Some(receiver.url())).await?;
    // one batch of 50 at a time: what the receiver does meets the first batch, and no other
    // batch is out
    one_batch_hook_over_leads(&h, &receiver.url()).await?;
    let _executor = h.executor();
    let sync = h.sync("leads", SyncMode::Upsert).await?;
    let other = h.sync("leads", SyncMode::Mirror).await?;
    let endpoint = receiver
        .url()
        .trim_start_matches("http://")
        .trim_end_matches("/hook")
        .to_string();
    receiver.set_gone(true);

    let run = h.run(&sync).await?;
    let mut paused = [sync.clone(), other.clone()];
    paused.sort();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.error,
        format!(
            "destination hook answered 410 gone at {endpoint} (endpoint disabled by its owner): \
             the run stopped sending and committed nothing; paused its syncs {} until they are \
             resumed (backflow syncs resume)",
            paused.join(", ")
        )
    );
    assert_eq!(
        receiver.holds().requests,
        1,
        "one batch of the six was sent"
    );
    assert!(receiver.holds().records.is_empty());
    let counts = &run.exec.counts;
    assert_eq!(
        (
            counts.delivered,
            counts.failed,
            counts.given_up,
            counts.requests
        ),
        (0, 50, 0, 1),
        "{counts:?}"
    );
    let reason = backflow_retl_scheduler::executor::endpoint_gone::pause_reason(
        "hook",
        &endpoint,
        &run.id,
        "endpoint disabled by its owner",
    );
    for id in [&sync, &other] {
        let record = h.store.get_sync(WS, id).await?.expect("sync");
        assert_eq!(
            (record.paused, record.paused_reason.as_str()),
            (true, reason.as_str()),
            "{id}"
        );
    }
    // no manual run either, and the refusal says why
    let refused = h.queue(&sync, false).await.expect_err("a paused sync");
    assert!(refused.to_string().contains(&reason), "{refused}");

    // resumed once the endpoint is back: everything is delivered, nothing was given up
    assert!(h.store.set_paused(WS, &sync, false).await?);
    let resumed = h.store.get_sync(WS, &sync).await?.expect("sync");
    assert_eq!(
        (resumed.paused, resumed.paused_reason.as_str()),
        (false, "")
    );
    receiver.set_gone(false);
    let run = h.run(&sync).await?;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
    assert_eq!(
        (
            run.exec.counts.delivered,
            run.exec.counts.failed,
            run.exec.counts.given_up
        ),
        (300, 0, 0)
    );
    assert_eq!(receiver.holds().records.len(), 300);
    assert_eq!(receiver.holds().requests, 1 + 6);
    // the other sync stays paused until it is resumed itself
    let still = h.store.get_sync(WS, &other).await?.expect("sync");
    assert_eq!(
        (still.paused, still.paused_reason.as_str()),
        (true, reason.as_str())
    );
    h.shutdown.cancel();
    Ok(())
}
