//! The connection store behaves the same on SQLite and PostgreSQL: workspace
//! isolation, unique names, dbt-only hosts, and received events recorded once.

use backflow_dbt_cloud_listener::app::MIGRATIONS;
use backflow_dbt_cloud_listener::connections::{Connections, NewConnection};
use backflow_dbt_cloud_listener::store::{ConnectionStore, Received, ReceivedEventRecord};
use backflow_dbt_cloud_listener::DbtCloudError;
use backflow_platform::db::Database;
use backflow_platform::outbox::{pending_count, Outbox};
use backflow_platform::testing;
use backflow_proto::dbtcloud::v1::RunCompletedEvent;

async fn connections_on(url: &str) -> anyhow::Result<Connections> {
    let db = Database::connect(url, &MIGRATIONS).await?;
    Ok(Connections::new(ConnectionStore::new(db, Outbox::new())))
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
    let created = connections.create(new_connection("ws-a", "prod")).await?;
    assert_eq!(created.access_url, "https://acme.us1.dbt.com");

    // names are unique per workspace, not globally
    assert!(matches!(
        connections.create(new_connection("ws-a", "prod")).await,
        Err(DbtCloudError::AlreadyExists(_))
    ));
    let other = connections.create(new_connection("ws-b", "prod")).await?;

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
        connections.create(foreign).await,
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

#[tokio::test]
async fn store_contract_on_sqlite_and_postgres() -> anyhow::Result<()> {
    for url in testing::both_backends("dbtcloud").await? {
        contract(&url)
            .await
            .map_err(|err| anyhow::anyhow!("{url}: {err:#}"))?;
    }
    Ok(())
}
