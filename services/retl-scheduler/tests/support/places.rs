//! Where an executor's parts live, for the fault tests that run executors as child
//! processes: the child is told the places in an environment variable, and parent and
//! child connect the same way.

#![allow(clippy::unwrap_used)]

use super::Tables;
use backflow_platform::bus::{streams, Bus};
use backflow_platform::config::NatsConfig;
use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;
use backflow_platform::shutdown::Shutdown;
use backflow_retl_scheduler::app::MIGRATIONS;
use backflow_retl_scheduler::destination_config::SecretResolver;
use backflow_retl_scheduler::executor::pipeline::{RunContext, RunSettings};
use backflow_retl_scheduler::executor::resolve::StoreDestinations;
use backflow_retl_scheduler::store::diff_state::{bucket_name, DiffStateStore};
use backflow_retl_scheduler::store::SyncStore;
use serde_json::{json, Value};
use std::sync::Arc;

/// The service's store, the warehouse and the bus of one test.
#[derive(Debug, Clone)]
pub struct Places {
    pub store_url: String,
    pub warehouse_url: String,
    pub nats: NatsConfig,
}

impl Places {
    /// The models: tables of the warehouse keyed by `id`, columns `id`, `email`, `plan`.
    pub fn warehouse(&self) -> Tables {
        Tables::of_url(&self.warehouse_url, &["id", "email", "plan"])
    }

    pub fn to_env(&self) -> String {
        json!({
            "store_url": self.store_url,
            "warehouse_url": self.warehouse_url,
            "nats_url": self.nats.url,
            "namespace": self.nats.namespace,
        })
        .to_string()
    }

    pub fn from_env(text: &str) -> Self {
        let value: Value = serde_json::from_str(text).unwrap();
        let text = |name: &str| value[name].as_str().unwrap().to_string();
        Self {
            store_url: text("store_url"),
            warehouse_url: text("warehouse_url"),
            nats: NatsConfig {
                url: text("nats_url"),
                namespace: text("namespace"),
                connect_timeout_ms: 5_000,
            },
        }
    }
}

/// The store, the bus (with the outbox relay) and a run context over `places`.
pub async fn connect(
    places: &Places,
    shutdown: &Shutdown,
    secrets: Arc<dyn SecretResolver>,
    settings: RunSettings,
) -> anyhow::Result<(SyncStore, Bus, RunContext)> {
    let db = Database::connect(&places.store_url, &MIGRATIONS).await?;
    let bus = Bus::connect(&places.nats).await?;
    for spec in [streams::CMD_RETL, streams::EVT_RETL] {
        bus.ensure_stream(&spec).await?;
    }
    let outbox = Outbox::new();
    {
        let (outbox, db, bus, shutdown) =
            (outbox.clone(), db.clone(), bus.clone(), shutdown.clone());
        tokio::spawn(async move {
            outbox
                .run_relay_for("retl_scheduler", db, bus, shutdown)
                .await
        });
    }
    let store = SyncStore::new(db, outbox);
    let states = DiffStateStore::open(bus.jetstream(), &bucket_name(&bus)).await?;
    let ctx = RunContext {
        store: store.clone(),
        states,
        models: Arc::new(places.warehouse()),
        destinations: Arc::new(StoreDestinations {
            store: store.clone(),
            secrets,
        }),
        settings,
    };
    Ok((store, bus, ctx))
}
