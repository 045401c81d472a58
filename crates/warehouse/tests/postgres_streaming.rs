//! Streaming behaviour against the real local PostgreSQL: cancel, drop, back-pressure,
//! large results in bounded batches, the cursor path Redshift uses, and TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use arrow_array::{Array, BooleanArray, Int64Array};
use arrow_schema::DataType;
use backflow_warehouse::postgres::{connect_with, DescribeSource, StreamMode};
use backflow_warehouse::{QueryOptions, ReadOnlyQuery, RelationRef, WarehouseError, WarehouseKind};
use futures::StreamExt;
use support::pg::{secret, Scratch};

/// Waits until `f` holds, or fails after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if f().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Backends of the scratch database running a backflow-wrapped query.
async fn running_queries(db: &Scratch) -> i64 {
    let mut c = db.conn().await;
    sqlx::query_scalar(
        "select count(*) from pg_stat_activity where datname = current_database() \
         and pid <> pg_backend_pid() and state = 'active' and query like '%backflow_q%'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap()
}

// in the select list, so rows stream as they are made (a FROM-clause SRF is materialised first)
const HUGE: &str = "select generate_series(1, 50000000)::bigint as id";

#[tokio::test]
async fn cancel_stops_a_long_stream_and_the_server_query() {
    let db = Scratch::new("cancel").await;
    let c = db.connector();
    let options = QueryOptions {
        batch_rows: 1000,
        ..QueryOptions::default()
    };
    let mut s = c
        .stream(&ReadOnlyQuery::from_sql(HUGE).unwrap(), &options)
        .await
        .unwrap();
    let first = s.batches.next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 1000);
    eventually(
        Duration::from_secs(5),
        "the copy runs in the server",
        || async { running_queries(&db).await == 1 },
    )
    .await;
    let started = Instant::now();
    options.cancel.cancel();
    assert_eq!(
        s.batches.next().await.unwrap().unwrap_err(),
        WarehouseError::Cancelled
    );
    assert!(s.batches.next().await.is_none());
    assert!(started.elapsed() < Duration::from_secs(1));
    eventually(Duration::from_secs(5), "the server query stops", || async {
        running_queries(&db).await == 0
    })
    .await;
}

#[tokio::test]
async fn cancel_before_the_first_row_interrupts_the_statement() {
    let db = Scratch::new("cancel_sleep").await;
    let c = db.connector();
    let options = QueryOptions::default();
    let mut s = c
        .stream(
            &ReadOnlyQuery::from_sql("select pg_sleep(30) as s").unwrap(),
            &options,
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "the sleep runs in the server",
        || async { running_queries(&db).await == 1 },
    )
    .await;
    let started = Instant::now();
    options.cancel.cancel();
    assert_eq!(
        s.batches.next().await.unwrap().unwrap_err(),
        WarehouseError::Cancelled
    );
    eventually(Duration::from_secs(5), "the server query stops", || async {
        running_queries(&db).await == 0
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_slow_consumer_holds_the_producer_and_dropping_the_stream_stops_it() {
    let db = Scratch::new("drop").await;
    let c = db.connector();
    let options = QueryOptions {
        batch_rows: 1000,
        ..QueryOptions::default()
    };
    let mut s = c
        .stream(&ReadOnlyQuery::from_sql(HUGE).unwrap(), &options)
        .await
        .unwrap();
    s.batches.next().await.unwrap().unwrap();
    // back-pressure: with one batch read, the 50M-row copy is still running in the server
    // (it waits for us), rather than the connector buffering the result
    eventually(Duration::from_secs(5), "the copy is running", || async {
        running_queries(&db).await == 1
    })
    .await;
    drop(s);
    eventually(
        Duration::from_secs(5),
        "the server query stops after the drop",
        || async { running_queries(&db).await == 0 },
    )
    .await;
}

#[tokio::test]
async fn a_100k_row_stream_arrives_in_bounded_batches() {
    let db = Scratch::new("100k").await;
    db.exec("create table big as select g::bigint as id, md5(g::text) as h, g % 2 = 0 as even from generate_series(1, 100000) g;").await;
    let c = db.connector();
    let options = QueryOptions {
        batch_rows: 4096,
        ..QueryOptions::default()
    };
    let mut s = c
        .stream(
            &ReadOnlyQuery::from_sql("select * from big").unwrap(),
            &options,
        )
        .await
        .unwrap();
    let (mut rows, mut sum, mut evens, mut batches) = (0usize, 0i64, 0usize, 0usize);
    while let Some(b) = s.batches.next().await {
        let b = b.unwrap();
        assert!(b.num_rows() <= 4096 && b.num_rows() > 0);
        batches += 1;
        rows += b.num_rows();
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        sum += ids.values().iter().sum::<i64>();
        let even = b.column(2).as_any().downcast_ref::<BooleanArray>().unwrap();
        evens += even.true_count();
    }
    assert_eq!(rows, 100_000);
    assert_eq!(batches, 25); // 24 × 4096 + 1696
    assert_eq!(sum, 100_000 * 100_001 / 2);
    assert_eq!(evens, 50_000);
}

/// The Redshift flavour (cursor + FETCH FORWARD, `information_schema.columns`-shaped
/// describe) pointed at the local PostgreSQL, with Redshift-compatible types.
#[tokio::test]
async fn the_redshift_cursor_path_streams_and_describes_on_postgres() {
    let db = Scratch::new("redshift").await;
    db.exec(
        "create table public.orders (id bigint not null, amount numeric(12,2), note varchar(20), at timestamptz);
         insert into orders select g, g * 1.5, 'n' || g, '2024-01-01'::timestamptz + g * interval '1 second' from generate_series(1, 6000) g;",
    )
    .await;
    let mut settings = db.settings(&db.admin_user());
    settings.insert("port".into(), settings["port"].clone());
    let c = connect_with(
        WarehouseKind::Redshift,
        &settings,
        secret(""),
        DescribeSource::ColumnsView("information_schema.columns"),
        StreamMode::Cursor { fetch_rows: 1000 },
    )
    .unwrap();
    assert_eq!(c.kind(), WarehouseKind::Redshift);
    let options = QueryOptions {
        batch_rows: 2500,
        ..QueryOptions::default()
    };
    let mut s = c
        .stream(
            &ReadOnlyQuery::from_sql("select * from public.orders order by id").unwrap(),
            &options,
        )
        .await
        .unwrap();
    let mut sizes = Vec::new();
    let mut last = 0;
    while let Some(b) = s.batches.next().await {
        let b = b.unwrap();
        sizes.push(b.num_rows());
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        for id in ids.values() {
            assert_eq!(*id, last + 1);
            last = *id;
        }
    }
    assert_eq!(sizes, vec![2500, 2500, 1000]);
    let rel = RelationRef {
        database: db.database.clone(),
        schema: "public".into(),
        identifier: "orders".into(),
        rendered: "\"public\".\"orders\"".into(),
    };
    let cols = c.describe_relation(&rel).await.unwrap();
    let got: Vec<(&str, &str, DataType, bool)> = cols
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.warehouse_type.as_str(),
                c.data_type.clone(),
                c.nullable,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("id", "bigint", DataType::Int64, false),
            ("amount", "numeric(12,2)", DataType::Decimal128(12, 2), true),
            ("note", "character varying(20)", DataType::Utf8, true),
            (
                "at",
                "timestamp with time zone",
                DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into())),
                true
            ),
        ]
    );
    // the read-only transaction and the timeout hold on the cursor path too
    db.exec("create function bf_write() returns int language plpgsql volatile as $$ begin create table x(a int); return 1; end $$;").await;
    let err = c
        .stream(
            &ReadOnlyQuery::from_sql("select bf_write()").unwrap(),
            &options,
        )
        .await;
    let err = match err {
        Ok(mut s) => s.batches.next().await.unwrap().unwrap_err(),
        Err(e) => e,
    };
    assert!(
        matches!(err, WarehouseError::ReadOnlyViolation { .. }),
        "{err:?}"
    );
    let timeout = QueryOptions {
        statement_timeout: Duration::from_millis(300),
        ..QueryOptions::default()
    };
    let slow = ReadOnlyQuery::from_sql("select count(*) as n from pg_sleep(5)").unwrap();
    let mut s = c.stream(&slow, &timeout).await.unwrap();
    assert_eq!(
        s.batches.next().await.unwrap().unwrap_err(),
        WarehouseError::Timeout {
            after: Duration::from_millis(300)
        }
    );
}

#[tokio::test]
async fn sslmode_require_connects_over_tls() {
    let db = Scratch::new("tls").await;
    let mut settings = db.settings(&db.admin_user());
    settings.insert("sslmode".into(), "require".into());
    let c = backflow_warehouse::connect(WarehouseKind::Postgres, &settings, secret("")).unwrap();
    let q = ReadOnlyQuery::from_sql("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        .unwrap();
    let mut s = c.stream(&q, &QueryOptions::default()).await.unwrap();
    let b = s.batches.next().await.unwrap().unwrap();
    let ssl = b.column(0).as_any().downcast_ref::<BooleanArray>().unwrap();
    assert!(ssl.value(0), "the connection is encrypted");
    let mut settings = db.settings(&db.admin_user());
    settings.insert("sslmode".into(), "disable".into());
    let c = backflow_warehouse::connect(WarehouseKind::Postgres, &settings, secret("")).unwrap();
    let mut s = c.stream(&q, &QueryOptions::default()).await.unwrap();
    let b = s.batches.next().await.unwrap().unwrap();
    assert!(!b
        .column(0)
        .as_any()
        .downcast_ref::<BooleanArray>()
        .unwrap()
        .value(0));
}
