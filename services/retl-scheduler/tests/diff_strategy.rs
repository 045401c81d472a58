//! Choosing the diff strategy of a sync: `WAREHOUSE` on a model whose source cannot keep a
//! warehouse-side state (no Backflow schema, or a warehouse other than PostgreSQL) is
//! refused at create with FAILED_PRECONDITION saying why; `AUTO` and `BACKFLOW` are not.

use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;
use backflow_platform::testing;
use backflow_proto::retl::v1::{DiffStrategy, SyncMode};
use backflow_retl_scheduler::app::MIGRATIONS;
use backflow_retl_scheduler::schedule::Schedule;
use backflow_retl_scheduler::scheduler::Scheduler;
use backflow_retl_scheduler::store::SyncStore;
use backflow_retl_scheduler::sync::{Mapping, ModelShape, NewSync, StaticModels};
use backflow_retl_scheduler::RetlError;

mod support;

fn model(warehouse_diff: Result<(), String>) -> ModelShape {
    ModelShape {
        warehouse_diff: Some(warehouse_diff),
        ..support::contacts_model()
    }
}

fn sync(name: &str, model: &str, strategy: DiffStrategy) -> NewSync {
    let mut new = NewSync::basic(
        "ws",
        name,
        model,
        "dest",
        SyncMode::Upsert,
        vec![Mapping::column("email", "Email")],
        Schedule::Manual,
    );
    new.diff_strategy = strategy as i32;
    new
}

#[tokio::test]
async fn warehouse_strategy_needs_a_writable_postgres_source() -> anyhow::Result<()> {
    let db = Database::connect(&testing::fresh_sqlite_url("retl_strategy"), &MIGRATIONS).await?;
    let store = SyncStore::new(db, Outbox::new());
    support::webhook(&store, "ws", "dest").await?;
    let why = "the model's source has no backflow schema (it is read-only to backflow)";
    let models = StaticModels::new()
        .with("ws", "readonly", model(Err(why.into())))
        .with("ws", "writable", model(Ok(())));
    let scheduler = Scheduler::new(store, models.shared());

    let refused = scheduler
        .create_sync(sync("a", "readonly", DiffStrategy::Warehouse))
        .await;
    assert!(
        matches!(&refused, Err(RetlError::FailedPrecondition(message)) if message.contains(why)),
        "{refused:?}"
    );
    for (name, model, strategy) in [
        ("b", "readonly", DiffStrategy::Auto),
        ("c", "readonly", DiffStrategy::Backflow),
        ("d", "writable", DiffStrategy::Warehouse),
    ] {
        let created = scheduler.create_sync(sync(name, model, strategy)).await?;
        assert_eq!(created.diff_strategy, strategy);
    }
    Ok(())
}
