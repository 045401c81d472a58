//! Issue 10, acceptance 2, for every destination kind: a table of (destination × fault)
//! runs through a real executor process (this binary as `executor_child`, so one fault
//! is a SIGKILL mid-run and a restart) against each kind's local stand-in, reached through
//! a TCP proxy that can cut a request mid-body. After each fault the run succeeds, the
//! destination holds exactly the model's rows (mirror, or upsert for Segment, which has
//! no delete), per-record refusals carry the destination's own message, and a change is
//! applied twice only where the destination cannot recognise a resend (HubSpot batch
//! upserts and PostgreSQL upserts converge instead; the webhook's `webhook-id` and
//! Segment's `messageId` drop resends; Salesforce jobs are never resent once closed).
//!
//! PostgreSQL has no statuses: its 500 and 429 are the SQLSTATEs that say "try again"
//! (40001 serialization failure, 53300 too many connections), raised by a trigger.
//! Salesforce also meets its mid-job faults: a job ending `Failed` part way, an aborted
//! job, the upload cut, polls answering 503, the answer to `UploadComplete` lost, and the
//! executor killed while a job is open (created, not closed) or closed but not yet read
//! back.
//!
//! Retries use a short schedule (RunSettings::retry); waits are deadlines, not sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use backflow_platform::bus::Bus;
use backflow_platform::lease::LeasePolicy;
use backflow_platform::shutdown::Shutdown;
use backflow_platform::testing;
use backflow_platform::testing::cut_proxy::CutProxy;
use backflow_proto::retl::v1::{DiffStrategy, RunStatus, RunTrigger, SyncMode};
use backflow_retl_scheduler::destination_config::{DestinationRecord, SecretResolver};
use backflow_retl_scheduler::destinations::test_support::hubspot::Step as HubspotStep;
use backflow_retl_scheduler::destinations::test_support::hubspot::{self, HubspotStandIn};
use backflow_retl_scheduler::destinations::test_support::salesforce::{
    self, JobEnd, SalesforceStandIn, Step,
};
use backflow_retl_scheduler::destinations::test_support::segment::{self, Flavor, SegmentStandIn};
use backflow_retl_scheduler::destinations::test_support::webhook::WebhookReceiver;
use backflow_retl_scheduler::destinations::test_support::Fault;
use backflow_retl_scheduler::destinations::{DestinationKind, RetrySchedule};
use backflow_retl_scheduler::error::RetlError;
use backflow_retl_scheduler::executor::pipeline::{RunContext, RunSettings};
use backflow_retl_scheduler::executor::Executor;
use backflow_retl_scheduler::run::{manual_cause, RunRecord};
use backflow_retl_scheduler::schedule::Schedule;
use backflow_retl_scheduler::store::runs::RecordError;
use backflow_retl_scheduler::store::SyncStore;
use backflow_retl_scheduler::sync::{Guards, Mapping, SyncRecord};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

mod support;

use support::places::Places;

const WS: &str = "ws-dest-faults";
/// Set (to the child's settings) when this binary runs as the executor child.
const CHILD: &str = "BACKFLOW_DEST_FAULTS_EXECUTOR_CHILD";
const LEASE_MS: u64 = 1200;
/// Records per batch (so every run has several batches).
const BATCH: u64 = 50;
/// Rows of a model, and of one killed mid-run.
const ROWS: u64 = 200;
const KILLED_ROWS: u64 = 1000;

/// A credential id `literal:<secret>` is the secret (the credentials service is another
/// service; the scheduler only sees what it resolves).
#[derive(Debug)]
struct LiteralSecrets;

#[async_trait::async_trait]
impl SecretResolver for LiteralSecrets {
    async fn resolve(
        &self,
        _: &str,
        credential_id: &str,
        _: &str,
    ) -> Result<SecretString, RetlError> {
        credential_id
            .strip_prefix("literal:")
            .map(|s| SecretString::from(s.to_string()))
            .ok_or_else(|| RetlError::FailedPrecondition(format!("no secret {credential_id}")))
    }
}

/// The store, the bus (with the outbox relay) and a run context over `places`, with a
/// short retry schedule.
async fn connect(
    places: &Places,
    shutdown: &Shutdown,
) -> anyhow::Result<(SyncStore, Bus, RunContext)> {
    let settings = RunSettings {
        batch_rows: 500,
        progress_every: Duration::from_millis(100),
        checkpoint_every: Duration::from_millis(50),
        retry: RetrySchedule {
            max_attempts: 5,
            initial: Duration::from_millis(20),
            multiplier: 2.0,
            max_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(5),
        },
        ..RunSettings::default()
    };
    support::places::connect(places, shutdown, Arc::new(LiteralSecrets), settings).await
}

/// The executor child: runs an executor over the places in `$CHILD` until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the executor process the fault tests start"]
async fn executor_child() -> anyhow::Result<()> {
    let Ok(places) = std::env::var(CHILD) else {
        return Ok(());
    };
    let places = Places::from_env(&places);
    let shutdown = Shutdown::new();
    let (_, bus, ctx) = connect(&places, &shutdown).await?;
    let policy = LeasePolicy::from_ttl(Duration::from_millis(LEASE_MS)).unwrap();
    Executor::new(ctx, policy, 4).run(bus, shutdown).await;
    Ok(())
}

/// An executor process of this test's own (this binary, as `executor_child`).
struct ExecutorProcess {
    places: Places,
    child: Option<Child>,
}

impl ExecutorProcess {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Webhook,
    Segment,
    /// The Segment destination against RudderStack's `/v1/batch` (text/plain answers, no
    /// `messageId` deduplication documented: resends are applied again).
    RudderStack,
    Hubspot,
    Salesforce,
    Postgres,
}

/// The faults of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// The first request answers 500 (PostgreSQL: the first row write raises a
    /// serialization failure, 40001), the resend 200.
    ServerErrorThenOk,
    /// The first request is rate limited the kind's documented way: webhook 429 with an
    /// HTTP-date `Retry-After`, Segment 429 `Retry-After` seconds + `X-RateLimit-Reset`,
    /// HubSpot 429 `TEN_SECONDLY_ROLLING` + `Retry-After` (an HTTP-date), Salesforce 403
    /// `REQUEST_LIMIT_EXCEEDED` (no `Retry-After` documented), PostgreSQL 53300 (too many
    /// connections).
    RateLimited,
    /// The proxy reads the start of a request and closes the socket.
    CutMidRequest,
    /// The request is applied, then the connection closes before the answer (Salesforce:
    /// the answer to `UploadComplete`).
    AckLost,
    /// Some records are refused per record; then accepted by the next run.
    RefusedRecords,
    /// The rate limit outlasts the run's retries: every record fails with the
    /// destination's own words (and status); the next run delivers them.
    LimitOutlastsRetries,
    /// SIGKILL of the executor mid-run, then a new executor process.
    KilledMidRun,
    /// Salesforce: the next job ends `Failed` after 20 rows.
    JobFailed,
    /// Salesforce: the next job is aborted after 20 rows.
    JobAborted,
    /// Salesforce: killed while a job is created and uploaded but not closed.
    KilledBeforeClose,
    /// Salesforce: killed after a job was closed, before it was read back.
    KilledAfterClose,
    /// Salesforce: the connection drops while the CSV uploads (the job is aborted and the
    /// batch sent in a new one).
    UploadCut,
    /// Salesforce: polling a closed job answers 503 twice (polled again, never resent).
    PollFails,
    /// Deletes meet faults in their look-up and their delete call: HubSpot batch/read 500
    /// then batch/archive ack lost; Salesforce Id query 500 then the delete job's
    /// `UploadComplete` answer lost.
    DeletesUnderFaults,
}

const GENERIC: &[Case] = &[
    Case::ServerErrorThenOk,
    Case::RateLimited,
    Case::CutMidRequest,
    Case::AckLost,
    Case::RefusedRecords,
    Case::LimitOutlastsRetries,
    Case::KilledMidRun,
];

impl Kind {
    fn cases(self) -> Vec<Case> {
        let skip: &[Case] = match self {
            // an ack lost after COMMIT is the kill case (the transaction either committed
            // or not)
            Kind::Postgres => &[Case::AckLost],
            // Segment accepts with a 200 what it drops (the fixture): no per-record refusal
            Kind::Segment | Kind::RudderStack => &[Case::RefusedRecords],
            _ => &[],
        };
        GENERIC
            .iter()
            .copied()
            .filter(|c| !skip.contains(c))
            .collect()
    }

    fn mode(self) -> SyncMode {
        match self {
            Kind::Segment | Kind::RudderStack => SyncMode::Upsert,
            _ => SyncMode::Mirror,
        }
    }

    /// Whether a resend is recognised and dropped (else it is applied again and converges).
    fn drops_resends(self) -> bool {
        matches!(self, Kind::Webhook | Kind::Segment)
    }
}

enum StandIn {
    Webhook(WebhookReceiver),
    Segment(SegmentStandIn),
    Hubspot(HubspotStandIn),
    Salesforce(SalesforceStandIn),
    Postgres { url: String, pool: sqlx::PgPool },
}

/// One destination under test: its stand-in behind a cut proxy.
struct Target {
    kind: Kind,
    stand_in: StandIn,
    proxy: CutProxy,
}

fn addr_of(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

impl Target {
    async fn start(kind: Kind) -> anyhow::Result<Self> {
        let (stand_in, upstream) = match kind {
            Kind::Webhook => {
                let r = WebhookReceiver::start(None).await;
                let addr = addr_of(&r.url());
                (StandIn::Webhook(r), addr)
            }
            Kind::Segment | Kind::RudderStack => {
                let flavor = if kind == Kind::Segment {
                    Flavor::Segment
                } else {
                    Flavor::RudderStack
                };
                let s = SegmentStandIn::start(flavor).await;
                let addr = addr_of(&s.endpoint());
                (StandIn::Segment(s), addr)
            }
            Kind::Hubspot => {
                let h = HubspotStandIn::start().await;
                let addr = addr_of(&h.base_url());
                (StandIn::Hubspot(h), addr)
            }
            Kind::Salesforce => {
                let s = SalesforceStandIn::start().await;
                let addr = addr_of(&s.instance_url());
                (StandIn::Salesforce(s), addr)
            }
            Kind::Postgres => {
                let url = testing::fresh_postgres_url("dest_faults_pg").await?;
                let pool = sqlx::PgPool::connect(&url).await?;
                sqlx::raw_sql(
                    "create table people (id bigint primary key, email text, plan text);
                     create table writes (id bigint, op text);
                     create function count_write() returns trigger language plpgsql as $$
                     begin insert into writes values (coalesce(new.id, old.id), tg_op); return null; end $$;
                     create trigger count_writes after insert or update or delete on people
                       for each row execute function count_write();
                     -- armed by `Target::arm`: the first `times` row writes raise `code`
                     -- (a sequence, so the count survives the failed transactions)
                     create sequence fail_seq;
                     create table fail_code (code text, times bigint);
                     insert into fail_code values ('40001', 0);
                     create function maybe_fail() returns trigger language plpgsql as $$
                     declare c text; n bigint;
                     begin
                       select code, times into c, n from fail_code;
                       if nextval('fail_seq') <= n then
                         raise exception 'injected failure' using errcode = c;
                       end if;
                       return coalesce(new, old);
                     end $$;
                     create trigger maybe_fail before insert or update or delete on people
                       for each row execute function maybe_fail();",
                )
                .execute(&pool)
                .await?;
                let port = url
                    .rsplit_once('/')
                    .and_then(|(base, _)| base.rsplit_once(':'))
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(5432u16);
                (
                    StandIn::Postgres { url, pool },
                    std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                )
            }
        };
        Ok(Self {
            kind,
            stand_in,
            proxy: CutProxy::start(upstream).await?,
        })
    }

    /// The destination's kind, settings and credential id (everything via the proxy).
    fn destination(&self) -> (DestinationKind, BTreeMap<String, String>, String) {
        let via = format!("http://{}", self.proxy.addr());
        let common = [
            ("batch_size", BATCH.to_string()),
            ("max_concurrency", "2".to_string()),
        ];
        let (kind, mut settings, secret): (_, Vec<(&str, String)>, _) = match &self.stand_in {
            StandIn::Webhook(_) => (
                DestinationKind::Webhook,
                vec![("url", format!("{via}/hook"))],
                None,
            ),
            StandIn::Segment(_) => (
                DestinationKind::Segment,
                vec![("endpoint", via)],
                Some(segment::WRITE_KEY),
            ),
            StandIn::Hubspot(_) => (
                DestinationKind::Hubspot,
                vec![("base_url", via)],
                Some(hubspot::TOKEN),
            ),
            StandIn::Salesforce(_) => (
                DestinationKind::Salesforce,
                vec![
                    ("instance_url", via),
                    ("api_version", "62.0".into()),
                    ("poll_timeout_seconds", "30".into()),
                ],
                Some(salesforce::TOKEN),
            ),
            StandIn::Postgres { url, .. } => {
                let database = url.rsplit('/').next().unwrap();
                (
                    DestinationKind::Postgres,
                    vec![(
                        "url",
                        format!("postgres://postgres@{}/{database}", self.proxy.addr()),
                    )],
                    None,
                )
            }
        };
        settings.extend(common);
        (
            kind,
            settings
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            secret.map(|s| format!("literal:{s}")).unwrap_or_default(),
        )
    }

    fn options(&self) -> BTreeMap<String, String> {
        let pairs: &[(&str, &str)] = match self.kind {
            Kind::Webhook | Kind::Segment | Kind::RudderStack => &[],
            Kind::Hubspot => &[
                ("object", "contacts"),
                ("id_property", "backflow_id"),
                ("id_field", "id"),
            ],
            Kind::Salesforce => &[
                ("object", "Account"),
                ("external_id_field", "Backflow_Id__c"),
            ],
            Kind::Postgres => &[("table", "people")],
        };
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What the destination holds: key → `{"email", "plan"}`.
    async fn held(&self) -> anyhow::Result<BTreeMap<String, Value>> {
        Ok(match &self.stand_in {
            StandIn::Webhook(r) => r.holds().records,
            StandIn::Segment(s) => s.holds().records,
            StandIn::Hubspot(h) => h.holds().records,
            StandIn::Salesforce(s) => s.holds().records,
            StandIn::Postgres { pool, .. } => {
                let rows: Vec<(i64, Option<String>, Option<String>)> =
                    sqlx::query_as("select id, email, plan from people")
                        .fetch_all(pool)
                        .await?;
                rows.into_iter()
                    .map(|(id, email, plan)| {
                        (id.to_string(), json!({"email": email, "plan": plan}))
                    })
                    .collect()
            }
        })
    }

    /// Key → writes applied for it so far.
    async fn applied(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        Ok(match &self.stand_in {
            StandIn::Webhook(r) => r.applied_per_key(),
            StandIn::Segment(s) => s.holds().applied,
            StandIn::Hubspot(h) => h.holds().applied,
            StandIn::Salesforce(s) => s.holds().applied,
            StandIn::Postgres { pool, .. } => {
                let rows: Vec<(i64, i64)> =
                    sqlx::query_as("select id, count(*) from writes group by id")
                        .fetch_all(pool)
                        .await?;
                rows.into_iter()
                    .map(|(id, n)| (id.to_string(), n as u64))
                    .collect()
            }
        })
    }

    /// PostgreSQL's answers to the next `times` row writes: `code`.
    async fn fail_writes(&self, code: &str, times: u64) -> anyhow::Result<()> {
        if let StandIn::Postgres { pool, .. } = &self.stand_in {
            sqlx::query("update fail_code set code = $1, times = $2")
                .bind(code)
                .bind(times as i64)
                .execute(pool)
                .await?;
            sqlx::query("select setval('fail_seq', 1, false)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Queues `case`'s fault for the next requests.
    async fn arm(&self, case: Case) -> anyhow::Result<()> {
        match case {
            Case::UploadCut => {
                self.salesforce()
                    .push_fault_at(Step::Upload, Fault::DropConnection);
                return Ok(());
            }
            Case::DeletesUnderFaults => {
                match &self.stand_in {
                    StandIn::Hubspot(h) => {
                        h.push_fault_at(HubspotStep::Read, Fault::Status(500));
                        h.push_fault_at(HubspotStep::Archive, Fault::DropAfterApply);
                    }
                    StandIn::Salesforce(s) => {
                        s.push_fault_at(Step::Query, Fault::Status(500));
                        s.push_fault_at(Step::Close, Fault::DropAfterApply);
                    }
                    _ => {}
                }
                return Ok(());
            }
            Case::PollFails => {
                for _ in 0..2 {
                    self.salesforce()
                        .push_fault_at(Step::Poll, Fault::Status(503));
                }
                return Ok(());
            }
            _ => {}
        }
        if self.kind == Kind::Postgres {
            // PostgreSQL's "try again" answers: a serialization failure, too many
            // connections (its nearest thing to a rate limit)
            match case {
                Case::ServerErrorThenOk => return self.fail_writes("40001", 1).await,
                Case::RateLimited => return self.fail_writes("53300", 1).await,
                _ => {}
            }
        }
        let fault = match (case, self.kind) {
            (Case::ServerErrorThenOk, _) => Fault::Status(500),
            (Case::RateLimited, Kind::Webhook | Kind::Hubspot) => {
                Fault::RateLimitedUntil { secs_from_now: 2 }
            }
            (Case::RateLimited, _) => Fault::RateLimited {
                retry_after_secs: 1,
            },
            (Case::AckLost, _) => Fault::DropAfterApply,
            (Case::CutMidRequest, _) => {
                self.proxy.cut_next(64);
                return Ok(());
            }
            _ => return Ok(()),
        };
        match &self.stand_in {
            StandIn::Webhook(r) => r.push_fault(fault),
            StandIn::Segment(s) => s.push_fault(fault),
            StandIn::Hubspot(h) => h.push_fault(fault),
            StandIn::Salesforce(s) if fault == Fault::DropAfterApply => {
                s.push_fault_at(Step::Close, fault)
            }
            StandIn::Salesforce(s) => s.push_fault(fault),
            StandIn::Postgres { .. } => {}
        }
        Ok(())
    }

    /// Refuses the records with ids 3 and 7, each the destination's own way.
    async fn refuse(&self) -> anyhow::Result<()> {
        for id in ["3", "7"] {
            match &self.stand_in {
                StandIn::Webhook(r) => r.refuse(id, "plan is not allowed here"),
                StandIn::Hubspot(h) => h.reject_id(id),
                StandIn::Salesforce(s) => s.reject(id),
                StandIn::Segment(_) => {}
                StandIn::Postgres { .. } => {}
            }
        }
        if let StandIn::Postgres { pool, .. } = &self.stand_in {
            sqlx::query("alter table people add constraint refused check (id not in (3, 7))")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    async fn accept_all(&self) -> anyhow::Result<()> {
        match &self.stand_in {
            StandIn::Webhook(r) => r.accept_all(),
            StandIn::Hubspot(h) => h.accept_all(),
            StandIn::Salesforce(s) => s.accept_all(),
            StandIn::Segment(_) => {}
            StandIn::Postgres { pool, .. } => {
                sqlx::query("alter table people drop constraint refused")
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// The destination's own words and status for a rate limit.
    fn limit_text(&self) -> (&'static str, i32) {
        match self.kind {
            Kind::Webhook => ("429: slow down", 429),
            Kind::Segment | Kind::RudderStack => ("429: Too many requests", 429),
            Kind::Hubspot => ("429 TEN_SECONDLY_ROLLING: You have reached", 429),
            Kind::Salesforce => (
                "403: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.",
                403,
            ),
            Kind::Postgres => ("injected failure (53300)", 0),
        }
    }

    /// The destination's own words for a refused record.
    fn refusal_text(&self) -> &'static str {
        match self.kind {
            Kind::Webhook => "plan is not allowed here",
            Kind::Hubspot => "INVALID_OPTION",
            Kind::Salesforce => "REQUIRED_FIELD_MISSING",
            Kind::Postgres => "23514",
            Kind::Segment | Kind::RudderStack => "",
        }
    }

    fn salesforce(&self) -> &SalesforceStandIn {
        match &self.stand_in {
            StandIn::Salesforce(s) => s,
            _ => panic!("not salesforce"),
        }
    }
}

struct Rig {
    warehouse: sqlx::PgPool,
    store: SyncStore,
    shutdown: Shutdown,
    executor: ExecutorProcess,
}

impl Rig {
    async fn start(label: &str) -> anyhow::Result<Self> {
        let places = Places {
            store_url: testing::fresh_postgres_url(label).await?,
            warehouse_url: testing::fresh_postgres_url(&format!("{label}_wh")).await?,
            nats: testing::fresh_nats(label),
        };
        let shutdown = Shutdown::new();
        let (store, _bus, _ctx) = connect(&places, &shutdown).await?;
        let warehouse = sqlx::PgPool::connect(&places.warehouse_url).await?;
        let mut executor = ExecutorProcess {
            places: places.clone(),
            child: None,
        };
        executor.spawn()?;
        Ok(Self {
            warehouse,
            store,
            shutdown,
            executor,
        })
    }

    async fn sql(&self, statements: &[&str]) -> anyhow::Result<()> {
        for statement in statements {
            sqlx::query(statement).execute(&self.warehouse).await?;
        }
        Ok(())
    }

    /// A model `table` of `rows` people and a sync of it to `target`.
    async fn sync(
        &self,
        table: &str,
        rows: u64,
        target: &Target,
        rate: f64,
    ) -> anyhow::Result<String> {
        self.sql(&[
            &format!("CREATE TABLE {table} (id bigint, email text, plan text)"),
            &format!(
                "INSERT INTO {table} SELECT g, 'u' || g || '@x', 'free' FROM generate_series(1, {rows}) g"
            ),
        ])
        .await?;
        let now = backflow_platform::now_unix_ms();
        let (kind, settings, credential_id) = target.destination();
        let destination = format!("dest-{table}");
        self.store
            .create_destination(&DestinationRecord {
                id: destination.clone(),
                workspace_id: WS.into(),
                name: destination.clone(),
                kind,
                settings,
                credential_id,
                rate_limit_per_second: rate,
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
            mode: target.kind.mode(),
            mappings: ["email", "plan"]
                .iter()
                .map(|c| Mapping::column(c, c))
                .collect(),
            schedule: Schedule::Manual,
            paused: false,
            paused_reason: String::new(),
            created_at_ms: now,
            updated_at_ms: now,
            destination_options: target.options(),
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

    /// Waits (up to 60 s) until the run has ended.
    async fn ended(&self, run_id: &str) -> anyhow::Result<RunRecord> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let run = self.store.get_run(WS, run_id).await?;
            if matches!(
                run.status,
                RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
            ) {
                return Ok(run);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "run {run_id} still {:?} ({:?}, {})",
                run.status,
                run.exec.phase,
                run.error
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs the sync once; it must succeed.
    async fn run(&self, sync_id: &str) -> anyhow::Result<RunRecord> {
        let run = self.ended(&self.queue(sync_id).await?).await?;
        assert_eq!(run.status, RunStatus::Succeeded, "{}", run.error);
        Ok(run)
    }

    async fn errors(&self, run: &RunRecord) -> anyhow::Result<Vec<RecordError>> {
        Ok(self.store.list_record_errors(WS, &run.id, 1000).await?)
    }

    /// The model's rows: id → `{"email", "plan"}`.
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

    /// The destination holds exactly the model.
    async fn holds_exactly(&self, what: &str, table: &str, target: &Target) -> anyhow::Result<()> {
        let model = self.model(table).await?;
        let held = target.held().await?;
        let missing: Vec<_> = model.keys().filter(|k| !held.contains_key(*k)).collect();
        let wrong: Vec<_> = held
            .iter()
            .filter(|(k, v)| model.get(*k) != Some(v))
            .map(|(k, v)| (k, v, model.get(k)))
            .collect();
        assert!(
            missing.is_empty() && wrong.is_empty(),
            "{what}: {} of {} rows missing (e.g. {:?}), {} held wrongly (e.g. {:?})",
            missing.len(),
            model.len(),
            &missing[..missing.len().min(5)],
            wrong.len(),
            &wrong[..wrong.len().min(3)]
        );
        Ok(())
    }

    /// The next run finds nothing to send.
    async fn next_run_sends_nothing(&self, what: &str, sync: &str) -> anyhow::Result<()> {
        let run = self.run(sync).await?;
        assert_eq!(
            (
                run.exec.counts.added,
                run.exec.counts.updated,
                run.exec.counts.deleted,
                run.exec.counts.requests
            ),
            (0, 0, 0, 0),
            "{what}: the run after"
        );
        Ok(())
    }
}

/// Writes applied since `before` beyond one per key in `changed` (a resend applied again).
fn reapplied(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    changed: &dyn Fn(&str) -> bool,
) -> (u64, Vec<String>) {
    let mut extra = 0;
    let mut wrong = Vec::new();
    for (key, times) in after {
        let more = times - before.get(key).copied().unwrap_or(0);
        let expected = u64::from(changed(key));
        if more > expected {
            extra += more - expected;
        } else if more < expected {
            wrong.push(key.clone());
        }
    }
    (extra, wrong)
}

/// One (destination × fault) case: the model synced under the fault, then 10% updated
/// and (mirror) 10% deleted under it again; returns the writes applied twice.
async fn run_case(rig: &mut Rig, kind: Kind, case: Case) -> anyhow::Result<u64> {
    let what = format!("{kind:?} × {case:?}");
    let table = format!("{kind:?}_{case:?}").to_lowercase();
    let target = Target::start(kind).await?;
    let killed = matches!(
        case,
        Case::KilledMidRun | Case::KilledBeforeClose | Case::KilledAfterClose
    );
    let (rows, rate) = if killed {
        (KILLED_ROWS, 5.0)
    } else {
        (ROWS, 1000.0)
    };
    let sync = rig.sync(&table, rows, &target, rate).await?;
    let all = |_: &str| true;
    // records the destination held at the kill that the checkpoint did not acknowledge:
    // the resumed run sends them again (the checkpoint's flush window)
    let mut unacked_at_kill = 0;

    // the first run: every row added
    let before = target.applied().await?;
    match case {
        Case::RefusedRecords => {
            target.refuse().await?;
            let run = rig.run(&sync).await?;
            assert_eq!(
                (run.exec.counts.delivered, run.exec.counts.failed),
                (rows as i64 - 2, 2),
                "{what}"
            );
            let errors = rig.errors(&run).await?;
            assert_eq!(errors.len(), 2, "{what}: {errors:?}");
            for error in &errors {
                assert!(
                    error.message.contains(target.refusal_text()),
                    "{what}: {error:?}"
                );
            }
            let held = target.held().await?;
            assert!(!held.contains_key("3") && !held.contains_key("7"), "{what}");
            assert_eq!(held.len() as u64, rows - 2, "{what}");
            // accepted again: the next run sends the two refused records
            target.accept_all().await?;
            let run = rig.run(&sync).await?;
            assert_eq!(
                (run.exec.counts.added, run.exec.counts.delivered),
                (2, 2),
                "{what}"
            );
        }
        Case::LimitOutlastsRetries => {
            // every attempt of every batch (four batches, five attempts each) is limited
            for _ in 0..(rows / BATCH) * 5 {
                let fault = Fault::RateLimited {
                    retry_after_secs: 0,
                };
                match &target.stand_in {
                    StandIn::Webhook(r) => r.push_fault(fault),
                    StandIn::Segment(s) => s.push_fault(fault),
                    StandIn::Hubspot(h) => h.push_fault(fault),
                    StandIn::Salesforce(s) => s.push_fault(fault),
                    StandIn::Postgres { .. } => {}
                }
            }
            target.fail_writes("53300", u64::MAX / 2).await?;
            let run = rig.run(&sync).await?;
            assert_eq!(
                (run.exec.counts.delivered, run.exec.counts.failed),
                (0, rows as i64),
                "{what}"
            );
            let errors = rig.errors(&run).await?;
            assert_eq!(errors.len() as u64, rows, "{what}");
            let (text, status) = target.limit_text();
            assert!(
                errors
                    .iter()
                    .all(|e| e.message.contains(text) && e.destination_status == status),
                "{what}: {:?}",
                &errors[..1]
            );
            assert!(target.held().await?.is_empty(), "{what}");
            target.fail_writes("53300", 0).await?;
            let run = rig.run(&sync).await?;
            assert_eq!(run.exec.counts.delivered, rows as i64, "{what}");
        }
        Case::JobFailed | Case::JobAborted => {
            let (end, failed, text) = if case == Case::JobFailed {
                (
                    JobEnd::Failed {
                        processed: 20,
                        message: "InvalidBatch : Failed to process the batch".into(),
                    },
                    BATCH - 20,
                    "Failed to process the batch",
                )
            } else {
                (JobEnd::Aborted { processed: 20 }, BATCH, "aborted")
            };
            target.salesforce().end_next_job(end);
            let run = rig.run(&sync).await?;
            assert_eq!(run.exec.counts.failed, failed as i64, "{what}");
            let errors = rig.errors(&run).await?;
            assert_eq!(errors.len() as u64, failed, "{what}");
            assert!(
                errors.iter().all(|e| e.message.contains(text)),
                "{what}: {:?}",
                &errors[..errors.len().min(2)]
            );
            // the next run sends the failed records again, in a new job
            let run = rig.run(&sync).await?;
            assert_eq!(run.exec.counts.delivered, failed as i64, "{what}");
        }
        Case::KilledMidRun | Case::KilledBeforeClose | Case::KilledAfterClose => {
            if case == Case::KilledBeforeClose {
                target.salesforce().push_fault_at(Step::Close, Fault::Hang);
            }
            if case == Case::KilledAfterClose {
                target.salesforce().push_fault_at(Step::Poll, Fault::Hang);
            }
            let run_id = rig.queue(&sync).await?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let held = target.held().await?.len() as u64;
                let hanging = case == Case::KilledMidRun || target.salesforce().hanging() > 0;
                // past the rate limit's first second of burst (five batches), so the run
                // delivers at its pace and checkpoints as it goes
                if held >= rows * 6 / 10 && hanging {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "{what}: holds only {held}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // SIGKILL mid-run, then a new executor process reaps the lapsed lease and
            // resumes the run from its checkpoint
            rig.executor_kill()?;
            let at_kill = target.held().await?.len() as u64;
            let acked: usize = rig
                .store
                .load_acks(&run_id)
                .await?
                .iter()
                .map(|(_, bytes)| bytes.len() / 16)
                .sum();
            eprintln!("{what}: held {at_kill} at the kill, {acked} acknowledged in the checkpoint");
            unacked_at_kill = at_kill.saturating_sub(acked as u64);
            assert!(at_kill < rows, "{what}: killed mid-run");
            let run = rig.store.get_run(WS, &run_id).await?;
            assert_eq!(run.status, RunStatus::Running, "{what}: killed mid-run");
            rig.executor_spawn()?;
            let run = rig.ended(&run_id).await?;
            assert_eq!(run.status, RunStatus::Succeeded, "{what}: {}", run.error);
            assert_eq!(run.exec.resumed, 1, "{what}");
            assert_eq!(run.exec.counts.delivered, rows as i64, "{what}");
            if case == Case::KilledBeforeClose {
                // the job left open was never processed; its batch went in a new job
                let states = target.salesforce().job_states();
                assert_eq!(
                    states.iter().filter(|s| *s == "Open").count(),
                    1,
                    "{what}: {states:?}"
                );
            }
        }
        _ => {
            if case != Case::DeletesUnderFaults {
                target.arm(case).await?;
            }
            let started = Instant::now();
            let run = rig.run(&sync).await?;
            assert_eq!(
                (run.exec.counts.delivered, run.exec.counts.failed),
                (rows as i64, 0),
                "{what}"
            );
            if matches!(case, Case::UploadCut | Case::PollFails) {
                // one job per batch, plus the one aborted after the cut upload
                let states = target.salesforce().job_states();
                let aborted = states.iter().filter(|s| *s == "Aborted").count();
                assert_eq!(
                    aborted,
                    usize::from(case == Case::UploadCut),
                    "{what}: {states:?}"
                );
                assert_eq!(
                    states.len() - aborted,
                    (rows / BATCH) as usize,
                    "{what}: {states:?}"
                );
            }
            if case == Case::RateLimited && !matches!(kind, Kind::Salesforce | Kind::Postgres) {
                assert!(
                    started.elapsed() >= Duration::from_millis(900),
                    "{what}: Retry-After honoured"
                );
            }
        }
    }
    rig.holds_exactly(&what, &table, &target).await?;
    let after = target.applied().await?;
    let (mut extra, lost) = reapplied(&before, &after, &all);
    assert!(lost.is_empty(), "{what}: never applied {lost:?}");

    // changes meet the fault too
    let once = matches!(
        case,
        Case::RefusedRecords | Case::LimitOutlastsRetries | Case::JobFailed | Case::JobAborted
    );
    if !killed && !once {
        let deletes_only = case == Case::DeletesUnderFaults;
        let mut statements = vec![];
        if !deletes_only {
            statements.push(format!("UPDATE {table} SET plan = 'pro' WHERE id % 10 = 0"));
        }
        if kind.mode() == SyncMode::Mirror {
            statements.push(format!("DELETE FROM {table} WHERE id % 10 = 5"));
        }
        rig.sql(&statements.iter().map(String::as_str).collect::<Vec<_>>())
            .await?;
        let before = target.applied().await?;
        target.arm(case).await?;
        let run = rig.run(&sync).await?;
        let changes = match (kind.mode(), deletes_only) {
            (SyncMode::Mirror, false) => 2 * rows / 10,
            _ => rows / 10,
        };
        assert_eq!(
            (run.exec.counts.delivered, run.exec.counts.failed),
            (changes as i64, 0),
            "{what}: changes"
        );
        rig.holds_exactly(&what, &table, &target).await?;
        if deletes_only {
            let pending = match &target.stand_in {
                StandIn::Hubspot(h) => h.pending_faults(),
                StandIn::Salesforce(s) => s.pending_faults(),
                _ => 0,
            };
            assert_eq!(pending, 0, "{what}: the deletes met every fault");
        }
        let changed = |key: &str| {
            let id: u64 = key.parse().unwrap_or(0);
            (id.is_multiple_of(10) && !deletes_only)
                || (kind.mode() == SyncMode::Mirror && id % 10 == 5)
        };
        let (more, lost) = reapplied(&before, &target.applied().await?, &changed);
        assert!(lost.is_empty(), "{what}: changes never applied {lost:?}");
        extra += more;
    }
    rig.next_run_sends_nothing(&what, &sync).await?;

    // a change is applied twice only where resends are not recognised, and then at most
    // the batches the fault caught in flight
    let bound = match case {
        _ if kind.drops_resends() => 0,
        Case::AckLost if kind == Kind::Salesforce => 0,
        Case::AckLost => 2 * BATCH,
        // plus the batches in flight at the kill
        Case::KilledMidRun | Case::KilledBeforeClose | Case::KilledAfterClose => {
            unacked_at_kill + 2 * BATCH
        }
        // the aborted job's 20 processed rows are upserted again (no result files tell)
        Case::JobAborted => 20,
        _ => 0,
    };
    assert!(
        extra <= bound,
        "{what}: {extra} writes applied twice (at most {bound})"
    );
    eprintln!("fault case {what}: ok, writes applied twice {extra}");
    Ok(extra)
}

impl Rig {
    fn executor_kill(&mut self) -> anyhow::Result<()> {
        self.executor.kill_9()
    }

    fn executor_spawn(&mut self) -> anyhow::Result<()> {
        self.executor.spawn()
    }
}

async fn faults(kind: Kind, cases: &[Case]) -> anyhow::Result<()> {
    let label = format!("dfaults_{kind:?}").to_lowercase();
    let mut rig = Rig::start(&label).await?;
    for case in cases {
        run_case(&mut rig, kind, *case).await?;
    }
    rig.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_under_faults() -> anyhow::Result<()> {
    faults(Kind::Webhook, &Kind::Webhook.cases()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_under_faults() -> anyhow::Result<()> {
    faults(Kind::Segment, &Kind::Segment.cases()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rudderstack_under_faults() -> anyhow::Result<()> {
    faults(Kind::RudderStack, &Kind::RudderStack.cases()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_under_faults() -> anyhow::Result<()> {
    let mut cases = Kind::Hubspot.cases();
    cases.push(Case::DeletesUnderFaults);
    faults(Kind::Hubspot, &cases).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_under_faults() -> anyhow::Result<()> {
    faults(Kind::Salesforce, &Kind::Salesforce.cases()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_jobs_under_faults() -> anyhow::Result<()> {
    faults(
        Kind::Salesforce,
        &[
            Case::JobFailed,
            Case::JobAborted,
            Case::UploadCut,
            Case::PollFails,
            Case::DeletesUnderFaults,
            Case::KilledBeforeClose,
            Case::KilledAfterClose,
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_under_faults() -> anyhow::Result<()> {
    faults(Kind::Postgres, &Kind::Postgres.cases()).await
}
