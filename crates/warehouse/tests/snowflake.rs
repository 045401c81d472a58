//! The Snowflake connector against the SQL API stand-in
//! (`backflow_warehouse::test_support::snowflake`, following fixtures/wire/snowflake-sql-api.md):
//! auth headers and JWT claims, async polling, partitions in order with typed cells, each
//! documented error shape, cancel and timeout, idempotent resubmission, OAuth.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use backflow_warehouse::test_support::snowflake::{
    Script, SnowflakeStandIn, Table, ACCOUNT, DATABASE, OAUTH_TOKEN, OTHER_PRIVATE_KEY_PEM,
    PRIVATE_KEY_PEM, ROLE, SCHEMA, USER, VERSION, WAREHOUSE,
};
use backflow_warehouse::{
    connect, Connector, QueryOptions, ReadOnlyQuery, RelationRef, SecretMaterial, SourceSettings,
    WarehouseError, WarehouseKind,
};
use futures::TryStreamExt;
use secrecy::SecretString;
use serde_json::{json, Value};

/// SHA-256 fingerprint of the test key's public key, computed with
/// `openssl pkey -pubout -outform DER | openssl dgst -sha256 -binary | base64`.
const TEST_KEY_FINGERPRINT: &str = "U2qNW1FyIzjCzonGyBHsKMMgF1mYamwQ/7g4FIEPEvs=";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../fixtures/wire/snowflake/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn connector(settings: &SourceSettings, secret: &str) -> Arc<dyn Connector> {
    connect(
        WarehouseKind::Snowflake,
        settings,
        SecretMaterial(SecretString::from(secret.to_string())),
    )
    .unwrap()
}

fn key_pair(stand_in: &SnowflakeStandIn) -> Arc<dyn Connector> {
    connector(&stand_in.settings("key_pair"), PRIVATE_KEY_PEM)
}

fn query(sql: &str) -> ReadOnlyQuery {
    ReadOnlyQuery::from_sql_for(WarehouseKind::Snowflake, sql).unwrap()
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn rows(
    c: &dyn Connector,
    sql: &str,
    options: &QueryOptions,
) -> Result<Vec<RecordBatch>, WarehouseError> {
    c.stream(&query(sql), options)
        .await?
        .batches
        .try_collect()
        .await
}

#[tokio::test]
async fn key_pair_jwt_claims_headers_and_request_body() {
    let s = SnowflakeStandIn::start().await;
    let report = key_pair(&s).test(None).await.unwrap();
    assert_eq!(report.server_version.as_deref(), Some(VERSION));

    let requests = s.requests();
    let post = requests.iter().find(|r| r.method == "POST").unwrap();
    assert!(post.headers["authorization"].starts_with("Bearer "));
    assert_eq!(
        post.headers["x-snowflake-authorization-token-type"],
        "KEYPAIR_JWT"
    );
    assert_eq!(post.headers["content-type"], "application/json");
    assert_eq!(post.headers["accept"], "application/json");
    assert!(post.headers["user-agent"].starts_with("backflow/"));
    // Claims verified by the stand-in (signature against the public key), and exactly:
    let claims = post.jwt_claims.as_ref().unwrap();
    assert_eq!(
        claims["iss"],
        format!("{ACCOUNT}.{USER}.SHA256:{TEST_KEY_FINGERPRINT}")
    );
    assert_eq!(claims["sub"], format!("{ACCOUNT}.{USER}"));
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 59 * 60);
    // The body: one statement, the source's context, a timeout, count 1.
    let body = post.body.as_ref().unwrap();
    assert_eq!(body["database"], DATABASE);
    assert_eq!(body["warehouse"], WAREHOUSE);
    assert_eq!(body["role"], ROLE);
    assert_eq!(body["schema"], SCHEMA);
    assert_eq!(body["timeout"], 60);
    assert_eq!(body["parameters"], json!({"MULTI_STATEMENT_COUNT": "1"}));
    assert_eq!(body["resultSetMetaData"], json!({"format": "jsonv2"}));
    let request_id = &post.query["requestId"];
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
    assert!(!post.query.contains_key("retry"));
    // The schema check ran too (the settings name PUBLIC), with a binding.
    let schema_check = requests
        .iter()
        .filter_map(|r| r.body.as_ref())
        .find(|b| {
            b["statement"]
                .as_str()
                .unwrap()
                .contains("information_schema.schemata")
        })
        .unwrap();
    assert_eq!(
        schema_check["bindings"]["1"],
        json!({"type": "TEXT", "value": SCHEMA})
    );
}

#[tokio::test]
async fn wrong_key_or_fingerprint_is_refused() {
    let s = SnowflakeStandIn::start().await;
    // Right claims, wrong signature: the stand-in's 401 (390144).
    let e = connector(&s.settings("key_pair"), OTHER_PRIVATE_KEY_PEM)
        .test(None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, WarehouseError::Authentication { ref detail } if detail.contains("JWT token is invalid") && detail.contains("390144")),
        "{e:?}"
    );
    // A fingerprint setting that does not match the key: refused before dialling.
    let mut settings = s.settings("key_pair");
    settings.insert("public_key_fingerprint".into(), "SHA256:AAAA".into());
    let e = connect(
        WarehouseKind::Snowflake,
        &settings,
        SecretMaterial(SecretString::from(PRIVATE_KEY_PEM.to_string())),
    )
    .unwrap_err();
    assert!(matches!(e, WarehouseError::Credential { .. }), "{e:?}");
    settings.insert(
        "public_key_fingerprint".into(),
        format!("SHA256:{TEST_KEY_FINGERPRINT}"),
    );
    connector(&settings, PRIVATE_KEY_PEM)
        .test(None)
        .await
        .unwrap();
    // Not a key at all.
    let e = connect(
        WarehouseKind::Snowflake,
        &s.settings("key_pair"),
        SecretMaterial(SecretString::from("hunter2".to_string())),
    )
    .unwrap_err();
    assert!(matches!(e, WarehouseError::Credential { .. }));
}

#[tokio::test]
async fn oauth_token_path() {
    let s = SnowflakeStandIn::start().await;
    let c = connector(&s.settings("oauth"), OAUTH_TOKEN);
    c.test(None).await.unwrap();
    let post = s
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(
        post.headers["authorization"],
        format!("Bearer {OAUTH_TOKEN}")
    );
    assert_eq!(
        post.headers["x-snowflake-authorization-token-type"],
        "OAUTH"
    );
    let e = connector(&s.settings("oauth"), "expired")
        .test(None)
        .await
        .unwrap_err();
    // fixtures/wire/snowflake/error-401-invalid-oauth.json
    assert!(
        matches!(e, WarehouseError::Authentication { ref detail } if detail.contains("Invalid OAuth access token") && detail.contains("390303")),
        "{e:?}"
    );
}

#[tokio::test]
async fn connection_test_says_what_is_wrong() {
    let s = SnowflakeStandIn::start().await;
    let mut settings = s.settings("key_pair");
    settings.insert("database".into(), "NOPE".into());
    let e = connector(&settings, PRIVATE_KEY_PEM)
        .test(None)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WarehouseError::UnknownDatabase {
            name: "NOPE".into()
        }
    );

    let mut settings = s.settings("key_pair");
    settings.insert("warehouse".into(), "NOPE_WH".into());
    let e = connector(&settings, PRIVATE_KEY_PEM)
        .test(None)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WarehouseError::UnknownWarehouse {
            name: "NOPE_WH".into()
        }
    );

    let c = key_pair(&s);
    let e = c.test(Some("SECRET_SCHEMA")).await.unwrap_err();
    assert!(
        matches!(e, WarehouseError::MissingPrivilege { ref detail } if detail.contains("\"SECRET_SCHEMA\"")),
        "{e:?}"
    );
    s.set_schemas(&["PUBLIC", "SECRET_SCHEMA"]);
    c.test(Some("SECRET_SCHEMA")).await.unwrap();

    // Nothing listening: unreachable.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut settings = s.settings("key_pair");
    settings.insert("endpoint".into(), format!("http://127.0.0.1:{port}"));
    let e = connector(&settings, PRIVATE_KEY_PEM)
        .test(None)
        .await
        .unwrap_err();
    assert!(matches!(e, WarehouseError::Unreachable { .. }), "{e:?}");
}

/// A table with one column per Snowflake type and cells as jsonv2 spells them,
/// in three partitions (3, 2 and 1 rows).
fn typed_table(upper_case: bool) -> Table {
    let kind = |k: &str| {
        if upper_case {
            k.to_uppercase()
        } else {
            k.to_string()
        }
    };
    let row_type = vec![
        Table::column("ID", &kind("fixed"), Some(38), Some(0)),
        Table::column("AMOUNT", &kind("fixed"), Some(10), Some(2)),
        Table::column("SCORE", &kind("real"), None, None),
        Table::column("NAME", &kind("text"), None, None),
        Table::column("ACTIVE", &kind("boolean"), None, None),
        Table::column("BORN", &kind("date"), None, None),
        Table::column("SEEN_AT", &kind("timestamp_ntz"), None, Some(9)),
        Table::column("CHANGED_AT", &kind("timestamp_tz"), None, Some(9)),
        Table::column("AT_TIME", &kind("time"), None, Some(9)),
        Table::column("RAW", &kind("binary"), None, None),
        Table::column("DOC", &kind("variant"), None, None),
    ];
    let row = |id: i64| -> Vec<Option<String>> {
        let s = |v: &str| Some(v.to_string());
        vec![
            s(&id.to_string()),
            s("12.50"),
            s(if id == 2 { "NaN" } else { "1.5" }),
            s(&format!("customer{id}")),
            s(if id % 2 == 0 { "true" } else { "false" }),
            s("18262"),
            s("82919.000000000"),
            s("1616173619.000000000 1500"),
            s("82919.000000000"),
            s("48454C4C4F"),
            if id == 3 { None } else { s("{\"a\": [1, 2]}") },
        ]
    };
    Table {
        row_type,
        partitions: vec![
            vec![row(1), row(2), row(3)],
            vec![row(4), row(5)],
            vec![row(6)],
        ],
    }
}

#[tokio::test]
async fn polls_until_done_and_reads_partitions_in_order_with_typed_cells() {
    let s = SnowflakeStandIn::start().await;
    s.on(
        "from analytics.customers",
        Script::Rows {
            table: typed_table(false),
            running_polls: 2,
        },
    );
    let c = key_pair(&s);
    let options = QueryOptions {
        batch_rows: 2,
        ..QueryOptions::default()
    };
    let batches = rows(c.as_ref(), "select * from analytics.customers", &options)
        .await
        .unwrap();
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .collect::<Vec<_>>(),
        [2, 2, 2]
    );
    let schema = batches[0].schema();
    let types: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    assert_eq!(
        types,
        [
            DataType::Decimal128(38, 0),
            DataType::Decimal128(10, 2),
            DataType::Float64,
            DataType::Utf8,
            DataType::Boolean,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            utc,
            DataType::Time64(TimeUnit::Microsecond),
            DataType::Binary,
            DataType::Utf8,
        ]
    );
    assert_eq!(
        schema
            .field(10)
            .metadata()
            .get("backflow.logical")
            .map(String::as_str),
        Some("json")
    );
    // Rows in order across partitions.
    let ids: Vec<i128> = batches
        .iter()
        .flat_map(|b| {
            let a = b.column(0).as_primitive::<Decimal128Type>().clone();
            (0..a.len()).map(move |i| a.value(i))
        })
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    // Typed values of the first batch.
    let b = &batches[0];
    assert_eq!(b.column(1).as_primitive::<Decimal128Type>().value(0), 1250);
    assert_eq!(b.column(2).as_primitive::<Float64Type>().value(0), 1.5);
    assert!(b.column(2).as_primitive::<Float64Type>().value(1).is_nan());
    assert_eq!(b.column(3).as_string::<i32>().value(1), "customer2");
    assert!(!b.column(4).as_boolean().value(0) && b.column(4).as_boolean().value(1));
    assert_eq!(b.column(5).as_primitive::<Date32Type>().value(0), 18262);
    assert_eq!(
        b.column(6)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        82_919_000_000
    );
    assert_eq!(
        b.column(7)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_616_173_619_000_000
    );
    assert_eq!(
        b.column(8).as_primitive::<Time64MicrosecondType>().value(0),
        82_919_000_000
    );
    assert_eq!(b.column(9).as_binary::<i32>().value(0), b"HELLO");
    assert_eq!(b.column(10).as_string::<i32>().value(0), "{\"a\": [1, 2]}");
    assert!(batches[1].column(10).is_null(0)); // row 3

    // The wire: one POST (202), status polls until 200, then partitions 1 and 2 in order,
    // gzip accepted (the stand-in always gzips them; the client decoded them).
    let requests = s.requests();
    let post = &requests[0];
    let statement = post.body.as_ref().unwrap()["statement"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        statement,
        "select * from (\nselect * from analytics.customers\n) as backflow_q"
    );
    let gets: Vec<_> = requests[1..]
        .iter()
        .map(|r| (r.method.as_str(), r.query.get("partition").cloned()))
        .collect();
    assert_eq!(
        gets,
        [
            ("GET", None),
            ("GET", None),
            ("GET", None),
            ("GET", Some("1".to_string())),
            ("GET", Some("2".to_string())),
        ]
    );
    for r in &requests[4..] {
        assert!(r.headers["accept-encoding"].contains("gzip"));
        assert_eq!(
            r.headers["x-snowflake-authorization-token-type"],
            "KEYPAIR_JWT"
        );
    }
}

#[tokio::test]
async fn upper_case_types_limits_and_describe() {
    let s = SnowflakeStandIn::start().await;
    s.on(
        "from analytics.customers",
        Script::Rows {
            table: typed_table(true),
            running_polls: 0,
        },
    );
    let c = key_pair(&s);
    let options = QueryOptions {
        max_rows: Some(4),
        ..QueryOptions::default()
    };
    let batches = rows(c.as_ref(), "select * from analytics.customers;", &options)
        .await
        .unwrap();
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 4);
    let last = s
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(last.body.unwrap()["statement"]
        .as_str()
        .unwrap()
        .ends_with(") as backflow_q limit 4"));

    let columns = c
        .describe_query(&query("select * from analytics.customers"))
        .await
        .unwrap();
    assert_eq!(columns.len(), 11);
    assert_eq!(columns[1].name, "AMOUNT");
    assert_eq!(columns[1].warehouse_type, "NUMBER(10,2)");
    assert_eq!(columns[1].data_type, DataType::Decimal128(10, 2));
    assert_eq!(columns[7].warehouse_type, "TIMESTAMP_TZ(9)");
    let relation = RelationRef {
        database: "ANALYTICS".into(),
        schema: "PUBLIC".into(),
        identifier: "CUSTOMERS".into(),
        rendered: "analytics.customers".into(),
    };
    assert_eq!(c.describe_relation(&relation).await.unwrap(), columns);
    let describe = s
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(describe.body.unwrap()["statement"]
        .as_str()
        .unwrap()
        .ends_with("limit 0"));

    // An unknown relation: the stand-in's 422 "does not exist or not authorized".
    let missing = RelationRef {
        rendered: "analytics.nope".into(),
        ..relation
    };
    let e = c.describe_relation(&missing).await.unwrap_err();
    assert!(matches!(e, WarehouseError::UnknownRelation { .. }), "{e:?}");
}

#[tokio::test]
async fn scalar_row_reads_counts() {
    let s = SnowflakeStandIn::start().await;
    s.on(
        "count(distinct id)",
        Script::Rows {
            table: Table {
                row_type: vec![
                    Table::column("ROWS", "fixed", Some(18), Some(0)),
                    Table::column("KEYS", "fixed", Some(18), Some(0)),
                    Table::column("NULLS", "fixed", Some(18), Some(0)),
                ],
                partitions: vec![vec![vec![Some("10".into()), Some("9".into()), None]]],
            },
            running_polls: 1,
        },
    );
    let counts = key_pair(&s)
        .scalar_row(
            &query("select count(*), count(distinct id), null from t"),
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(counts, [Some(10), Some(9), None]);
}

async fn error_of(s: &SnowflakeStandIn, script: Script) -> WarehouseError {
    s.on("from failing", script);
    rows(
        key_pair(s).as_ref(),
        "select * from failing",
        &QueryOptions::default(),
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn documented_errors_are_classified() {
    let s = SnowflakeStandIn::start().await;
    let fail = |status: u16, body: Value, retry_after: Option<&str>| Script::Fail {
        status,
        body,
        retry_after: retry_after.map(str::to_string),
    };
    // 422 QueryFailureStatus (verbatim docs example).
    let e = error_of(
        &s,
        fail(422, fixture("post-statements-422-compile-error.json"), None),
    )
    .await;
    assert!(
        matches!(e, WarehouseError::QueryFailed { code: Some(ref c), ref message } if c == "000904" && message.contains("invalid identifier 'AFAF'")),
        "{e:?}"
    );
    // 422 while polling (after a 202).
    let e = error_of(
        &s,
        Script::FailWhilePolling {
            running_polls: 1,
            status: 422,
            body: fixture("post-statements-422-multi-statement-failed.json"),
        },
    )
    .await;
    assert!(
        matches!(e, WarehouseError::QueryFailed { code: Some(ref c), .. } if c == "100132"),
        "{e:?}"
    );
    // 429 with Retry-After (seconds and HTTP-date).
    let e = error_of(
        &s,
        fail(429, fixture("error-429-too-many-requests.json"), Some("2")),
    )
    .await;
    assert!(
        matches!(e, WarehouseError::RateLimited { retry_after: Some(d), ref detail } if d == Duration::from_secs(2) && detail.contains("390505")),
        "{e:?}"
    );
    assert!(e.is_transient());
    let e = error_of(
        &s,
        fail(
            429,
            fixture("error-429-too-many-requests.json"),
            Some("Wed, 21 Oct 2015 07:28:00 GMT"),
        ),
    )
    .await;
    assert!(
        matches!(
            e,
            WarehouseError::RateLimited {
                retry_after: Some(Duration::ZERO),
                ..
            }
        ),
        "{e:?}"
    );
    let e = error_of(
        &s,
        fail(429, fixture("error-429-too-many-requests.json"), None),
    )
    .await;
    assert!(
        matches!(
            e,
            WarehouseError::RateLimited {
                retry_after: None,
                ..
            }
        ),
        "{e:?}"
    );
    // 408: the statement timeout.
    let e = error_of(
        &s,
        fail(408, fixture("post-statements-408-timeout.json"), None),
    )
    .await;
    assert_eq!(
        e,
        WarehouseError::Timeout {
            after: QueryOptions::default().statement_timeout
        }
    );
    // 400 invalid payload, 401, 403, 404.
    let e = error_of(
        &s,
        fail(400, fixture("error-400-invalid-payload.json"), None),
    )
    .await;
    assert!(
        matches!(e, WarehouseError::Protocol { ref detail } if detail.contains("390142")),
        "{e:?}"
    );
    let e = error_of(&s, fail(401, fixture("error-401-invalid-oauth.json"), None)).await;
    assert!(matches!(e, WarehouseError::Authentication { .. }), "{e:?}");
    let e = error_of(
        &s,
        fail(403, json!({"code": "390102", "message": "forbidden"}), None),
    )
    .await;
    assert!(matches!(e, WarehouseError::Authentication { .. }), "{e:?}");
    let e = error_of(&s, fail(404, json!({}), None)).await;
    assert!(
        matches!(e, WarehouseError::Protocol { ref detail } if detail.contains("404")),
        "{e:?}"
    );
    // Privileges and missing objects named in 422 messages.
    let e = error_of(
        &s,
        fail(
            422,
            json!({"code": "003001", "sqlState": "42501", "message": "SQL access control error:\nInsufficient privileges to operate on table 'CUSTOMERS'", "statementHandle": "h"}),
            None,
        ),
    )
    .await;
    assert!(
        matches!(e, WarehouseError::MissingPrivilege { .. }),
        "{e:?}"
    );
    let e = error_of(
        &s,
        fail(
            422,
            json!({"code": "000606", "sqlState": "57P03", "message": "No active warehouse selected in the current session.  Select an active warehouse with the 'use warehouse' command.", "statementHandle": "h"}),
            None,
        ),
    )
    .await;
    assert_eq!(
        e,
        WarehouseError::UnknownWarehouse {
            name: WAREHOUSE.into()
        }
    );
}

#[tokio::test]
async fn cancel_sends_the_cancel_request() {
    let s = SnowflakeStandIn::start().await;
    s.on("from slow", Script::Hang);
    let c = key_pair(&s);
    let options = QueryOptions::default();
    let cancel = options.cancel.clone();
    let run = tokio::spawn(async move { rows(c.as_ref(), "select * from slow", &options).await });
    wait_for("a status poll", || {
        s.requests().iter().any(|r| r.method == "GET")
    })
    .await;
    cancel.cancel();
    let e = run.await.unwrap().unwrap_err();
    assert_eq!(e, WarehouseError::Cancelled);
    let cancelled = s.cancelled();
    assert_eq!(cancelled.len(), 1);
    let cancel_request = s
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/cancel"))
        .unwrap();
    assert_eq!(
        cancel_request.path,
        format!("/api/v2/statements/{}/cancel", cancelled[0])
    );
    assert_eq!(cancel_request.method, "POST");
}

#[tokio::test]
async fn client_side_timeout_cancels_the_statement() {
    let s = SnowflakeStandIn::start().await;
    s.on("from slow", Script::Hang);
    let options = QueryOptions {
        statement_timeout: Duration::from_millis(700),
        ..QueryOptions::default()
    };
    let e = rows(key_pair(&s).as_ref(), "select * from slow", &options)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WarehouseError::Timeout {
            after: Duration::from_millis(700)
        }
    );
    assert_eq!(s.cancelled().len(), 1);
    // The server-side timeout went with the statement too (rounded up to whole seconds).
    let post = s
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(post.body.unwrap()["timeout"], 1);
}

#[tokio::test]
async fn lost_answers_are_resubmitted_with_the_same_request_id() {
    let s = SnowflakeStandIn::start().await;
    s.on(
        "from analytics.customers",
        Script::Rows {
            table: typed_table(false),
            running_polls: 0,
        },
    );
    s.fail_next_posts(&[503, 502]);
    let batches = rows(
        key_pair(&s).as_ref(),
        "select * from analytics.customers",
        &QueryOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 6);
    let posts: Vec<_> = s
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 3);
    let id = &posts[0].query["requestId"];
    assert!(posts.iter().all(|p| &p.query["requestId"] == id));
    assert_eq!(posts[0].query.get("retry"), None);
    assert_eq!(
        posts[1].query.get("retry").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        posts[2].query.get("retry").map(String::as_str),
        Some("true")
    );
    assert_eq!(s.executions(), 1, "the statement ran once");
}

#[tokio::test]
async fn throttled_polls_are_waited_out() {
    let s = SnowflakeStandIn::start().await;
    s.on(
        "from analytics.customers",
        Script::Rows {
            table: typed_table(false),
            running_polls: 1,
        },
    );
    s.throttle_polls(2);
    let batches = rows(
        key_pair(&s).as_ref(),
        "select * from analytics.customers",
        &QueryOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 6);
}

#[tokio::test]
async fn partitions_are_fetched_only_when_reached() {
    let s = SnowflakeStandIn::start().await;
    s.on(
        "from analytics.customers",
        Script::Rows {
            table: typed_table(false),
            running_polls: 0,
        },
    );
    let options = QueryOptions {
        batch_rows: 3,
        ..QueryOptions::default()
    };
    let c = key_pair(&s);
    let mut stream = c
        .stream(&query("select * from analytics.customers"), &options)
        .await
        .unwrap();
    let partition_gets = || {
        s.requests()
            .iter()
            .filter(|r| r.query.contains_key("partition"))
            .count()
    };
    // Partition 0 (3 rows) is the first batch: nothing fetched yet.
    let first = stream.batches.try_next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 3);
    assert_eq!(partition_gets(), 0);
    // The next batch needs partitions 1 and 2.
    let second = stream.batches.try_next().await.unwrap().unwrap();
    assert_eq!(second.num_rows(), 3);
    assert_eq!(partition_gets(), 2);
    assert!(stream.batches.try_next().await.unwrap().is_none());
}
