//! The connection store behaves the same on SQLite and PostgreSQL: workspace
//! isolation, unique names, dbt-only hosts, received events recorded once, the last
//! test kept, the sync → job projection (once per message, newest version wins,
//! tombstones), the subscription rows' pending → active life, and pending artifact
//! fetches (queued with the announcement only for jobs a sync waits on, retried, ended
//! once with the node-results announcement).

use backflow_dbt_cloud_listener::app::MIGRATIONS;
use backflow_dbt_cloud_listener::connections::{validate_new, Connections, NewConnection};
use backflow_dbt_cloud_listener::secrets::Secrets;
use backflow_dbt_cloud_listener::store::{
    ConnectionRecord, ConnectionStore, JobKey, LastTest, Received, ReceivedEventRecord,
    SubscriptionRecord, SubscriptionStatus, SyncJobApplied,
};
use backflow_dbt_cloud_listener::watch::Watcher;
use backflow_dbt_cloud_listener::DbtCloudError;
use backflow_platform::credentials_client::CredentialsClient;
use backflow_platform::db::Database;
use backflow_platform::outbox::{pending_count, Outbox};
use backflow_platform::testing;
use backflow_proto::dbtcloud::v1::{RunCompletedEvent, RunEventPart};
use backflow_proto::retl::v1::{DbtCloudJobSchedule, SyncChangedEvent};

async fn connections_on(url: &str) -> anyhow::Result<Connections> {
    let db = Database::connect(url, &MIGRATIONS).await?;
    let store = ConnectionStore::new(db, Outbox::new());
    // Never called here: no connection in this test has a subscription.
    let credentials =
        CredentialsClient::new("dbt_cloud_listener", "http://127.0.0.1:1", "t", None)?;
    let watcher = Watcher::new(store.clone(), Secrets::new(credentials), "");
    Ok(Connections::new(store, watcher, Vec::new()))
}

/// Stores a connection as `Connections::create` would after its check passed.
async fn create(
    connections: &Connections,
    new: NewConnection,
) -> Result<ConnectionRecord, DbtCloudError> {
    let record = validate_new(new, backflow_platform::new_id(), 1_000, &[])?;
    connections.store().create(&record).await?;
    Ok(record)
}

fn new_connection(workspace: &str, name: &str) -> NewConnection {
    NewConnection {
        workspace_id: workspace.into(),
        name: name.into(),
        access_url: "https://acme.us1.dbt.com".into(),
        account_id: 42,
        api_token_credential_id: "cred-token".into(),
    }
}

fn received(connection_id: &str, event_id: &str, at_ms: i64) -> ReceivedEventRecord {
    ReceivedEventRecord {
        event_id: event_id.into(),
        connection_id: connection_id.into(),
        event_type: "job.run.completed".into(),
        job_id: 123,
        run_id: 12345,
        run_status_code: 10,
        received_at_ms: at_ms,
    }
}

async fn contract(url: &str) -> anyhow::Result<()> {
    let connections = connections_on(url).await?;
    let created = create(&connections, new_connection("ws-a", "prod")).await?;
    assert_eq!(created.access_url, "https://acme.us1.dbt.com");

    // names are unique per workspace, not globally
    assert!(matches!(
        create(&connections, new_connection("ws-a", "prod")).await,
        Err(DbtCloudError::AlreadyExists(_))
    ));
    let other = create(&connections, new_connection("ws-b", "prod")).await?;

    // workspace isolation
    assert_eq!(connections.list("ws-a").await?, vec![created.clone()]);
    assert_eq!(connections.get("ws-a", &created.id).await?, created);
    assert!(matches!(
        connections.get("ws-b", &created.id).await,
        Err(DbtCloudError::NotFound(_))
    ));
    assert!(matches!(
        connections.received_events("ws-a", &other.id).await,
        Err(DbtCloudError::NotFound(_))
    ));
    assert!(matches!(
        connections.list("").await,
        Err(DbtCloudError::InvalidArgument(_))
    ));

    // hosts outside dbt's domains never get stored
    let mut foreign = new_connection("ws-a", "foreign");
    foreign.access_url = "http://cloud.getdbt.com".into();
    assert!(matches!(
        create(&connections, foreign).await,
        Err(DbtCloudError::InvalidArgument(_))
    ));
    assert_eq!(connections.list("ws-a").await?.len(), 1);

    // a delivery is recorded once and announced once; listing is newest first
    let store = connections.store();
    let completed = RunCompletedEvent {
        workspace_id: "ws-a".into(),
        connection_id: created.id.clone(),
        account_id: 42,
        job_id: 123,
        run_id: 12345,
        run_status_code: 10,
        succeeded: true,
        ..Default::default()
    };
    assert_eq!(
        store
            .record_received(
                "ws-a",
                &received(&created.id, "wev_1", 1_000),
                Some(&completed)
            )
            .await?,
        Received::Announced
    );
    assert_eq!(
        store
            .record_received(
                "ws-a",
                &received(&created.id, "wev_1", 2_000),
                Some(&completed)
            )
            .await?,
        Received::Duplicate
    );
    assert_eq!(
        store
            .record_received("ws-a", &received(&created.id, "wev_2", 3_000), None)
            .await?,
        Received::Recorded
    );
    // Another delivery id (a second subscription, or reconciliation) for the same run.
    assert_eq!(
        store
            .record_received_via(
                "ws-a",
                &received(&created.id, "wev_3", 4_000),
                Some(&completed),
                "poll"
            )
            .await?,
        Received::RunAlreadyAnnounced
    );
    assert_eq!(pending_count(store.database()).await?, 1);
    let events = connections.received_events("ws-a", &created.id).await?;
    let ids: Vec<_> = events.iter().map(|event| event.event_id.as_str()).collect();
    assert_eq!(ids, ["wev_3", "wev_2", "wev_1"]);
    assert_eq!(events[2], received(&created.id, "wev_1", 1_000));

    // deleting removes the connection and what hangs off it, only in its workspace
    assert!(matches!(
        connections.delete("ws-b", &created.id).await,
        Err(DbtCloudError::NotFound(_))
    ));
    connections.delete("ws-a", &created.id).await?;
    assert!(connections.list("ws-a").await?.is_empty());
    assert!(store.list_received("ws-a", &created.id).await?.is_empty());
    assert!(matches!(
        connections.delete("ws-a", &created.id).await,
        Err(DbtCloudError::NotFound(_))
    ));
    assert_eq!(connections.list("ws-b").await?.len(), 1);
    Ok(())
}

async fn last_test_is_kept(url: &str) -> anyhow::Result<()> {
    let connections = connections_on(url).await?;
    let store = connections.store();
    let created = create(&connections, new_connection("ws", "prod")).await?;
    assert_eq!(created.last_test, None);
    let test = LastTest {
        ok: false,
        problem: 3,
        message: "dbt cloud answered 404".into(),
        tested_at_ms: 5_000,
        account_name: String::new(),
    };
    assert!(store.set_last_test("ws", &created.id, &test).await?);
    assert_eq!(
        connections.get("ws", &created.id).await?.last_test,
        Some(test.clone())
    );
    assert!(!store.set_last_test("other", &created.id, &test).await?);
    let second = create(&connections, new_connection("ws", "second")).await?;
    let oldest = store.connection_for_account("ws", 42).await?.map(|c| c.id);
    assert_eq!(
        oldest.as_deref(),
        Some(if created.id < second.id {
            created.id.as_str()
        } else {
            second.id.as_str()
        })
    );
    assert_eq!(store.connection_for_account("ws", 43).await?, None);
    Ok(())
}

fn sync_event(sync: &str, version: i64, enabled: bool, job: Option<i64>) -> SyncChangedEvent {
    SyncChangedEvent {
        workspace_id: "ws".into(),
        sync_id: sync.into(),
        retl_model_id: "m".into(),
        enabled,
        deleted: false,
        used_columns: Vec::new(),
        version,
        sync_name: format!("sync {sync}"),
        after_dbt_cloud_job: job.map(|job_id| DbtCloudJobSchedule {
            account_id: 42,
            job_id,
        }),
    }
}

fn key(job_id: i64) -> JobKey {
    JobKey {
        workspace_id: "ws".into(),
        account_id: 42,
        job_id,
    }
}

async fn sync_jobs_projection(url: &str) -> anyhow::Result<()> {
    let connections = connections_on(url).await?;
    let store = connections.store();
    let apply = |message: &'static str, event: SyncChangedEvent, at: i64| {
        let store = store.clone();
        async move { store.apply_sync_changed("c", message, &event, at).await }
    };
    assert_eq!(
        apply("m1", sync_event("s1", 1, true, Some(7)), 100).await?,
        SyncJobApplied::Applied { jobs: vec![key(7)] }
    );
    assert_eq!(
        apply("m1", sync_event("s1", 1, true, Some(7)), 100).await?,
        SyncJobApplied::Duplicate
    );
    assert_eq!(
        apply("m2", sync_event("s2", 1, true, Some(7)), 200).await?,
        SyncJobApplied::Applied { jobs: vec![key(7)] }
    );
    let watched = store.watched_jobs().await?;
    assert_eq!(watched.len(), 1);
    assert_eq!(
        watched[0].sync_ids,
        vec!["s1".to_string(), "s2".to_string()]
    );
    assert_eq!(watched[0].waiting_since_ms, 100);
    // Renamed but still waiting: the wait keeps its start.
    apply("m3", sync_event("s1", 2, true, Some(7)), 300).await?;
    assert_eq!(
        store
            .watched_job(&key(7))
            .await?
            .map(|w| w.waiting_since_ms),
        Some(100)
    );
    // Moved to job 8: both jobs are to follow.
    assert_eq!(
        apply("m4", sync_event("s1", 3, true, Some(8)), 400).await?,
        SyncJobApplied::Applied {
            jobs: vec![key(7), key(8)]
        }
    );
    assert_eq!(
        store
            .watched_job(&key(8))
            .await?
            .map(|w| w.waiting_since_ms),
        Some(400)
    );
    // An older version arriving late is dropped.
    assert_eq!(
        apply("m5", sync_event("s1", 2, true, Some(7)), 500).await?,
        SyncJobApplied::Stale
    );
    // Paused, then deleted: nothing waits on job 8; the tombstone stops older events.
    apply("m6", sync_event("s1", 4, false, Some(8)), 600).await?;
    assert_eq!(store.watched_job(&key(8)).await?, None);
    let mut deleted = sync_event("s1", 5, false, Some(8));
    deleted.deleted = true;
    apply("m7", deleted, 700).await?;
    assert_eq!(
        apply("m8", sync_event("s1", 4, true, Some(8)), 800).await?,
        SyncJobApplied::Stale
    );
    assert_eq!(store.watched_job(&key(8)).await?, None);
    // A sync on another schedule follows no job.
    assert_eq!(
        apply("m9", sync_event("s3", 1, true, None), 900).await?,
        SyncJobApplied::Applied { jobs: vec![] }
    );
    let keys: Vec<i64> = store
        .watched_jobs()
        .await?
        .iter()
        .map(|w| w.key.job_id)
        .collect();
    assert_eq!(keys, vec![7]);
    assert!(matches!(
        store
            .apply_sync_changed("c", "m10", &sync_event("", 1, true, Some(7)), 0)
            .await,
        Err(DbtCloudError::InvalidArgument(_))
    ));

    // Problems are kept per job until cleared.
    store
        .set_subscription_problem(&key(7), "no public url", 1)
        .await?;
    store
        .set_subscription_problem(&key(7), "still no public url", 2)
        .await?;
    let problems = store.subscription_problems("ws").await?;
    assert_eq!(
        problems.get(&(42, 7)).map(String::as_str),
        Some("still no public url")
    );
    store.clear_subscription_problem(&key(7)).await?;
    assert!(store.subscription_problems("ws").await?.is_empty());
    Ok(())
}

async fn subscription_rows(url: &str) -> anyhow::Result<()> {
    let connections = connections_on(url).await?;
    let store = connections.store();
    let connection = create(&connections, new_connection("ws", "subscribed")).await?;
    let pending = SubscriptionRecord {
        id: "sub-1".into(),
        workspace_id: "ws".into(),
        connection_id: connection.id.clone(),
        job_id: 7,
        dbt_webhook_id: String::new(),
        hmac_secret_credential_id: String::new(),
        created_at_ms: 1,
        status: SubscriptionStatus::Pending,
        client_url: "https://bf.example.com/webhooks/dbt-cloud/sub-1".into(),
    };
    assert_eq!(store.subscription_or_pending(&pending).await?, pending);
    // A second writer gets the first row, not a second one.
    let mut other = pending.clone();
    other.id = "sub-2".into();
    assert_eq!(store.subscription_or_pending(&other).await?.id, "sub-1");
    // Pending rows receive no deliveries.
    assert_eq!(store.webhook_target("sub-1").await?, None);
    assert!(
        store
            .activate_subscription("sub-1", "wsu_1", "sec-1")
            .await?
    );
    let target = store.webhook_target("sub-1").await?;
    assert_eq!(
        target
            .as_ref()
            .map(|t| (t.account_id, t.job_id, t.dbt_webhook_id.as_str())),
        Some((42, 7, "wsu_1"))
    );
    assert_eq!(store.subscriptions_for(&key(7)).await?.len(), 1);
    assert_eq!(store.subscribed_jobs().await?, vec![key(7)]);
    store
        .reset_subscription("sub-1", "https://new.example.com/webhooks/dbt-cloud/sub-1")
        .await?;
    let reset = store.subscription_for_job(&connection.id, 7).await?;
    assert_eq!(
        reset.map(|r| (r.status, r.dbt_webhook_id, r.client_url)),
        Some((
            SubscriptionStatus::Pending,
            String::new(),
            "https://new.example.com/webhooks/dbt-cloud/sub-1".to_string()
        ))
    );
    let listed = store.workspace_subscriptions("ws").await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, 42);
    assert!(store.delete_subscription("ws", "sub-1").await?);
    assert!(!store.delete_subscription("ws", "sub-1").await?);
    Ok(())
}

async fn artifact_fetches(url: &str) -> anyhow::Result<()> {
    let connections = connections_on(url).await?;
    let store = connections.store();
    store
        .apply_sync_changed("c", "m1", &sync_event("s1", 1, true, Some(7)), 100)
        .await?;
    let completed = |job_id: i64, run_id: i64| RunCompletedEvent {
        workspace_id: "ws".into(),
        connection_id: "conn".into(),
        account_id: 42,
        job_id,
        run_id,
        run_status_code: 10,
        succeeded: true,
        origin: "dbt_cloud".into(),
        part: RunEventPart::Completed as i32,
        ..Default::default()
    };
    let mut event = received("conn", "wev_a", 1_000);
    event.job_id = 7;
    // a job a sync waits on: announced and a fetch queued, once however often delivered
    for (event_id, expected) in [
        ("wev_a", Received::Announced),
        ("wev_b", Received::RunAlreadyAnnounced),
    ] {
        event.event_id = event_id.into();
        assert_eq!(
            store
                .record_received("ws", &event, Some(&completed(7, 1)))
                .await?,
            expected
        );
    }
    // a job no sync waits on: announced whole, nothing to fetch
    event.event_id = "wev_c".into();
    event.job_id = 8;
    assert_eq!(
        store
            .record_received("ws", &event, Some(&completed(8, 2)))
            .await?,
        Received::Announced
    );
    let pending = store.pending_fetches().await?;
    assert_eq!(
        pending
            .iter()
            .map(|f| (f.job_id, f.run_id, f.attempts))
            .collect::<Vec<_>>(),
        [(7, 1, 0)]
    );
    assert_eq!(
        store.due_fetches(999, 10).await?.len(),
        0,
        "due at the announcement's time"
    );
    let fetch = store.due_fetches(1_000, 10).await?.remove(0);
    assert!(store.retry_fetch(&fetch, 5_000, "503").await?);
    assert!(store.due_fetches(4_999, 10).await?.is_empty());
    assert_eq!(store.next_fetch_due_ms().await?, Some(5_000));
    let retried = store.due_fetches(5_000, 10).await?.remove(0);
    assert_eq!((retried.attempts, retried.last_error.as_str()), (1, "503"));
    let outbox_before = pending_count(store.database()).await?;
    let mut results = completed(7, 1);
    results.part = RunEventPart::NodeResults as i32;
    assert!(store.finish_fetch(&retried, &results).await?);
    assert!(!store.finish_fetch(&retried, &results).await?, "ended once");
    assert!(!store.retry_fetch(&retried, 9_000, "late").await?);
    assert_eq!(pending_count(store.database()).await?, outbox_before + 1);
    assert!(store.pending_fetches().await?.is_empty());
    assert_eq!(store.next_fetch_due_ms().await?, None);
    Ok(())
}

#[tokio::test]
async fn last_test_projection_and_subscriptions_on_sqlite_and_postgres() -> anyhow::Result<()> {
    for url in testing::both_backends("dbtcloudsubs").await? {
        for (name, result) in [
            ("last test", last_test_is_kept(&url).await),
            ("projection", sync_jobs_projection(&url).await),
            ("subscriptions", subscription_rows(&url).await),
            ("artifact fetches", artifact_fetches(&url).await),
        ] {
            result.map_err(|err| anyhow::anyhow!("{url} {name}: {err:#}"))?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn store_contract_on_sqlite_and_postgres() -> anyhow::Result<()> {
    for url in testing::both_backends("dbtcloud").await? {
        contract(&url)
            .await
            .map_err(|err| anyhow::anyhow!("{url}: {err:#}"))?;
    }
    Ok(())
}
