//! Issue 9, acceptance 1, through a real Git repository: a dbt project in a test
//! repository, a postgres warehouse source pointing at a fresh database of the local
//! PostgreSQL, a Git connection naming the source; once the catalog lists the models
//! (parsed with the source's adapter and database), they are built as tables from their
//! compiled SQL, and then: preview returns the right rows and types; models whose SQL
//! writes (`delete`, `create table`, a volatile function that inserts) fail inside the
//! read-only transaction and change nothing; the statement timeout is enforced.
//!
//! And the same repository on a Snowflake source (the SQL API stand-in): the catalog's
//! relations are rendered as dbt-snowflake renders them (unquoted, in the source's
//! database), proving git-sync parsed with the source's adapter; changing the source's
//! database re-syncs the connection and the relations follow.

use backflow_model_catalog::config::PreviewConfig;
use backflow_platform::testing;
use backflow_proto::catalog::v1 as catalog;
use backflow_proto::credentials::v1 as credentials;
use backflow_proto::gitsync::v1 as gitsync;
use backflow_test_git::http::GitHttpServer;
use backflow_test_git::repo::BareRepo;
use backflow_tests::eventually;
use backflow_tests::stack::{start_stack_with, Stack};
use backflow_warehouse::test_support::snowflake;
use sqlx::Connection;
use std::time::{Duration, Instant};
use tonic::Code;

const GIT_TOKEN: &str = "ghp_SourcesToPreviewToken0123456789";

const PROJECT: &[(&str, &str)] = &[
    (
        "dbt_project.yml",
        "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n",
    ),
    (
        "models/customers.sql",
        "select id, email, signed_up, score::numeric(6,2) as score, active from (values\n  (1::bigint, 'a@example.com'::text, date '2024-01-01', 1.50, true),\n  (2, 'b@example.com', null, null, false),\n  (3, 'c@example.com', date '2024-03-05', 10.25, true)\n) as t (id, email, signed_up, score, active)",
    ),
    (
        "models/active_customers.sql",
        "select id, email from {{ ref('customers') }} where active",
    ),
    ("models/wipe.sql", "delete from {{ ref('customers') }}"),
    (
        "models/sneaky.sql",
        "create table {{ target.schema }}.sneaky_copy as select * from {{ ref('customers') }}",
    ),
    (
        "models/inserter.sql",
        "select {{ target.schema }}.add_customer() as added",
    ),
    ("models/slow.sql", "select pg_sleep(5) as slept"),
    (
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: customers\n    columns:\n      - name: id\n        tests: [unique, not_null]\n",
    ),
];

async fn connect(
    stack: &mut Stack,
    name: &str,
    url: &str,
    token_id: &str,
    source_id: &str,
) -> anyhow::Result<String> {
    let created = stack
        .git_sync
        .create_connection(gitsync::CreateConnectionRequest {
            workspace_id: stack.workspace.clone(),
            name: name.into(),
            settings: Some(gitsync::ConnectionSettings {
                provider: gitsync::GitProvider::Github as i32,
                protocol: gitsync::GitProtocol::Https as i32,
                repository_url: url.into(),
                branch: "main".into(),
                dbt_version: "1.7".into(),
                default_schema: "analytics".into(),
                project_path: String::new(),
                credential_id: token_id.into(),
                warehouse_source_id: source_id.into(),
                webhook_secret_credential_id: String::new(),
            }),
        })
        .await?
        .into_inner();
    Ok(created
        .connection
        .ok_or_else(|| anyhow::anyhow!("no connection"))?
        .id)
}

fn preview(
    stack: &Stack,
    connection_id: &str,
    model: &str,
    mode: catalog::QueryMode,
) -> catalog::PreviewModelRequest {
    catalog::PreviewModelRequest {
        workspace_id: stack.workspace.clone(),
        connection_id: connection_id.into(),
        unique_id: format!("model.shop.{model}"),
        query_mode: mode as i32,
        limit: 10,
        refresh: true,
        ..Default::default()
    }
}

fn relation<'a>(models: &'a [catalog::Model], name: &str) -> anyhow::Result<&'a catalog::Model> {
    models
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| anyhow::anyhow!("no model {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_previewed_read_only_on_postgres() -> anyhow::Result<()> {
    let warehouse_url = testing::fresh_postgres_url("src_preview").await?;
    let database = warehouse_url
        .rsplit_once('/')
        .map(|(_, name)| name.to_string())
        .unwrap_or_default();
    let mut warehouse = sqlx::PgConnection::connect(&warehouse_url).await?;
    sqlx::raw_sql(
        "CREATE SCHEMA analytics;
         CREATE FUNCTION analytics.add_customer() RETURNS bigint VOLATILE LANGUAGE plpgsql AS $$
         BEGIN
           INSERT INTO analytics.customers (id, email, active) VALUES (99, 'sneaky@example.com', true);
           RETURN 99;
         END $$;",
    )
    .execute(&mut warehouse)
    .await?;

    let root =
        std::env::temp_dir().join(format!("backflow-src-repo-{}", backflow_platform::new_id()));
    let repo = BareRepo::create_with(&root, "shop", PROJECT);
    let server = GitHttpServer::start(&root, GIT_TOKEN);
    let preview_config = PreviewConfig {
        statement_timeout_seconds: 1,
        ..PreviewConfig::default()
    };
    let mut stack = start_stack_with("ws-sources-pg", 0, preview_config).await?;
    let token_id = stack
        .create_secret("git token", credentials::SecretKind::GitToken, GIT_TOKEN)
        .await?;

    // the source is tested on create: the local cluster trusts loopback
    let source = stack
        .create_source_with(
            "shop-pg",
            catalog::WarehouseKind::Postgres,
            &[
                ("host", "127.0.0.1"),
                ("port", "5432"),
                ("database", &database),
                ("user", "postgres"),
                ("sslmode", "disable"),
            ],
            (
                credentials::SecretKind::WarehousePassword,
                "unused-with-trust",
            ),
            "analytics",
            false,
        )
        .await?;
    assert!(
        source.last_test.as_ref().is_some_and(|t| t.ok),
        "{source:?}"
    );
    let connection_id = connect(
        &mut stack,
        "shop",
        &server.url("shop"),
        &token_id,
        &source.id,
    )
    .await?;
    let models = stack
        .models_at_commit(&connection_id, &repo.head("main"))
        .await?;
    assert_eq!(models.len(), 6);

    // relations in the source's database; build the two table models from their SQL
    for name in ["customers", "active_customers"] {
        let model = relation(&models, name)?;
        assert_eq!(model.database, database);
        assert_eq!(
            model.relation_name,
            format!("\"{database}\".\"analytics\".\"{name}\"")
        );
        sqlx::raw_sql(&format!(
            "CREATE TABLE {} AS {}",
            model.relation_name, model.compiled_sql
        ))
        .execute(&mut warehouse)
        .await?;
    }

    // preview: the right rows, names and Arrow types
    let customers = stack
        .catalog
        .preview_model(preview(
            &stack,
            &connection_id,
            "customers",
            catalog::QueryMode::Relation,
        ))
        .await?
        .into_inner();
    assert_eq!(
        customers.query,
        format!("select * from \"{database}\".\"analytics\".\"customers\"")
    );
    let columns: Vec<(&str, &str)> = customers
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.arrow_type.as_str()))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", "Int64"),
            ("email", "Utf8"),
            ("signed_up", "Date32"),
            ("score", "Decimal128(6, 2)"),
            ("active", "Boolean"),
        ]
    );
    let mut rows: Vec<(Vec<String>, Vec<bool>)> = customers
        .rows
        .iter()
        .map(|r| (r.cells.clone(), r.null_cells.clone()))
        .collect();
    rows.sort();
    let strings = |cells: &[&str]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rows[0],
        (
            strings(&["1", "a@example.com", "2024-01-01", "1.50", "true"]),
            vec![false; 5]
        )
    );
    assert_eq!(rows[1].0[..2], strings(&["2", "b@example.com"]));
    assert_eq!(rows[1].1, [false, false, true, true, false]);
    assert_eq!(rows[2].0[3], "10.25");
    let active = stack
        .catalog
        .preview_model(preview(
            &stack,
            &connection_id,
            "active_customers",
            catalog::QueryMode::Relation,
        ))
        .await?
        .into_inner();
    let mut ids: Vec<&str> = active.rows.iter().map(|r| r.cells[0].as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["1", "3"]);

    // SQL that writes fails inside the read-only transaction and changes nothing
    for writer in ["wipe", "sneaky", "inserter"] {
        let refused = stack
            .catalog
            .preview_model(preview(
                &stack,
                &connection_id,
                writer,
                catalog::QueryMode::CompiledSql,
            ))
            .await
            .expect_err(writer);
        assert!(
            matches!(
                refused.code(),
                Code::InvalidArgument | Code::FailedPrecondition
            ),
            "{writer}: {refused:?}"
        );
        if writer == "inserter" {
            assert!(
                refused
                    .message()
                    .contains("the query tried to write, and models run read-only"),
                "{refused:?}"
            );
        }
        let key_check = stack
            .catalog
            .check_primary_key(catalog::CheckPrimaryKeyRequest {
                workspace_id: stack.workspace.clone(),
                connection_id: connection_id.clone(),
                unique_id: format!("model.shop.{writer}"),
                query_mode: catalog::QueryMode::CompiledSql as i32,
                primary_key: vec!["added".into()],
                ..Default::default()
            })
            .await;
        assert!(key_check.is_err(), "{writer}: {key_check:?}");
    }
    let (count, sneaky_rows): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(*) FILTER (WHERE id = 99) FROM analytics.customers")
            .fetch_one(&mut warehouse)
            .await?;
    assert_eq!((count, sneaky_rows), (3, 0));
    let (copy,): (Option<String>,) =
        sqlx::query_as("SELECT to_regclass('analytics.sneaky_copy')::text")
            .fetch_one(&mut warehouse)
            .await?;
    assert_eq!(copy, None);

    // the statement timeout (1 s here) ends a 5 s query
    let started = Instant::now();
    let slow = stack
        .catalog
        .preview_model(preview(
            &stack,
            &connection_id,
            "slow",
            catalog::QueryMode::CompiledSql,
        ))
        .await
        .expect_err("timed out");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        slow.message().contains("statement timed out after 1s"),
        "{slow:?}"
    );

    stack.stop().await;
    warehouse.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snowflake_source_renders_relations_as_dbt_snowflake() -> anyhow::Result<()> {
    let stand_in = snowflake::SnowflakeStandIn::start().await;
    let root =
        std::env::temp_dir().join(format!("backflow-src-sf-{}", backflow_platform::new_id()));
    let repo = BareRepo::create_with(&root, "shop", PROJECT);
    let server = GitHttpServer::start(&root, GIT_TOKEN);
    let mut stack = start_stack_with("ws-sources-sf", 0, PreviewConfig::default()).await?;
    let token_id = stack
        .create_secret("git token", credentials::SecretKind::GitToken, GIT_TOKEN)
        .await?;
    let settings = stand_in.settings("key_pair");
    let pairs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let source = stack
        .create_source_with(
            "shop-snowflake",
            catalog::WarehouseKind::Snowflake,
            &pairs,
            (
                credentials::SecretKind::WarehousePrivateKey,
                snowflake::PRIVATE_KEY_PEM,
            ),
            "",
            false,
        )
        .await?;
    assert!(
        source.last_test.as_ref().is_some_and(|t| t.ok),
        "{source:?}"
    );
    let connection_id = connect(
        &mut stack,
        "shop",
        &server.url("shop"),
        &token_id,
        &source.id,
    )
    .await?;
    let models = stack
        .models_at_commit(&connection_id, &repo.head("main"))
        .await?;
    let customers = relation(&models, "customers")?;
    assert_eq!(customers.database, snowflake::DATABASE);
    assert_eq!(customers.relation_name, "ANALYTICS.analytics.customers");
    let active = relation(&models, "active_customers")?;
    assert!(
        active
            .compiled_sql
            .contains("from ANALYTICS.analytics.customers"),
        "{}",
        active.compiled_sql
    );

    // another database on the source: the connection re-syncs, the relations follow
    let runs_before = stack.run_count(&connection_id).await?;
    stack
        .catalog
        .update_warehouse_source(catalog::UpdateWarehouseSourceRequest {
            workspace_id: stack.workspace.clone(),
            source_id: source.id.clone(),
            settings: [("database".to_string(), "REPORTING".to_string())].into(),
            skip_test: true,
            ..Default::default()
        })
        .await?;
    let client = stack.catalog.clone();
    let workspace = stack.workspace.clone();
    let followed = eventually(
        Duration::from_secs(120),
        "the relation in the new database",
        || {
            let (mut client, workspace, connection_id) =
                (client.clone(), workspace.clone(), connection_id.clone());
            async move {
                let model = client
                    .get_model(catalog::GetModelRequest {
                        workspace_id: workspace,
                        connection_id,
                        unique_id: "model.shop.customers".into(),
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .model?;
                (model.relation_name == "REPORTING.analytics.customers").then_some(model)
            }
        },
    )
    .await?;
    assert_eq!(followed.database, "REPORTING");
    assert_eq!(stack.run_count(&connection_id).await?, runs_before + 1);

    stack.stop().await;
    Ok(())
}
