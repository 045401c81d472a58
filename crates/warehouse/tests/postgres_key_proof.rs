//! `stream_proving_key` against the real local PostgreSQL: a key is proven unique only
//! when the model is one scan of a relation whose unique index covers the key, and the
//! rows stream the same either way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use backflow_warehouse::postgres::{connect_with, DescribeSource, StreamMode};
use backflow_warehouse::{KeyProof, QueryOptions, ReadOnlyQuery, WarehouseKind};
use futures::StreamExt;
use support::pg::{secret, Scratch};

async fn proof(c: &dyn backflow_warehouse::Connector, sql: &str, key: &[&str]) -> KeyProof {
    let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
    let (mut stream, proof) = c
        .stream_proving_key(
            &ReadOnlyQuery::from_sql(sql).unwrap(),
            &QueryOptions::default(),
            &key,
        )
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = 0;
    while let Some(batch) = stream.batches.next().await {
        rows += batch.unwrap().num_rows();
    }
    assert!(rows > 0, "{sql}");
    proof
}

#[tokio::test]
async fn only_one_scan_of_a_uniquely_indexed_relation_proves_a_key() {
    let db = Scratch::new("keyproof").await;
    db.exec(
        "create table users (id bigint primary key, email text not null, org int, tag text);
         create unique index users_email on users (lower(email));
         create table memberships (org int not null, member bigint not null, role text,
                                   unique (org, member));
         create table loose (id bigint, name text);
         create unique index loose_partial on loose (id) where id > 10;
         create table deferred (id bigint, unique (id) deferrable initially deferred);
         insert into users select g, 'u' || g || '@x', g % 3, 't' from generate_series(1, 50) g;
         insert into memberships select g % 5, g, 'r' from generate_series(1, 50) g;
         insert into loose select g, 'n' from generate_series(1, 50) g;
         insert into deferred select g from generate_series(1, 50) g;
         create view active_users as select id, email from users where org > 0;
         analyze;",
    )
    .await;
    let c = db.connector();
    let proven = |relation: &str, index: &str| KeyProof::UniqueIndex {
        relation: relation.into(),
        index: index.into(),
    };
    assert_eq!(
        proof(&*c, "select id, email from users", &["id"]).await,
        proven("public.users", "users_pkey")
    );
    assert_eq!(
        proof(
            &*c,
            "select id as user_id, tag from users where org = 1 order by tag limit 40",
            &["user_id"]
        )
        .await,
        proven("public.users", "users_pkey")
    );
    // a unique index on a subset of the key's columns makes the whole key unique
    assert_eq!(
        proof(&*c, "select id, email from users", &["email", "id"]).await,
        proven("public.users", "users_pkey")
    );
    assert_eq!(
        proof(
            &*c,
            "select member, org, role from memberships",
            &["org", "member"]
        )
        .await,
        proven("public.memberships", "memberships_org_member_key")
    );
    for (sql, key) in [
        // the index covers lower(email), not email
        ("select id, email from users", &["email"][..]),
        // only part of the unique pair
        ("select member, org from memberships", &["member"]),
        // rows may repeat: joins, unions, set-returning functions
        (
            "select u.id, m.role from users u join memberships m on m.member = u.id",
            &["id"],
        ),
        (
            "select id from users union all select id from users",
            &["id"],
        ),
        ("select id, generate_series(1, 2) as n from users", &["id"]),
        // a computed key, a key from a function, no relation at all
        ("select id + 0 as id from users", &["id"]),
        ("select id::text as id from users", &["id"]),
        (
            "select g::bigint as id from generate_series(1, 10) g",
            &["id"],
        ),
        // partial and deferrable unique indexes prove nothing
        ("select id, name from loose", &["id"]),
        ("select id from deferred", &["id"]),
        // a view's columns name the view, which has no index
        ("select * from active_users", &["id"]),
        // a key column the result does not have
        ("select id from users", &["nope"]),
    ] {
        assert_eq!(proof(&*c, sql, key).await, KeyProof::Unproven, "{sql}");
    }
}

#[tokio::test]
async fn redshift_never_proves_a_key() {
    let db = Scratch::new("keyproof_rs").await;
    db.exec("create table t (id bigint primary key); insert into t select generate_series(1, 5);")
        .await;
    let c = connect_with(
        WarehouseKind::Redshift,
        &db.settings(&db.admin_user()),
        secret(""),
        DescribeSource::ColumnsView("information_schema.columns"),
        StreamMode::Cursor { fetch_rows: 100 },
    )
    .unwrap();
    assert_eq!(
        proof(&*c, "select id from t", &["id"]).await,
        KeyProof::Unproven
    );
}
