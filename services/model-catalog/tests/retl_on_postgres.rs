//! Issue 9 acceptance 1, 3 and 4 on a real PostgreSQL warehouse, through the catalog's
//! gRPC handlers with the real Postgres connector: models built as tables in a test
//! schema; preview returns the right rows and Arrow types (and answers from its cache
//! the second time); a model whose compiled SQL writes fails inside the read-only
//! transaction with a clear error and changes nothing; the key check counts duplicates
//! and nulls; a missing key column fails naming it; a commit that removes the model
//! breaks the Reverse ETL model and a repairing commit clears it; the in-use guard
//! refuses a delete naming the sync.

use backflow_model_catalog::app::MIGRATIONS;
use backflow_model_catalog::grpc::preview::{ConnectorSource, PreviewContext, PreviewSettings};
use backflow_model_catalog::grpc::CatalogGrpc;
use backflow_model_catalog::store::CatalogStore;
use backflow_model_catalog::CatalogError;
use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;
use backflow_platform::testing;
use backflow_proto::catalog::v1 as pb;
use backflow_proto::catalog::v1::model_catalog_service_server::ModelCatalogService;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_warehouse::{Connector, SecretMaterial, WarehouseKind};
use sqlx::Connection;
use std::sync::Arc;
use tonic::{Code, Request};

const WS: &str = "ws-pg";
const CONN: &str = "conn-pg";
const SOURCE: &str = "src-pg";

/// Connects to the test warehouse database, as the catalog's warehouse access would.
#[derive(Debug)]
struct LocalPostgres {
    database: String,
}

#[tonic::async_trait]
impl ConnectorSource for LocalPostgres {
    async fn connector(
        &self,
        workspace_id: &str,
        source_id: &str,
    ) -> Result<Arc<dyn Connector>, CatalogError> {
        if workspace_id != WS || source_id != SOURCE {
            return Err(CatalogError::NotFound {
                kind: "warehouse source",
                id: source_id.into(),
            });
        }
        let settings = [
            ("host".to_string(), "127.0.0.1".to_string()),
            ("port".to_string(), "5432".to_string()),
            ("database".to_string(), self.database.clone()),
            ("user".to_string(), "postgres".to_string()),
            ("sslmode".to_string(), "disable".to_string()),
        ]
        .into();
        Ok(backflow_warehouse::connect(
            WarehouseKind::Postgres,
            &settings,
            SecretMaterial("unused-with-trust-auth".to_string().into()),
        )?)
    }
}

const WAREHOUSE_SQL: &[&str] = &[
    "CREATE SCHEMA analytics",
    "CREATE TABLE analytics.customers (id bigint, email text, signed_up date, score numeric(6,2), active boolean)",
    "INSERT INTO analytics.customers VALUES (1, 'a@example.com', '2024-01-01', 1.50, true), (2, 'b@example.com', NULL, NULL, false), (3, 'c@example.com', '2024-03-05', 10.25, true)",
    "CREATE TABLE analytics.orders (order_id integer, note text)",
    "INSERT INTO analytics.orders VALUES (1, 'x'), (1, 'y'), (2, 'z'), (NULL, 'n'), (3, 'w')",
];

fn model(database: &str, name: &str, sql: &str, yaml_columns: &[&str]) -> pb::Model {
    pb::Model {
        unique_id: format!("model.shop.{name}"),
        connection_id: CONN.into(),
        name: name.into(),
        database: database.into(),
        schema: "analytics".into(),
        alias: name.into(),
        relation_name: format!("\"{database}\".\"analytics\".\"{name}\""),
        materialized: "table".into(),
        compiled_sql: sql.into(),
        checksum: format!("sum-{name}-{sql}"),
        columns: yaml_columns
            .iter()
            .map(|c| pb::Column {
                name: (*c).into(),
                tests: if *c == "id" {
                    vec!["unique".into(), "not_null".into()]
                } else {
                    Vec::new()
                },
                origin: pb::ColumnOrigin::Yaml as i32,
                ..Default::default()
            })
            .collect(),
        primary_key_suggestions: if yaml_columns.contains(&"id") {
            vec!["id".into()]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

fn snapshot(database: &str, commit: &str, with_customers: bool) -> Vec<pb::Model> {
    let mut models = vec![
        model(
            database,
            "orders",
            "select order_id, note from analytics.orders",
            &[],
        ),
        model(database, "wipe", "delete from analytics.customers", &[]),
        model(
            database,
            "sneaky",
            "create table analytics.sneaky as select 1 as x",
            &[],
        ),
    ];
    if with_customers {
        models.push(model(
            database,
            "customers",
            "select id, email, signed_up, score, active from analytics.customers",
            &["id", "email"],
        ));
    }
    for m in &mut models {
        m.commit_sha = commit.into();
    }
    models
}

fn preview_request(unique_id: &str, mode: pb::QueryMode, limit: i32) -> pb::PreviewModelRequest {
    pb::PreviewModelRequest {
        workspace_id: WS.into(),
        connection_id: CONN.into(),
        unique_id: unique_id.into(),
        source_id: SOURCE.into(),
        query_mode: mode as i32,
        limit,
        ..Default::default()
    }
}

fn key_request(unique_id: &str, key: &[&str]) -> pb::CheckPrimaryKeyRequest {
    pb::CheckPrimaryKeyRequest {
        workspace_id: WS.into(),
        connection_id: CONN.into(),
        unique_id: unique_id.into(),
        source_id: SOURCE.into(),
        primary_key: key.iter().map(|k| k.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_key_check_following_and_guard_on_postgres() -> anyhow::Result<()> {
    let warehouse_url = testing::fresh_postgres_url("retl_wh").await?;
    let database = warehouse_url
        .rsplit_once('/')
        .map(|(_, name)| name.to_string())
        .unwrap_or_default();
    let mut warehouse = sqlx::PgConnection::connect(&warehouse_url).await?;
    for statement in WAREHOUSE_SQL {
        sqlx::query(statement).execute(&mut warehouse).await?;
    }

    let db = Database::connect(&testing::fresh_sqlite_url("retl_pg"), &MIGRATIONS).await?;
    let store = CatalogStore::new(db.clone(), Outbox::new());
    store
        .apply_connection_event(
            "test",
            "created",
            &gitsync::ConnectionChangedEvent {
                workspace_id: WS.into(),
                change: gitsync::ConnectionChange::Created as i32,
                connection: Some(gitsync::Connection {
                    id: CONN.into(),
                    workspace_id: WS.into(),
                    name: "shop".into(),
                    settings: Some(Default::default()),
                    settings_version: 1,
                    ..Default::default()
                }),
            },
        )
        .await?;
    store
        .record_snapshot(WS, CONN, "c1", &snapshot(&database, "c1", true))
        .await?;
    let mut source = backflow_model_catalog::store::SourceRecord::new(
        WS,
        "warehouse",
        pb::WarehouseKind::Postgres as i32,
        [("host".to_string(), "127.0.0.1".to_string())].into(),
        "cred-1",
    );
    source.id = SOURCE.into();
    store.create_source(&source).await?;
    let grpc = CatalogGrpc::new(store.clone()).with_preview(PreviewContext::new(
        Arc::new(LocalPostgres {
            database: database.clone(),
        }),
        PreviewSettings::default(),
    ));

    // preview: right rows, names and Arrow types; the second time from the cache
    let preview = grpc
        .preview_model(Request::new(preview_request(
            "model.shop.customers",
            pb::QueryMode::Relation,
            2,
        )))
        .await?
        .into_inner();
    let names: Vec<&str> = preview.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "email", "signed_up", "score", "active"]);
    let types: Vec<&str> = preview
        .columns
        .iter()
        .map(|c| c.arrow_type.as_str())
        .collect();
    assert_eq!(
        types,
        ["Int64", "Utf8", "Date32", "Decimal128(6, 2)", "Boolean"]
    );
    assert_eq!(preview.rows.len(), 2);
    assert!(!preview.from_cache);
    assert_eq!(
        preview.query,
        format!("select * from \"{database}\".\"analytics\".\"customers\"")
    );
    let mut rows: Vec<Vec<String>> = preview.rows.iter().map(|r| r.cells.clone()).collect();
    rows.sort();
    assert_eq!(
        rows[0],
        ["1", "a@example.com", "2024-01-01", "1.50", "true"]
    );
    assert_eq!(rows[1][0], "2");
    let second = &preview
        .rows
        .iter()
        .find(|r| r.cells[0] == "2")
        .map(|r| r.null_cells.clone());
    assert_eq!(
        second.as_deref(),
        Some(&[false, false, true, true, false][..])
    );
    let again = grpc
        .preview_model(Request::new(preview_request(
            "model.shop.customers",
            pb::QueryMode::Relation,
            2,
        )))
        .await?
        .into_inner();
    assert!(again.from_cache);
    let compiled = grpc
        .preview_model(Request::new(preview_request(
            "model.shop.customers",
            pb::QueryMode::CompiledSql,
            10,
        )))
        .await?
        .into_inner();
    assert_eq!(compiled.rows.len(), 3);
    let too_many = grpc
        .preview_model(Request::new(preview_request(
            "model.shop.customers",
            pb::QueryMode::Relation,
            101,
        )))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    assert!(
        too_many.message().contains("between 1 and 100"),
        "{too_many:?}"
    );

    // SQL that writes fails inside the read-only transaction and changes nothing
    for writer in ["model.shop.wipe", "model.shop.sneaky"] {
        let refused = grpc
            .preview_model(Request::new(preview_request(
                writer,
                pb::QueryMode::CompiledSql,
                10,
            )))
            .await
            .unwrap_err();
        assert_ne!(refused.code(), Code::Internal, "{writer}: {refused:?}");
        assert!(!refused.message().is_empty(), "{writer}: {refused:?}");
        eprintln!("{writer}: {:?} {}", refused.code(), refused.message());
    }
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM analytics.customers")
        .fetch_one(&mut warehouse)
        .await?;
    assert_eq!(count, 3);
    let (sneaky,): (Option<String>,) =
        sqlx::query_as("SELECT to_regclass('analytics.sneaky')::text")
            .fetch_one(&mut warehouse)
            .await?;
    assert_eq!(sneaky, None);

    // the key check: duplicates and nulls counted, with an example
    let check = grpc
        .check_primary_key(Request::new(key_request(
            "model.shop.orders",
            &["order_id"],
        )))
        .await?
        .into_inner();
    assert_eq!(
        (
            check.row_count,
            check.distinct_keys,
            check.duplicate_keys,
            check.null_keys
        ),
        (5, 3, 1, 1)
    );
    assert!(!check.unique);
    assert_eq!(check.examples.len(), 1);
    assert_eq!(check.examples[0].key, ["1"]);
    assert_eq!(check.examples[0].count, 2);
    let unique = grpc
        .check_primary_key(Request::new(key_request("model.shop.customers", &["id"])))
        .await?
        .into_inner();
    assert!(unique.unique);
    assert_eq!((unique.row_count, unique.distinct_keys), (3, 3));
    let missing = grpc
        .check_primary_key(Request::new(key_request("model.shop.orders", &["nope"])))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(missing.message().contains("\"nope\""), "{missing:?}");

    // columns: described from the warehouse (no YAML), id-like suggested
    let described = grpc
        .describe_model_columns(Request::new(pb::DescribeModelColumnsRequest {
            workspace_id: WS.into(),
            connection_id: CONN.into(),
            unique_id: "model.shop.orders".into(),
            ..Default::default()
        }))
        .await;
    // DescribeModelColumns uses the connection's source; this connection names none.
    let described = described.unwrap_err();
    assert_eq!(described.code(), Code::FailedPrecondition);
    assert!(
        described
            .message()
            .contains(&format!("git connection {CONN} names no warehouse source")),
        "{described:?}"
    );

    // create: the key must be a column; then following and the guard
    let create = |key: &str| pb::CreateRetlModelRequest {
        workspace_id: WS.into(),
        name: format!("customers by {key}"),
        connection_id: CONN.into(),
        model_unique_id: "model.shop.customers".into(),
        primary_key: vec![key.into()],
        source_id: SOURCE.into(),
        query_mode: pb::QueryMode::Relation as i32,
    };
    let refused = grpc
        .create_retl_model(Request::new(create("nope")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("\"nope\""), "{refused:?}");
    let created = grpc
        .create_retl_model(Request::new(create("id")))
        .await?
        .into_inner()
        .model
        .unwrap_or_default();
    assert_eq!(created.status, pb::RetlModelStatus::Ok as i32);
    assert_eq!(created.commit_sha, "c1");
    // resolve_run: the one statement, the source, the YAML columns; described ones
    // from the warehouse when the model declares none
    let resolve = |id: &str| pb::ResolveRetlModelRunRequest {
        workspace_id: WS.into(),
        retl_model_id: id.into(),
    };
    let resolved = grpc
        .resolve_retl_model_run(Request::new(resolve(&created.id)))
        .await?
        .into_inner();
    assert_eq!(
        resolved.sql,
        format!("select * from \"{database}\".\"analytics\".\"customers\"")
    );
    assert_eq!(
        resolved.source.as_ref().map(|s| s.id.as_str()),
        Some(SOURCE)
    );
    assert_eq!(
        resolved.source.as_ref().map(|s| s.credential_id.as_str()),
        Some("cred-1")
    );
    let columns: Vec<&str> = resolved.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["id", "email"]);
    assert_eq!(
        resolved.model.as_ref().map(|m| m.primary_key.clone()),
        Some(vec!["id".to_string()])
    );
    let orders = grpc
        .create_retl_model(Request::new(pb::CreateRetlModelRequest {
            workspace_id: WS.into(),
            name: "orders".into(),
            connection_id: CONN.into(),
            model_unique_id: "model.shop.orders".into(),
            primary_key: vec!["order_id".into()],
            source_id: SOURCE.into(),
            query_mode: pb::QueryMode::CompiledSql as i32,
        }))
        .await?
        .into_inner()
        .model
        .unwrap_or_default();
    let resolved_orders = grpc
        .resolve_retl_model_run(Request::new(resolve(&orders.id)))
        .await?
        .into_inner();
    assert_eq!(
        resolved_orders.sql,
        "select order_id, note from analytics.orders"
    );
    let described: Vec<(&str, &str)> = resolved_orders
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.data_type.as_str()))
        .collect();
    assert_eq!(described, [("order_id", "integer"), ("note", "text")]);
    let unknown = grpc
        .resolve_retl_model_run(Request::new(resolve("nope")))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let get = |id: String| pb::GetRetlModelRequest {
        workspace_id: WS.into(),
        retl_model_id: id,
    };
    store
        .record_snapshot(WS, CONN, "c2", &snapshot(&database, "c2", false))
        .await?;
    let broken = grpc
        .get_retl_model(Request::new(get(created.id.clone())))
        .await?
        .into_inner()
        .model
        .unwrap_or_default();
    assert_eq!(broken.status, pb::RetlModelStatus::Broken as i32);
    assert_eq!(broken.broken_at_commit, "c2");
    assert!(broken.broken_reason.contains("removed"), "{broken:?}");
    let refused = grpc
        .resolve_retl_model_run(Request::new(resolve(&created.id)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("broken at commit c2"),
        "{refused:?}"
    );
    store
        .record_snapshot(WS, CONN, "c3", &snapshot(&database, "c3", true))
        .await?;
    let repaired = grpc
        .get_retl_model(Request::new(get(created.id.clone())))
        .await?
        .into_inner()
        .model
        .unwrap_or_default();
    assert_eq!(repaired.status, pb::RetlModelStatus::Ok as i32);
    assert_eq!(repaired.commit_sha, "c3");
    assert!(repaired.broken_reason.is_empty());

    store
        .apply_sync_changed(
            "test",
            "sync-msg",
            &backflow_proto::retl::v1::SyncChangedEvent {
                workspace_id: WS.into(),
                sync_id: "sync-9".into(),
                retl_model_id: created.id.clone(),
                enabled: true,
                version: 1,
                sync_name: "crm contacts".into(),
                ..Default::default()
            },
        )
        .await?;
    let refused = grpc
        .delete_retl_model(Request::new(pb::DeleteRetlModelRequest {
            workspace_id: WS.into(),
            retl_model_id: created.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("crm contacts (sync-9)"),
        "{refused:?}"
    );
    let in_use = grpc
        .get_retl_model(Request::new(get(created.id.clone())))
        .await?
        .into_inner()
        .model
        .unwrap_or_default();
    assert_eq!(in_use.used_by_sync_ids, ["sync-9"]);
    // another workspace sees nothing
    let other = grpc
        .get_retl_model(Request::new(pb::GetRetlModelRequest {
            workspace_id: "ws-other".into(),
            retl_model_id: created.id,
        }))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    db.close().await;
    Ok(())
}
