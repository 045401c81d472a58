//! The write side on the real local PostgreSQL: a transaction of typed statements
//! (arrays bound as one parameter) commits all or nothing; an expected row count that does
//! not hold rolls everything back as a conflict; a role without rights in the schema gets
//! a missing-privilege error; reads see the schema first on the search path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use backflow_warehouse::write::{qualified, schema_writer, Applied, Param, Statement};
use backflow_warehouse::{WarehouseError, WarehouseKind};
use support::pg::{secret, Scratch};

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn transactions_commit_all_or_nothing() {
    let scratch = Scratch::new("write").await;
    scratch.exec("CREATE SCHEMA bf").await;
    let writer = schema_writer(
        WarehouseKind::Postgres,
        &scratch.settings(&scratch.admin_user()),
        secret(""),
        "bf",
    )
    .unwrap();
    let table = qualified("bf", "state_x");
    let applied = writer
        .transaction(
            &[
                Statement::new(format!(
                    "CREATE TABLE {table} (k bigint PRIMARY KEY, v text, d boolean)"
                )),
                Statement::new(format!(
                    "INSERT INTO {table} SELECT * FROM unnest($1::bigint[], $2::text[], $3::boolean[])"
                ))
                .bind(Param::I64s(vec![1, 2, 3]))
                .bind(Param::Texts(vec![Some("a".into()), None, Some("c".into())]))
                .bind(Param::Bools(vec![true, false, true]))
                .expect(3),
            ],
            T,
        )
        .await
        .unwrap();
    assert_eq!(applied, Applied::Committed(vec![0, 3]));

    // a conflict rolls back the statements before it too
    let conflict = writer
        .transaction(
            &[
                Statement::new(format!("DELETE FROM {table} WHERE k = $1")).bind(Param::I64(1)),
                Statement::new(format!("UPDATE {table} SET v = 'z' WHERE k = $1"))
                    .bind(Param::I64(99))
                    .expect(1),
            ],
            T,
        )
        .await
        .unwrap();
    assert_eq!(conflict, Applied::Conflict { index: 1, rows: 0 });
    // unqualified names resolve in the schema
    let rows = writer
        .query_text(
            "SELECT k::text, v FROM state_x WHERE k <= $1 ORDER BY k",
            &[Param::I64(2)],
            10,
            T,
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            vec![Some("1".to_string()), Some("a".to_string())],
            vec![Some("2".to_string()), None]
        ]
    );

    // an error rolls back as well and says what failed
    let failed = writer
        .transaction(
            &[
                Statement::new(format!("DELETE FROM {table}")),
                Statement::new(format!(
                    "INSERT INTO {table} VALUES (1, 'a', true), (1, 'b', true)"
                )),
            ],
            T,
        )
        .await;
    assert!(
        matches!(&failed, Err(WarehouseError::QueryFailed { code: Some(code), .. }) if code == "23505"),
        "{failed:?}"
    );
    let count = writer
        .query_text(&format!("SELECT count(*)::text FROM {table}"), &[], 1, T)
        .await
        .unwrap();
    assert_eq!(count, vec![vec![Some("3".to_string())]]);
}

#[tokio::test]
async fn a_role_without_rights_in_the_schema_is_told_so() {
    let mut scratch = Scratch::new("write_priv").await;
    scratch.exec("CREATE SCHEMA bf").await;
    let role = scratch.role("reader", "LOGIN").await;
    let writer = schema_writer(
        WarehouseKind::Postgres,
        &scratch.settings(&role),
        secret(""),
        "bf",
    )
    .unwrap();
    let refused = writer
        .transaction(
            &[Statement::new(format!(
                "CREATE TABLE {} (k bigint)",
                qualified("bf", "t")
            ))],
            T,
        )
        .await;
    assert!(
        matches!(&refused, Err(WarehouseError::MissingPrivilege { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_missing_schema_is_created_when_the_role_may_and_explained_when_it_may_not() {
    let mut scratch = Scratch::new("write_schema").await;
    // the admin may create schemas: a missing one is created, twice is harmless
    let admin = schema_writer(
        WarehouseKind::Postgres,
        &scratch.settings(&scratch.admin_user()),
        secret(""),
        "bf_new",
    )
    .unwrap();
    admin.ensure_schema(T).await.unwrap();
    admin.ensure_schema(T).await.unwrap();
    admin
        .transaction(
            &[Statement::new(format!(
                "CREATE TABLE {} (k bigint)",
                qualified("bf_new", "t")
            ))],
            T,
        )
        .await
        .unwrap();

    // a role without CREATE on the database: told what to create and grant
    let role = scratch.role("plain", "LOGIN").await;
    let plain = schema_writer(
        WarehouseKind::Postgres,
        &scratch.settings(&role),
        secret(""),
        "bf_other",
    )
    .unwrap();
    let refused = plain.ensure_schema(T).await;
    assert!(
        matches!(&refused, Err(WarehouseError::MissingPrivilege { detail })
            if detail.contains("does not exist") && detail.contains("CREATE SCHEMA \"bf_other\"")),
        "{refused:?}"
    );
    // an existing schema it may not create tables in: told what to grant
    let in_existing = schema_writer(
        WarehouseKind::Postgres,
        &scratch.settings(&role),
        secret(""),
        "bf_new",
    )
    .unwrap();
    let refused = in_existing.ensure_schema(T).await;
    assert!(
        matches!(&refused, Err(WarehouseError::MissingPrivilege { detail })
            if detail.contains(&format!("GRANT USAGE, CREATE ON SCHEMA \"bf_new\" TO \"{role}\""))),
        "{refused:?}"
    );
    scratch
        .exec(&format!(
            "GRANT USAGE, CREATE ON SCHEMA bf_new TO \"{role}\""
        ))
        .await;
    in_existing.ensure_schema(T).await.unwrap();
}
