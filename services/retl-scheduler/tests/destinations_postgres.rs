//! The PostgreSQL table destination against the real local PostgreSQL (a fresh database
//! per test): upsert / insert / update / delete by key with JSON converted to the
//! columns' types, a bad row failing alone while the rest of its batch commits, resends
//! converging, a missing table refusing the batch, and a killed connection survived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use backflow_platform::testing::fresh_postgres_url;
use backflow_retl_scheduler::destinations::rate_limit::RateLimits;
use backflow_retl_scheduler::destinations::test_support::{as_deletes, batch, sample_records};
use backflow_retl_scheduler::destinations::{
    build, Deliverer, DeliveryOptions, Destination, DestinationError, DestinationKind,
    DestinationSettings, Operation, RecordOutcome, RetrySchedule,
};
use serde_json::json;
use sqlx::{Connection, PgConnection};

const TABLE: &[(&str, &str)] = &[("table", "app.users")];

async fn setup() -> (String, Deliverer) {
    let url = fresh_postgres_url("dest_pg").await.unwrap();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "create schema app;
         create table app.users (id bigint primary key, email text not null, name text,
                                 score integer, seen_at timestamptz);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let mut settings = DestinationSettings::new();
    settings.insert("url".into(), url.clone());
    let destination: Arc<dyn Destination> =
        build(DestinationKind::Postgres, &settings, None).unwrap();
    let d = Deliverer::with_registry(
        destination,
        DeliveryOptions {
            retry: RetrySchedule {
                max_attempts: 3,
                initial: Duration::from_millis(10),
                multiplier: 2.0,
                max_delay: Duration::from_millis(50),
                max_retry_after: Duration::from_secs(1),
            },
            ..DeliveryOptions::default()
        },
        &RateLimits::new(),
    );
    (url, d)
}

async fn table(url: &str) -> Vec<(i64, String, Option<i32>)> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query_as("select id, email, score from app.users order by id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn modes_write_the_table_by_key() {
    let (url, d) = setup().await;
    assert_eq!(d.destination().test().await, Ok(()));

    let mut records = sample_records(1..=3, false);
    records[0]
        .fields
        .insert("seen_at".into(), json!("2024-01-31T10:00:00Z"));
    let done = d
        .send(batch("r", 0, Operation::Upsert, TABLE, records))
        .await;
    assert_eq!(done.delivered(), 3, "{:?}", done.error);

    // Upsert changes, insert does not overwrite, update does not create.
    let mut changed = sample_records([2], false);
    changed[0].fields.insert("score".into(), json!(20));
    assert_eq!(
        d.send(batch("r", 1, Operation::Upsert, TABLE, changed))
            .await
            .delivered(),
        1
    );
    let mut again = sample_records([3, 4], false);
    again[0].fields.insert("score".into(), json!(30));
    assert_eq!(
        d.send(batch("r", 2, Operation::Insert, TABLE, again))
            .await
            .delivered(),
        2
    );
    let mut update = sample_records([1, 5], false);
    update[0].fields.insert("score".into(), json!(10));
    assert_eq!(
        d.send(batch("r", 3, Operation::Update, TABLE, update))
            .await
            .delivered(),
        2
    );

    let deletes = as_deletes(&sample_records([3], false));
    assert_eq!(
        d.send(batch("r", 4, Operation::Delete, TABLE, deletes))
            .await
            .delivered(),
        1
    );

    assert_eq!(
        table(&url).await,
        vec![
            (1, "user1@example.com".into(), Some(10)),
            (2, "user2@example.com".into(), Some(20)),
            (4, "user4@example.com".into(), Some(4)),
        ]
    );
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let (seen,): (String,) =
        sqlx::query_as("select to_char(seen_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') from app.users where id = 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(seen, "2024-01-31 10:00");
}

#[tokio::test]
async fn a_bad_row_fails_alone_and_resends_converge() {
    let (url, d) = setup().await;
    let mut records = sample_records(1..=4, false);
    records[1].fields.insert("email".into(), json!(null));
    records[2].fields.insert("score".into(), json!("lots"));
    let done = d
        .send(batch("r", 0, Operation::Upsert, TABLE, records.clone()))
        .await;
    assert_eq!(done.results[0].outcome, RecordOutcome::Delivered);
    assert!(
        matches!(&done.results[1].outcome, RecordOutcome::Failed { message, status: 0 } if message.contains("not-null") && message.contains("23502")),
        "{:?}",
        done.results[1]
    );
    assert!(
        matches!(&done.results[2].outcome, RecordOutcome::Failed { message, .. } if message.contains("22P02")),
        "{:?}",
        done.results[2]
    );
    assert_eq!(done.results[3].outcome, RecordOutcome::Delivered);
    assert_eq!(table(&url).await.len(), 2);

    // The same batch resent (a crash before the results were stored): same rows.
    let resent = d
        .send(batch("r", 0, Operation::Upsert, TABLE, records))
        .await;
    assert_eq!(resent.delivered(), 2);
    assert_eq!(
        table(&url).await,
        vec![
            (1, "user1@example.com".into(), Some(1)),
            (4, "user4@example.com".into(), Some(4))
        ]
    );
}

#[tokio::test]
async fn a_missing_table_refuses_and_a_killed_connection_is_survived() {
    let (url, d) = setup().await;
    let done = d
        .send(batch(
            "r",
            0,
            Operation::Upsert,
            &[("table", "app.nope")],
            sample_records([1], false),
        ))
        .await;
    assert_eq!(done.attempts, 1);
    assert!(
        matches!(&done.error, Some(DestinationError::Rejected { message, .. }) if message.contains("42P01")),
        "{:?}",
        done.error
    );

    assert_eq!(
        d.send(batch(
            "r",
            1,
            Operation::Upsert,
            TABLE,
            sample_records([1], false)
        ))
        .await
        .delivered(),
        1
    );
    let database = url.rsplit('/').next().unwrap().to_string();
    let mut admin = PgConnection::connect(&backflow_platform::testing::postgres_admin_url())
        .await
        .unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
    )
    .bind(&database)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!killed.is_empty());
    let done = d
        .send(batch(
            "r",
            2,
            Operation::Upsert,
            TABLE,
            sample_records([2, 3], false),
        ))
        .await;
    assert_eq!(done.delivered(), 2, "{:?}", done.error);
    assert_eq!(table(&url).await.len(), 3);
}
