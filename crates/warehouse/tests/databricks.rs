//! The Databricks connector against the local stand-in (`test_support::databricks`),
//! which follows `fixtures/wire/databricks-sql-statement-execution.md`: PAT bearer auth,
//! wait_timeout 0 or 5–50 s, PENDING → RUNNING → SUCCEEDED polling, chunks by
//! `next_chunk_internal_link`, 200 with FAILED, 429/503 with Retry-After, cancel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use backflow_warehouse::test_support::databricks::{self as standin, DatabricksStandIn};
use backflow_warehouse::types::LOGICAL_TYPE_KEY;
use backflow_warehouse::{
    connect, Connector, QueryOptions, ReadOnlyQuery, RelationRef, SecretMaterial, SourceSettings,
    WarehouseError, WarehouseKind,
};
use futures::TryStreamExt;
use secrecy::SecretString;

fn settings(standin: &DatabricksStandIn, warehouse_id: &str) -> SourceSettings {
    SourceSettings::from([
        (
            "host".to_string(),
            "dbc-standin.cloud.databricks.com".to_string(),
        ),
        ("warehouse_id".to_string(), warehouse_id.to_string()),
        ("catalog".to_string(), "main".to_string()),
        ("schema".to_string(), "default".to_string()),
        ("endpoint".to_string(), standin.endpoint()),
    ])
}

fn connector_as(
    standin: &DatabricksStandIn,
    token: &str,
    warehouse_id: &str,
) -> Arc<dyn Connector> {
    connect(
        WarehouseKind::Databricks,
        &settings(standin, warehouse_id),
        SecretMaterial(SecretString::from(token.to_string())),
    )
    .unwrap()
}

fn connector(standin: &DatabricksStandIn) -> Arc<dyn Connector> {
    connector_as(standin, standin::TOKEN, standin::WAREHOUSE_ID)
}

fn q(sql: &str) -> ReadOnlyQuery {
    ReadOnlyQuery::from_sql_for(WarehouseKind::Databricks, sql).unwrap()
}

async fn collect(
    c: &Arc<dyn Connector>,
    sql: &str,
    options: &QueryOptions,
) -> Result<Vec<RecordBatch>, WarehouseError> {
    let stream = c.stream(&q(sql), options).await?;
    stream.batches.try_collect().await
}

async fn eventually(standin: &DatabricksStandIn, check: impl Fn(&standin::Seen) -> bool) {
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
async fn a_pending_statement_is_polled_and_its_chunks_read_in_order() {
    let standin = DatabricksStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions {
        batch_rows: 2,
        ..QueryOptions::default()
    };
    let sql = "SELECT concat('id-', id) AS strCol, id AS intCol, null AS nullCol FROM range(1, 6)";
    let stream = c.stream(&q(sql), &opts).await.unwrap();
    let types: Vec<DataType> = stream
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(types, vec![DataType::Utf8, DataType::Int64, DataType::Utf8]);
    let batches: Vec<RecordBatch> = stream.batches.try_collect().await.unwrap();
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    let mut rows = Vec::new();
    for b in &batches {
        let s = b.column(0).as_string::<i32>();
        let i = b.column(1).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            rows.push((s.value(r).to_string(), i.value(r)));
            assert!(b.column(2).is_null(r));
        }
    }
    let expected: Vec<(String, i64)> = (1..=5).map(|n| (format!("id-{n}"), n)).collect();
    assert_eq!(rows, expected);

    let seen = standin.seen();
    let submit = &seen.submits[0];
    assert_eq!(submit["warehouse_id"], standin::WAREHOUSE_ID);
    assert_eq!(submit["catalog"], "main");
    assert_eq!(submit["schema"], "default");
    assert_eq!(submit["wait_timeout"], "10s");
    assert_eq!(submit["on_wait_timeout"], "CONTINUE");
    assert_eq!(submit["disposition"], "INLINE");
    assert_eq!(submit["format"], "JSON_ARRAY");
    assert!(submit.get("row_limit").is_none());
    assert_eq!(
        submit["statement"],
        format!("select * from (\n{sql}\n) as backflow_q")
    );
    assert_eq!(seen.polls.len(), 2, "PENDING, RUNNING, then SUCCEEDED");
    let id = &seen.polls[0];
    assert_eq!(
        seen.chunk_fetches,
        vec![format!("/api/2.0/sql/statements/{id}/result/chunks/1")]
    );
}

#[tokio::test]
async fn typed_cells_become_the_documented_arrow_values() {
    let standin = DatabricksStandIn::start().await;
    let c = connector(&standin);
    let batches = collect(&c, "select * from typed", &QueryOptions::default())
        .await
        .unwrap();
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
            DataType::Int64,
            DataType::Float64,
            DataType::Decimal128(10, 2),
            DataType::Utf8,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Binary,
            DataType::Utf8,
            DataType::Utf8,
            DataType::Utf8,
        ]
    );
    assert!(b.column(0).as_boolean().value(0));
    assert_eq!(b.column(1).as_primitive::<Int64Type>().value(0), 42);
    assert_eq!(
        b.column(2).as_primitive::<Int64Type>().value(0),
        9_007_199_254_740_993
    );
    assert_eq!(b.column(3).as_primitive::<Float64Type>().value(0), 1.5);
    assert_eq!(
        b.column(4).as_primitive::<Decimal128Type>().value(0),
        12_345
    );
    assert_eq!(b.column(5).as_string::<i32>().value(0), "hello");
    assert_eq!(b.column(6).as_primitive::<Date32Type>().value(0), 19753);
    assert_eq!(
        b.column(7)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_706_704_496_789_000
    );
    assert_eq!(b.column(8).as_binary::<i32>().value(0), b"hello");
    assert_eq!(b.column(9).as_string::<i32>().value(0), r#"["a","b"]"#);
    assert_eq!(
        b.column(10).as_string::<i32>().value(0),
        r#"{"city":"Paris"}"#
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
}

#[tokio::test]
async fn failures_answered_200_with_state_failed_are_mapped() {
    let standin = DatabricksStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions::default();

    let e = collect(&c, "select * from syntax", &opts)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WarehouseError::QueryFailed {
            code: Some("PARSE_SYNTAX_ERROR".into()),
            message: "[PARSE_SYNTAX_ERROR] Syntax error at or near ...".into()
        }
    );
    let e = collect(&c, "select * from missing_table", &opts)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WarehouseError::UnknownRelation {
            name: "main.default.missing_table".into()
        }
    );
    let e = collect(&c, "select * from denied", &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(e, WarehouseError::MissingPrivilege { .. }),
        "{e:?}"
    );
    // FAILED found while polling, not on submit.
    let e = collect(&c, "select * from fails_later", &opts)
        .await
        .unwrap_err();
    assert!(matches!(e, WarehouseError::QueryFailed { .. }), "{e:?}");
    assert_eq!(standin.seen().polls.len(), 1);
    let e = collect(&c, "select * from closed", &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(e, WarehouseError::QueryFailed { code: Some(ref c), .. } if c == "CLOSED"),
        "{e:?}"
    );
}

#[tokio::test]
async fn rate_limits_carry_the_retry_after_seconds() {
    let standin = DatabricksStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions::default();
    let e = collect(&c, "select * from throttle", &opts)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WarehouseError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
            detail: "Too many requests. Please wait a moment and try again.".into()
        }
    );
    let e = collect(&c, "select * from unavailable", &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(e, WarehouseError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3)),
        "{e:?}"
    );
}

#[tokio::test]
async fn auth_and_warehouse_errors_are_told_apart() {
    let standin = DatabricksStandIn::start().await;
    let e = connector_as(&standin, "dapi-wrong", standin::WAREHOUSE_ID)
        .test(None)
        .await
        .unwrap_err();
    assert!(matches!(e, WarehouseError::Authentication { .. }), "{e:?}");
    assert_eq!(standin.seen().unauthorized, 1);
    let e = connector_as(
        &standin,
        standin::TOKEN_WITHOUT_WAREHOUSE_ACCESS,
        standin::WAREHOUSE_ID,
    )
    .test(None)
    .await
    .unwrap_err();
    assert!(
        matches!(e, WarehouseError::MissingPrivilege { .. }),
        "{e:?}"
    );
    let e = connector_as(&standin, standin::TOKEN, "nope")
        .test(None)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WarehouseError::UnknownWarehouse {
            name: "nope".into()
        }
    );

    let c = connector(&standin);
    c.test(Some("analytics")).await.unwrap();
    let submits = standin.seen().submits;
    assert_eq!(submits.last().unwrap()["schema"], "analytics");
    let e = c.test(Some("missing_schema")).await.unwrap_err();
    assert_eq!(
        e,
        WarehouseError::UnknownRelation {
            name: "main.missing_schema".into()
        }
    );
}

#[tokio::test]
async fn cancelling_posts_cancel_and_the_timeout_does_too() {
    let standin = DatabricksStandIn::start().await;
    let c = connector(&standin);
    let opts = QueryOptions::default();
    let cancel = opts.cancel.clone();
    let running = tokio::spawn({
        let c = c.clone();
        let opts = opts.clone();
        async move { collect(&c, "select * from never_finishes", &opts).await }
    });
    eventually(&standin, |s| !s.polls.is_empty()).await;
    cancel.cancel();
    assert_eq!(
        running.await.unwrap().unwrap_err(),
        WarehouseError::Cancelled
    );
    eventually(&standin, |s| s.cancels.len() == 1).await;
    assert_eq!(standin.seen().cancels[0], standin.seen().polls[0]);

    let opts = QueryOptions {
        statement_timeout: Duration::from_millis(600),
        ..QueryOptions::default()
    };
    let e = collect(&c, "select * from never_finishes", &opts)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        WarehouseError::Timeout {
            after: Duration::from_millis(600)
        }
    );
    eventually(&standin, |s| s.cancels.len() == 2).await;
    // Under 5 s left: the submit is asynchronous.
    assert_eq!(standin.seen().submits[1]["wait_timeout"], "0s");
}

#[tokio::test]
async fn describe_max_rows_and_scalar_rows() {
    let standin = DatabricksStandIn::start().await;
    let c = connector(&standin);
    let relation = RelationRef {
        database: "main".into(),
        schema: "default".into(),
        identifier: "typed".into(),
        rendered: "`main`.`default`.`typed`".into(),
    };
    let columns = c.describe_relation(&relation).await.unwrap();
    assert_eq!(columns.len(), 12);
    assert_eq!(columns[4].warehouse_type, "DECIMAL(10,2)");
    assert_eq!(columns[4].data_type, DataType::Decimal128(10, 2));
    assert_eq!(
        standin.seen().submits[0]["statement"],
        "select * from (\nselect * from `main`.`default`.`typed`\n) as backflow_q limit 0"
    );

    let opts = QueryOptions {
        max_rows: Some(3),
        ..QueryOptions::default()
    };
    collect(&c, "select * from typed", &opts).await.unwrap();
    assert_eq!(standin.seen().submits[1]["row_limit"], 3);

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
    let standin = DatabricksStandIn::start().await;
    let token = || SecretMaterial(SecretString::from(standin::TOKEN.to_string()));
    let mut s = settings(&standin, standin::WAREHOUSE_ID);
    s.remove("warehouse_id");
    let e = connect(WarehouseKind::Databricks, &s, token()).unwrap_err();
    assert!(
        matches!(e, WarehouseError::Settings { ref key, .. } if key == "warehouse_id"),
        "{e:?}"
    );
    let mut s = settings(&standin, standin::WAREHOUSE_ID);
    s.insert("project".into(), "x".into());
    let e = connect(WarehouseKind::Databricks, &s, token()).unwrap_err();
    assert!(
        matches!(e, WarehouseError::Settings { ref key, .. } if key == "project"),
        "{e:?}"
    );
    let e = connect(
        WarehouseKind::Databricks,
        &settings(&standin, standin::WAREHOUSE_ID),
        SecretMaterial(SecretString::from("  ".to_string())),
    )
    .unwrap_err();
    assert!(matches!(e, WarehouseError::Credential { .. }), "{e:?}");
}
