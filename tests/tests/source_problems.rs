//! Issue 9, point 2: creating and testing a warehouse source says clearly what is wrong,
//! through the catalog's gRPC API with the real credentials service and the real
//! PostgreSQL connector: host unreachable (a closed port), authentication (a stand-in
//! speaking the Postgres wire protocol refuses the password with `28P01`: the local
//! cluster trusts loopback), unknown database, and missing USAGE on the schema (a role
//! without it on the local cluster). Each maps to its `SourceProblem` with a one-line
//! lowercase message naming the host, database or schema; create refuses a failing test
//! with FAILED_PRECONDITION unless `skip_test`.

use backflow_platform::testing;
use backflow_proto::catalog::v1 as catalog;
use backflow_proto::credentials::v1 as credentials;
use backflow_tests::stack::{start_stack, Stack};
use sqlx::Connection;
use tonic::Code;

const WORKSPACE: &str = "ws-source-problems";

/// Stores the source without testing it, then tests it.
async fn tested(
    stack: &mut Stack,
    name: &str,
    settings: &[(&str, &str)],
    backflow_schema: &str,
) -> anyhow::Result<catalog::SourceTestResult> {
    let source = stack
        .create_source_with(
            name,
            catalog::WarehouseKind::Postgres,
            settings,
            (credentials::SecretKind::WarehousePassword, "wrong-password"),
            backflow_schema,
            true,
        )
        .await?;
    assert_eq!(
        source.last_test, None,
        "skip_test stores without connecting"
    );
    let result = stack
        .catalog
        .test_warehouse_source(catalog::TestWarehouseSourceRequest {
            workspace_id: WORKSPACE.into(),
            source_id: source.id,
        })
        .await?
        .into_inner()
        .result
        .ok_or_else(|| anyhow::anyhow!("no result"))?;
    Ok(result)
}

fn assert_problem(
    result: &catalog::SourceTestResult,
    problem: catalog::SourceProblem,
    needle: &str,
) {
    assert!(!result.ok, "{result:?}");
    assert_eq!(result.problem, problem as i32, "{result:?}");
    assert!(result.message.contains(needle), "{needle:?} in {result:?}");
    assert_eq!(result.message.lines().count(), 1, "{result:?}");
    assert!(
        !result.message.starts_with(char::is_uppercase),
        "lowercase: {result:?}"
    );
    assert!(result.tested_at_unix_ms > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_source_problem_is_named() -> anyhow::Result<()> {
    let warehouse_url = testing::fresh_postgres_url("src_problems").await?;
    let database = warehouse_url
        .rsplit_once('/')
        .map(|(_, name)| name.to_string())
        .unwrap_or_default();
    let id = backflow_platform::new_id();
    let role = format!("bf_nousage_{}", &id[id.len() - 10..]).to_lowercase();
    let mut warehouse = sqlx::PgConnection::connect(&warehouse_url).await?;
    for statement in [
        "CREATE SCHEMA analytics".to_string(),
        // PUBLIC may connect to a new database; nobody else has USAGE on its schemas
        format!("CREATE ROLE \"{role}\" LOGIN"),
    ] {
        sqlx::query(&statement).execute(&mut warehouse).await?;
    }
    let mut stack = start_stack(WORKSPACE).await?;

    // host unreachable: nothing listens on the port
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let closed = closed.to_string();
    let unreachable = tested(
        &mut stack,
        "closed-port",
        &[
            ("host", "127.0.0.1"),
            ("port", &closed),
            ("database", &database),
            ("user", "postgres"),
            ("sslmode", "disable"),
        ],
        "",
    )
    .await?;
    assert_problem(
        &unreachable,
        catalog::SourceProblem::Unreachable,
        &format!("127.0.0.1:{closed}"),
    );

    // wrong password, refused the way PostgreSQL refuses it
    let (port, server) =
        backflow_warehouse::test_support::postgres::refusing_password_server().await;
    let port = port.to_string();
    let refused = tested(
        &mut stack,
        "wrong-password",
        &[
            ("host", "127.0.0.1"),
            ("port", &port),
            ("database", "analytics"),
            ("user", "reader"),
            ("sslmode", "disable"),
        ],
        "",
    )
    .await?;
    assert_problem(
        &refused,
        catalog::SourceProblem::Authentication,
        "password authentication failed for user \"reader\"",
    );
    assert_eq!(
        server.await?,
        "wrong-password",
        "the password resolved from credentials"
    );

    // unknown database
    let missing_database = format!("{database}_missing");
    let unknown = tested(
        &mut stack,
        "unknown-database",
        &[
            ("host", "127.0.0.1"),
            ("port", "5432"),
            ("database", &missing_database),
            ("user", "postgres"),
            ("sslmode", "disable"),
        ],
        "",
    )
    .await?;
    assert_problem(
        &unknown,
        catalog::SourceProblem::UnknownDatabase,
        &missing_database,
    );

    // a role without USAGE on the schema it is to read
    let no_usage = tested(
        &mut stack,
        "no-usage",
        &[
            ("host", "127.0.0.1"),
            ("port", "5432"),
            ("database", &database),
            ("user", &role),
            ("sslmode", "disable"),
        ],
        "analytics",
    )
    .await?;
    assert_problem(
        &no_usage,
        catalog::SourceProblem::MissingPrivilege,
        "analytics",
    );

    // create tests first and refuses a failing source, saying why
    let refused = stack
        .create_source_with(
            "refused",
            catalog::WarehouseKind::Postgres,
            &[
                ("host", "127.0.0.1"),
                ("port", "5432"),
                ("database", &missing_database),
                ("user", "postgres"),
                ("sslmode", "disable"),
            ],
            (credentials::SecretKind::WarehousePassword, "unused"),
            "",
            false,
        )
        .await
        .expect_err("a failing test refuses the create");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .starts_with("connection test failed (unknown database): ")
            && refused.message().contains(&missing_database),
        "{}",
        refused.message()
    );
    // and a good one is stored with its passing test
    let good = stack
        .create_source_with(
            "good",
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
    let test = good.last_test.ok_or_else(|| anyhow::anyhow!("no test"))?;
    assert!(test.ok, "{test:?}");
    assert!(!test.server_version.is_empty());

    stack.stop().await;
    warehouse.close().await?;
    let mut admin = sqlx::PgConnection::connect(&testing::postgres_admin_url()).await?;
    sqlx::query(&format!("DROP ROLE IF EXISTS \"{role}\""))
        .execute(&mut admin)
        .await?;
    Ok(())
}
