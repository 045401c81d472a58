//! The Postgres connector against the real local PostgreSQL: types, read-only
//! enforcement, statement timeout, cancel, error classes, batch sizes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use arrow_array::{
    Array, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array,
    RecordBatch, StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, TimeUnit};
use backflow_warehouse::types::LOGICAL_TYPE_KEY;
use backflow_warehouse::{
    Connector, QueryOptions, ReadOnlyQuery, RelationRef, WarehouseError, WarehouseKind,
};
use futures::StreamExt;
use support::pg::{secret, Scratch};

const EVERY_TYPE: &str = r#"
create table public.every_type (
    id bigint primary key,
    b boolean,
    i2 smallint,
    i4 integer not null,
    f4 real,
    f8 double precision,
    amount numeric(12,2),
    big numeric,
    t text,
    vc varchar(20),
    ch char(3),
    u uuid,
    j json,
    jb jsonb,
    d date,
    ts timestamp,
    tstz timestamptz,
    tm time,
    by bytea,
    iv interval,
    arr integer[]
);
insert into public.every_type values
 (1, true, -2, 40000, 1.5, 2.25, 12345.67, 123456789012345678901234567890.123456789, 'héllo', 'v', 'ab',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1}', '{"b": [1, 2]}', '2024-02-29',
  '2024-02-29 12:34:56.789012', '2024-02-29 12:34:56+02', '23:59:59.5', '\x00ff', '1 day 02:00:00', '{1,2}'),
 (2, null, null, 0, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null);
"#;

fn col<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} has another type"))
}

async fn collect(
    c: &dyn Connector,
    sql: &str,
    options: &QueryOptions,
) -> Result<Vec<RecordBatch>, WarehouseError> {
    let q = ReadOnlyQuery::from_sql(sql)?;
    let mut s = c.stream(&q, options).await?;
    let mut out = Vec::new();
    while let Some(b) = s.batches.next().await {
        let b = b?;
        assert_eq!(b.schema(), s.schema, "every batch has the announced schema");
        out.push(b);
    }
    Ok(out)
}

#[tokio::test]
async fn every_canonical_type_streams_with_the_documented_arrow_type() {
    let db = Scratch::new("types").await;
    db.exec(EVERY_TYPE).await;
    let c = db.connector();
    let batches = collect(
        &*c,
        "select * from public.every_type order by id",
        &QueryOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.num_rows(), 2);
    let expected_types = [
        ("id", DataType::Int64),
        ("b", DataType::Boolean),
        ("i2", DataType::Int64),
        ("i4", DataType::Int64),
        ("f4", DataType::Float64),
        ("f8", DataType::Float64),
        ("amount", DataType::Decimal128(12, 2)),
        ("big", DataType::Utf8),
        ("t", DataType::Utf8),
        ("vc", DataType::Utf8),
        ("ch", DataType::Utf8),
        ("u", DataType::Utf8),
        ("j", DataType::Utf8),
        ("jb", DataType::Utf8),
        ("d", DataType::Date32),
        ("ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
        (
            "tstz",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
        ("tm", DataType::Time64(TimeUnit::Microsecond)),
        ("by", DataType::Binary),
        ("iv", DataType::Utf8),
        ("arr", DataType::Utf8),
    ];
    let schema = b.schema();
    let actual: Vec<(&str, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    let expected: Vec<(&str, DataType)> = expected_types
        .iter()
        .map(|(n, t)| (*n, t.clone()))
        .collect();
    assert_eq!(actual, expected);
    for json in ["j", "jb", "arr"] {
        assert_eq!(
            schema
                .field_with_name(json)
                .unwrap()
                .metadata()
                .get(LOGICAL_TYPE_KEY)
                .map(String::as_str),
            Some("json"),
            "{json}"
        );
    }
    assert!(!schema.field_with_name("i4").unwrap().is_nullable());
    assert!(schema.field_with_name("t").unwrap().is_nullable());

    assert_eq!(col::<Int64Array>(b, "id").values(), &[1, 2]);
    assert!(col::<BooleanArray>(b, "b").value(0));
    assert_eq!(col::<Int64Array>(b, "i2").value(0), -2);
    assert_eq!(col::<Int64Array>(b, "i4").value(0), 40000);
    assert_eq!(col::<Float64Array>(b, "f4").value(0), 1.5);
    assert_eq!(col::<Float64Array>(b, "f8").value(0), 2.25);
    assert_eq!(col::<Decimal128Array>(b, "amount").value(0), 1_234_567);
    assert_eq!(
        col::<StringArray>(b, "big").value(0),
        "123456789012345678901234567890.123456789"
    );
    assert_eq!(col::<StringArray>(b, "t").value(0), "héllo");
    assert_eq!(col::<StringArray>(b, "ch").value(0), "ab ");
    assert_eq!(
        col::<StringArray>(b, "u").value(0),
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    );
    assert_eq!(col::<StringArray>(b, "j").value(0), r#"{"a": 1}"#);
    assert_eq!(col::<StringArray>(b, "jb").value(0), r#"{"b": [1, 2]}"#);
    // 2024-02-29 is day 19782 since 1970-01-01
    assert_eq!(col::<Date32Array>(b, "d").value(0), 19_782);
    assert_eq!(
        col::<TimestampMicrosecondArray>(b, "ts").value(0),
        1_709_210_096_789_012
    );
    assert_eq!(
        col::<TimestampMicrosecondArray>(b, "tstz").value(0),
        1_709_202_896_000_000
    );
    assert_eq!(
        col::<Time64MicrosecondArray>(b, "tm").value(0),
        86_399_500_000
    );
    assert_eq!(col::<BinaryArray>(b, "by").value(0), &[0x00, 0xff]);
    assert_eq!(col::<StringArray>(b, "iv").value(0), "1 day 02:00:00");
    assert_eq!(col::<StringArray>(b, "arr").value(0), "[1,2]");
    for i in 1..b.num_columns() {
        if schema.field(i).name() != "i4" {
            assert!(
                b.column(i).is_null(1),
                "row 2, {} is null",
                schema.field(i).name()
            );
        }
    }

    // describing the relation and the query agree with the stream
    let rel = RelationRef {
        database: db.database.clone(),
        schema: "public".into(),
        identifier: "every_type".into(),
        rendered: format!("\"{}\".\"public\".\"every_type\"", db.database),
    };
    let described = c.describe_relation(&rel).await.unwrap();
    let types: Vec<(&str, &str, DataType)> = described
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.warehouse_type.as_str(),
                c.data_type.clone(),
            )
        })
        .collect();
    assert_eq!(
        types[6],
        ("amount", "numeric(12,2)", DataType::Decimal128(12, 2))
    );
    assert_eq!(types[9], ("vc", "character varying(20)", DataType::Utf8));
    let stream_types: Vec<DataType> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        described
            .iter()
            .map(|c| c.data_type.clone())
            .collect::<Vec<_>>(),
        stream_types
    );
    let q = ReadOnlyQuery::select_all(&rel);
    let by_query = c.describe_query(&q).await.unwrap();
    assert_eq!(by_query, described);
}

#[tokio::test]
async fn a_model_that_writes_fails_read_only_and_changes_nothing() {
    let db = Scratch::new("readonly").await;
    db.exec(
        "create table t (id int); insert into t values (1), (2), (3);
         create function bf_sneaky() returns int language plpgsql volatile as $$
         begin insert into t values (99); return 1; end $$;",
    )
    .await;
    let c = db.connector();
    for sql in [
        "delete from t",
        "create table t2 (a int)",
        "select bf_sneaky()",
        "with d as (delete from t returning *) select * from d",
        "  -- a comment first\n insert into t values (7)",
    ] {
        let err = collect(&*c, sql, &QueryOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, WarehouseError::ReadOnlyViolation { .. }),
            "{sql}: {err:?}"
        );
        let q = ReadOnlyQuery::from_sql(sql).unwrap();
        let err = c
            .scalar_row(&q, &QueryOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, WarehouseError::ReadOnlyViolation { .. }),
            "scalar {sql}: {err:?}"
        );
    }
    let mut admin = db.conn().await;
    let ids: Vec<i32> = sqlx::query_scalar("select id from t order by id")
        .fetch_all(&mut admin)
        .await
        .unwrap();
    assert_eq!(ids, vec![1, 2, 3]);
    let t2: Option<String> = sqlx::query_scalar("select to_regclass('t2')::text")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(t2, None);
}

#[tokio::test]
async fn the_statement_timeout_is_enforced_quickly() {
    let db = Scratch::new("timeout").await;
    let c = db.connector();
    let options = QueryOptions {
        statement_timeout: Duration::from_millis(300),
        ..QueryOptions::default()
    };
    let started = Instant::now();
    let err = collect(&*c, "select pg_sleep(5)", &options)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        WarehouseError::Timeout {
            after: Duration::from_millis(300)
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let q = ReadOnlyQuery::from_sql("select count(*) from pg_sleep(5)").unwrap();
    let err = c.scalar_row(&q, &options).await.unwrap_err();
    assert_eq!(
        err,
        WarehouseError::Timeout {
            after: Duration::from_millis(300)
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn scalar_rows_read_counts_and_nulls() {
    let db = Scratch::new("scalar").await;
    db.exec("create table k (id int); insert into k values (1), (1), (2), (null);")
        .await;
    let c = db.connector();
    let q = ReadOnlyQuery::from_sql(
        "select count(*), count(distinct id), sum(id), max(id) filter (where id > 5) from k",
    )
    .unwrap();
    let row = c.scalar_row(&q, &QueryOptions::default()).await.unwrap();
    assert_eq!(row, vec![Some(4), Some(2), Some(4), None]);
}

#[tokio::test]
async fn batches_respect_batch_rows_and_max_rows() {
    let db = Scratch::new("batches").await;
    let c = db.connector();
    let options = QueryOptions {
        batch_rows: 1000,
        ..QueryOptions::default()
    };
    let sql = "select g as id, md5(g::text) as h from generate_series(1, 2500) g";
    let sizes: Vec<usize> = collect(&*c, sql, &options)
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);
    let preview = QueryOptions {
        max_rows: Some(10),
        ..options
    };
    let sizes: Vec<usize> = collect(&*c, sql, &preview)
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .collect();
    assert_eq!(sizes, vec![10]);
}

#[tokio::test]
async fn connection_errors_are_classified() {
    let mut db = Scratch::new("errors").await;
    // closed port
    let mut settings = db.settings("postgres");
    settings.insert("port".into(), "1".into());
    let c = backflow_warehouse::connect(WarehouseKind::Postgres, &settings, secret("")).unwrap();
    assert!(matches!(
        c.test(None).await,
        Err(WarehouseError::Unreachable { .. })
    ));
    // unknown database
    let mut settings = db.settings("postgres");
    settings.insert("database".into(), "bf_wh_no_such_database".into());
    let c = backflow_warehouse::connect(WarehouseKind::Postgres, &settings, secret("")).unwrap();
    assert_eq!(
        c.test(None).await.unwrap_err(),
        WarehouseError::UnknownDatabase {
            name: "bf_wh_no_such_database".into()
        }
    );
    // a role that may not log in, and one that does not exist
    let nologin = db.role("nologin", "NOLOGIN").await;
    for user in [nologin.as_str(), "bf_wh_no_such_role"] {
        let c =
            backflow_warehouse::connect(WarehouseKind::Postgres, &db.settings(user), secret("pw"))
                .unwrap();
        assert!(
            matches!(
                c.test(None).await,
                Err(WarehouseError::Authentication { .. })
            ),
            "{user}"
        );
    }
    // a role without usage on the schema
    let reader = db.role("reader", "LOGIN").await;
    db.exec("create schema private; create schema open_to_all; grant usage on schema open_to_all to public;").await;
    let c = backflow_warehouse::connect(WarehouseKind::Postgres, &db.settings(&reader), secret(""))
        .unwrap();
    let report = c.test(Some("open_to_all")).await.unwrap();
    assert!(report.server_version.unwrap().starts_with("PostgreSQL "));
    assert!(matches!(
        c.test(Some("private")).await,
        Err(WarehouseError::MissingPrivilege { .. })
    ));
    assert!(matches!(
        c.test(Some("nope")).await,
        Err(WarehouseError::MissingPrivilege { .. })
    ));
    // unknown relation
    let q = ReadOnlyQuery::from_sql("select * from public.missing").unwrap();
    assert_eq!(
        c.describe_query(&q).await.unwrap_err(),
        WarehouseError::UnknownRelation {
            name: "public.missing".into()
        }
    );
    // no select privilege
    db.exec(&format!("create table private_t (a int); revoke all on private_t from public; grant usage on schema public to \"{reader}\";")).await;
    let q = ReadOnlyQuery::from_sql("select * from private_t").unwrap();
    assert!(matches!(
        collect(&*c, q.sql(), &QueryOptions::default()).await,
        Err(WarehouseError::MissingPrivilege { .. })
    ));
}

#[tokio::test]
async fn a_refused_password_is_an_authentication_error() {
    let (port, server) =
        backflow_warehouse::test_support::postgres::refusing_password_server().await;
    let settings = [
        ("host", "127.0.0.1".to_string()),
        ("port", port.to_string()),
        ("database", "analytics".to_string()),
        ("user", "reader".to_string()),
        ("sslmode", "disable".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let c =
        backflow_warehouse::connect(WarehouseKind::Postgres, &settings, secret("wrong-password"))
            .unwrap();
    let err = c.test(None).await.unwrap_err();
    assert_eq!(
        err,
        WarehouseError::Authentication {
            detail: "password authentication failed for user \"reader\"".into()
        }
    );
    assert_eq!(
        server.await.unwrap(),
        "wrong-password",
        "the password is sent as resolved"
    );
}

#[tokio::test]
async fn work_mem_is_set_for_the_query_transaction_only() {
    let db = Scratch::new("workmem").await;
    let c = db.connector();
    let setting =
        |batches: Vec<RecordBatch>| col::<StringArray>(&batches[0], "w").value(0).to_string();
    let sql = "select current_setting('work_mem') as w";
    let wide = QueryOptions {
        work_mem_kib: Some(256 * 1024),
        ..QueryOptions::default()
    };
    assert_eq!(setting(collect(&*c, sql, &wide).await.unwrap()), "256MB");
    let server = setting(collect(&*c, sql, &QueryOptions::default()).await.unwrap());
    assert_ne!(
        server, "256MB",
        "a query without the option keeps the server's setting"
    );
}
