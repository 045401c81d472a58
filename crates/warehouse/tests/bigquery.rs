//! The BigQuery connector against the local stand-in (`test_support::bigquery`), which
//! follows `fixtures/wire/bigquery-rest-v2.md`: JWT bearer grant, `jobs.query` with
//! `useLegacySql: false`, `jobComplete=false` polling, pageToken paging, TableCell
//! decoding, the error envelope and `jobs.get` errorResult, `jobs.cancel`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use backflow_warehouse::test_support::bigquery::{self as standin, BigQueryStandIn};
use backflow_warehouse::types::LOGICAL_TYPE_KEY;
use backflow_warehouse::{
    connect, Connector, QueryOptions, ReadOnlyQuery, RelationRef, SecretMaterial, SourceSettings,
    WarehouseError, WarehouseKind,
};
use futures::TryStreamExt;
use secrecy::SecretString;

fn settings(standin: &BigQueryStandIn) -> SourceSettings {
    SourceSettings::from([
        ("project".to_string(), "standin-project".to_string()),
        ("location".to_string(), "US".to_string()),
        ("endpoint".to_string(), standin.endpoint()),
    ])
}

fn connector_with_key(standin: &BigQueryStandIn, key_file: String) -> Arc<dyn Connector> {
    connect(
        WarehouseKind::Bigquery,
        &settings(standin),
        SecretMaterial(SecretString::from(key_file)),
    )
    .unwrap()
}

fn connector(standin: &BigQueryStandIn) -> Arc<dyn Connector> {
    connector_with_key(standin, standin.key_file())
}

fn q(sql: &str) -> ReadOnlyQuery {
    ReadOnlyQuery::from_sql_for(WarehouseKind::Bigquery, sql).unwrap()
}

async fn collect(
    c: &Arc<dyn Connector>,
    sql: &str,
    options: &QueryOptions,
) -> Result<Vec<RecordBatch>, WarehouseError> {
    let stream = c.stream(&q(sql), options).await?;
    stream.batches.try_collect().await
}

/// Waits (with a deadline) until `check` holds on what the stand-in saw.
async fn eventually(standin: &BigQueryStandIn, check: impl Fn(&standin::Seen) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check(&standin.seen()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met: {:?}",
            standin.seen()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_jwt_grant_is_signed_with_the_documented_claims_and_the_token_is_cached() {
    let standin = BigQueryStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions::default();
    assert_eq!(
        c.scalar_row(&q("select 1"), &opts).await.unwrap(),
        vec![Some(1)]
    );
    assert_eq!(
        c.scalar_row(&q("select 1"), &opts).await.unwrap(),
        vec![Some(1)]
    );

    let seen = standin.seen();
    assert_eq!(seen.token_requests, 1, "the token is cached");
    assert_eq!(seen.rejected_assertions, 0);
    let claims = &seen.token_claims[0];
    assert_eq!(claims["iss"], standin::CLIENT_EMAIL);
    assert_eq!(claims["scope"], standin::SCOPE);
    assert_eq!(claims["aud"], standin.token_uri().as_str());
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
    let header = &seen.token_headers[0];
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], standin::PRIVATE_KEY_ID);
    // Every query said GoogleSQL explicitly and was wrapped read-only.
    assert_eq!(seen.queries.len(), 2);
    for body in &seen.queries {
        assert_eq!(body["useLegacySql"], false);
        assert_eq!(body["location"], "US");
        assert_eq!(body["formatOptions"]["useInt64Timestamp"], true);
        assert_eq!(body["jobTimeoutMs"], "300000");
        assert!(body["timeoutMs"].as_u64().unwrap() <= 10_000);
        assert!(body["query"]
            .as_str()
            .unwrap()
            .starts_with("select * from (\nselect 1\n) as backflow_q"));
    }
}

#[tokio::test]
async fn a_key_the_token_endpoint_cannot_verify_is_an_authentication_error() {
    let standin = BigQueryStandIn::start().await;
    let c = connector_with_key(
        &standin,
        standin.key_file_with(standin::OTHER_PRIVATE_KEY_PEM),
    );
    let err = c.test(None).await.unwrap_err();
    assert!(
        matches!(&err, WarehouseError::Authentication { detail } if detail.contains("invalid_grant: Invalid JWT Signature.")),
        "{err:?}"
    );
    assert_eq!(standin.seen().rejected_assertions, 1);
    assert!(standin.seen().queries.is_empty());
}

#[tokio::test]
async fn a_token_close_to_expiry_is_replaced_and_a_401_mints_a_new_one_once() {
    let standin = BigQueryStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions::default();
    // Lifetime under the 60 s refresh margin: every call mints a token.
    standin.set_token_lifetime(30);
    c.scalar_row(&q("select 1"), &opts).await.unwrap();
    c.scalar_row(&q("select 1"), &opts).await.unwrap();
    assert_eq!(standin.seen().token_requests, 2);

    standin.set_token_lifetime(3600);
    c.scalar_row(&q("select 1"), &opts).await.unwrap();
    assert_eq!(standin.seen().token_requests, 3);
    standin.revoke_tokens();
    c.scalar_row(&q("select 1"), &opts).await.unwrap();
    let seen = standin.seen();
    assert_eq!(seen.unauthorized, 1);
    assert_eq!(seen.token_requests, 4);
}

fn people(batches: &[RecordBatch]) -> Vec<(String, i64)> {
    batches
        .iter()
        .flat_map(|b| {
            let names = b.column(0).as_string::<i32>().clone();
            let ages = b.column(1).as_primitive::<Int64Type>().clone();
            (0..b.num_rows())
                .map(move |i| (names.value(i).to_string(), ages.value(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

const NINE_PEOPLE: [(&str, i64); 9] = [
    ("Whillma Phlyntstone", 27),
    ("Bhetty Rhubble", 28),
    ("Phred Phlyntstone", 32),
    ("Bharney Rhubble", 33),
    ("Pebbles Phlyntstone", 4),
    ("Bamm-Bamm Rhubble", 5),
    ("Joseph Rockhead", 32),
    ("Perry Masonry", 33),
    ("Dino", 1),
];

#[tokio::test]
async fn pages_are_read_in_order_by_page_token_and_recut_into_batches() {
    let standin = BigQueryStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions {
        batch_rows: 3,
        ..QueryOptions::default()
    };
    let stream = c
        .stream(&q("select full_name, age from people"), &opts)
        .await
        .unwrap();
    assert_eq!(stream.schema.field(0).data_type(), &DataType::Utf8);
    assert!(
        !stream.schema.field(0).is_nullable(),
        "full_name is REQUIRED"
    );
    let batches: Vec<RecordBatch> = stream.batches.try_collect().await.unwrap();
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .collect::<Vec<_>>(),
        vec![3, 3, 3]
    );
    let expected: Vec<(String, i64)> = NINE_PEOPLE
        .iter()
        .map(|(n, a)| (n.to_string(), *a))
        .collect();
    assert_eq!(people(&batches), expected);
    let seen = standin.seen();
    assert_eq!(seen.queries[0]["maxResults"], 3);
    let tokens: Vec<Option<&str>> = seen
        .results_calls
        .iter()
        .map(|(_, p)| p.get("pageToken").map(String::as_str))
        .collect();
    assert_eq!(tokens, vec![Some("page-2"), Some("page-3")]);
    for (_, params) in &seen.results_calls {
        assert_eq!(
            params.get("location").map(String::as_str),
            Some("response-location")
        );
        assert_eq!(params.get("maxResults").map(String::as_str), Some("3"));
    }
}

#[tokio::test]
async fn an_incomplete_job_is_polled_until_complete_then_paged() {
    let standin = BigQueryStandIn::start().await;
    let c = connector(&standin);
    let batches = collect(
        &c,
        "select full_name, age from slow_people",
        &QueryOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(people(&batches).len(), 9);
    let seen = standin.seen();
    let polls = seen
        .results_calls
        .iter()
        .filter(|(_, p)| !p.contains_key("pageToken"))
        .count();
    assert_eq!(polls, 3, "two incomplete answers, then the complete one");
    assert_eq!(seen.job_gets.len(), 2, "jobs.get between incomplete polls");
    assert!(seen
        .results_calls
        .iter()
        .all(|(_, p)| p.contains_key("location")));
}

#[tokio::test]
async fn typed_cells_become_the_documented_arrow_values() {
    let standin = BigQueryStandIn::start().await;
    let c = connector(&standin);
    let batches = collect(&c, "select * from cells", &QueryOptions::default())
        .await
        .unwrap();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    let types: Vec<DataType> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        vec![
            DataType::Boolean,
            DataType::Int64,
            DataType::Float64,
            DataType::Decimal128(38, 9),
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
        ]
    );
    assert!(b.column(0).as_boolean().value(0));
    assert_eq!(b.column(1).as_primitive::<Int64Type>().value(0), 42);
    assert_eq!(b.column(2).as_primitive::<Float64Type>().value(0), 1.5);
    assert_eq!(
        b.column(3).as_primitive::<Decimal128Type>().value(0),
        123_450_000_000
    );
    assert_eq!(b.column(4).as_string::<i32>().value(0), "hello");
    assert_eq!(b.column(5).as_binary::<i32>().value(0), b"hello");
    // 2024-01-31 is day 19753 after 1970-01-01.
    assert_eq!(b.column(6).as_primitive::<Date32Type>().value(0), 19753);
    assert_eq!(
        b.column(7)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_706_704_496_789_000
    );
    assert_eq!(
        b.column(8)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_706_704_496_789_000
    );
    assert_eq!(b.column(9).as_string::<i32>().value(0), r#"["a","b"]"#);
    assert_eq!(
        b.column(10).as_string::<i32>().value(0),
        r#"{"city":"Paris","zip":"75001"}"#
    );
    assert!(b.column(11).is_null(0));
    let schema = b.schema();
    for json_col in [9, 10] {
        assert_eq!(
            schema
                .field(json_col)
                .metadata()
                .get(LOGICAL_TYPE_KEY)
                .map(String::as_str),
            Some("json")
        );
    }
    assert!(schema.field(4).metadata().is_empty());
}

#[tokio::test]
async fn each_documented_error_shape_maps_to_its_warehouse_error() {
    let standin = BigQueryStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions::default();
    let run = |sql: &'static str| {
        let c = c.clone();
        let opts = opts.clone();
        async move { collect(&c, sql, &opts).await.unwrap_err() }
    };

    let e = run("select * from invalid").await;
    assert!(
        matches!(&e, WarehouseError::QueryFailed { code: Some(code), message }
            if code == "invalidQuery" && message.starts_with("Unrecognized name")),
        "{e:?}"
    );
    let e = run("select * from rate_limit").await;
    assert!(
        matches!(&e, WarehouseError::RateLimited { retry_after: None, detail } if detail.starts_with("Exceeded rate limits")),
        "{e:?}"
    );
    assert!(e.is_transient());
    let e = run("select * from quota").await;
    assert!(
        matches!(e, WarehouseError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(600)),
        "{e:?}"
    );
    let e = run("select * from missing_table").await;
    assert_eq!(
        e,
        WarehouseError::UnknownRelation {
            name: "my-project:people.missing_table".into()
        }
    );
    let e = run("select * from denied").await;
    assert!(
        matches!(e, WarehouseError::MissingPrivilege { .. }),
        "{e:?}"
    );
    // jobs.get answered 200 with status.errorResult.
    let e = run("select * from fails_later").await;
    assert_eq!(
        e,
        WarehouseError::QueryFailed {
            code: Some("invalidQuery".into()),
            message: "Unrecognized name: agee at [1:18]".into()
        }
    );
}

#[tokio::test]
async fn cancelling_sends_jobs_cancel() {
    let standin = BigQueryStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions::default();
    let cancel = opts.cancel.clone();
    let running = tokio::spawn({
        let c = c.clone();
        let opts = opts.clone();
        async move { collect(&c, "select * from never_finishes", &opts).await }
    });
    eventually(&standin, |s| !s.job_gets.is_empty()).await;
    cancel.cancel();
    let e = running.await.unwrap().unwrap_err();
    assert_eq!(e, WarehouseError::Cancelled);
    eventually(&standin, |s| s.cancels.len() == 1).await;
    let seen = standin.seen();
    assert_eq!(seen.cancels[0], seen.job_gets[0]);
}

#[tokio::test]
async fn the_statement_timeout_cancels_the_job() {
    let standin = BigQueryStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions {
        statement_timeout: Duration::from_millis(700),
        ..QueryOptions::default()
    };
    let e = collect(&c, "select * from never_finishes", &opts)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WarehouseError::Timeout {
            after: Duration::from_millis(700)
        }
    );
    eventually(&standin, |s| s.cancels.len() == 1).await;
    assert_eq!(standin.seen().queries[0]["jobTimeoutMs"], "700");
}

#[tokio::test]
async fn describe_reads_the_schema_of_a_limit_0_query_and_test_checks_the_dataset() {
    let standin = BigQueryStandIn::start().await;
    let c = connector(&standin);
    let relation = RelationRef {
        database: "my-project".into(),
        schema: "people".into(),
        identifier: "people".into(),
        rendered: "`my-project`.`people`.`people`".into(),
    };
    let columns = c.describe_relation(&relation).await.unwrap();
    let summary: Vec<(&str, &str, &DataType, bool)> = columns
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.warehouse_type.as_str(),
                &c.data_type,
                c.nullable,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("full_name", "STRING", &DataType::Utf8, false),
            ("age", "INT64", &DataType::Int64, true)
        ]
    );
    let sent = standin.seen().queries[0]["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sent,
        "select * from (\nselect * from `my-project`.`people`.`people`\n) as backflow_q limit 0"
    );

    c.test(Some("people")).await.unwrap();
    let e = c.test(Some("nope")).await.unwrap_err();
    assert_eq!(
        e,
        WarehouseError::UnknownRelation {
            name: "standin-project:nope".into()
        }
    );
}

#[tokio::test]
async fn max_rows_adds_a_limit_and_scalar_rows_read_nulls() {
    let standin = BigQueryStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions {
        max_rows: Some(3),
        ..QueryOptions::default()
    };
    collect(&c, "select full_name, age from people", &opts)
        .await
        .unwrap();
    let sent = standin.seen().queries[0]["query"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        sent,
        "select * from (\nselect full_name, age from people\n) as backflow_q limit 3"
    );

    let counts = c
        .scalar_row(
            &q("select count(*) as rows, null as nulls"),
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(counts, vec![Some(9), None]);
}

#[tokio::test]
async fn settings_are_checked_before_dialling() {
    let standin = BigQueryStandIn::start().await;
    let secret = || SecretMaterial(SecretString::from(standin.key_file()));
    let mut s = settings(&standin);
    s.insert("warehouse".into(), "x".into());
    let e = connect(WarehouseKind::Bigquery, &s, secret()).unwrap_err();
    assert!(
        matches!(e, WarehouseError::Settings { ref key, .. } if key == "warehouse"),
        "{e:?}"
    );
    let mut s = settings(&standin);
    s.remove("project");
    let e = connect(WarehouseKind::Bigquery, &s, secret()).unwrap_err();
    assert!(
        matches!(e, WarehouseError::Settings { ref key, .. } if key == "project"),
        "{e:?}"
    );
    let e = connect(
        WarehouseKind::Bigquery,
        &settings(&standin),
        SecretMaterial(SecretString::from(
            "{\"type\":\"service_account\"}".to_string(),
        )),
    )
    .unwrap_err();
    assert!(
        matches!(&e, WarehouseError::Credential { reason } if reason.contains("missing field")),
        "{e:?}"
    );
}
