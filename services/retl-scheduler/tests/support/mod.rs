//! What the scheduler's tests share: a Reverse ETL model shape given up front (the
//! catalog is another service), destinations stored directly (their kinds are tested
//! elsewhere), and for executors a model source reading tables of one PostgreSQL
//! database.

#![allow(dead_code)]

pub mod places;

use backflow_retl_scheduler::destination_config::DestinationRecord;
use backflow_retl_scheduler::destinations::DestinationKind;
use backflow_retl_scheduler::executor::error::ExecError;
use backflow_retl_scheduler::executor::resolve::{ModelSource, ResolvedModel};
use backflow_retl_scheduler::store::SyncStore;
use backflow_retl_scheduler::sync::{ModelShape, StaticModels};
use backflow_warehouse::{SecretMaterial, WarehouseKind};

/// A model keyed by `id` with columns `id`, `email`, `name`.
pub fn contacts_model() -> ModelShape {
    ModelShape {
        primary_key: vec!["id".into()],
        columns: vec!["id".into(), "email".into(), "name".into()],
        broken_reason: None,
        unique_id: "model.shop.contacts".into(),
        test_unique_ids: vec!["test.shop.unique_contacts_id.c1".into()],
        warehouse_diff: None,
    }
}

/// `model_id` is the contacts model in each of `workspaces`.
pub fn models(workspaces: &[&str], model_id: &str) -> StaticModels {
    workspaces
        .iter()
        .fold(StaticModels::new(), |models, workspace| {
            models.with(workspace, model_id, contacts_model())
        })
}

/// Stores an untested webhook destination `id` in `workspace`.
pub async fn webhook(store: &SyncStore, workspace: &str, id: &str) -> anyhow::Result<()> {
    let now = backflow_platform::now_unix_ms();
    store
        .create_destination(&DestinationRecord {
            id: id.into(),
            workspace_id: workspace.into(),
            name: format!("hook {id}"),
            kind: DestinationKind::Webhook,
            settings: [("url".to_string(), "http://127.0.0.1:9/hook".to_string())]
                .into_iter()
                .collect(),
            credential_id: String::new(),
            rate_limit_per_second: 0.0,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
            last_test: None,
        })
        .await?;
    Ok(())
}

/// Every Reverse ETL model `m` is `select <columns> from m` in one PostgreSQL database
/// (trust auth, user `postgres`), keyed by `id`.
#[derive(Debug, Clone)]
pub struct Tables {
    pub port: u16,
    pub database: String,
    pub columns: Vec<String>,
}

impl Tables {
    /// The database of a `postgres://user@host:port/name` URL.
    pub fn of_url(url: &str, columns: &[&str]) -> Self {
        let (base, database) = url.rsplit_once('/').unwrap_or_default();
        let port = base
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or(5432);
        Self {
            port,
            database: database.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
        }
    }
}

#[async_trait::async_trait]
impl ModelSource for Tables {
    async fn resolve(&self, _: &str, retl_model_id: &str) -> Result<ResolvedModel, ExecError> {
        let settings = [
            ("host".to_string(), "127.0.0.1".to_string()),
            ("port".to_string(), self.port.to_string()),
            ("database".to_string(), self.database.clone()),
            ("user".to_string(), "postgres".to_string()),
            ("sslmode".to_string(), "disable".to_string()),
        ]
        .into();
        let connector = backflow_warehouse::connect(
            WarehouseKind::Postgres,
            &settings,
            SecretMaterial("unused".to_string().into()),
        )?;
        Ok(ResolvedModel {
            retl_model_id: retl_model_id.into(),
            sql: format!("select {} from {retl_model_id}", self.columns.join(", ")),
            primary_key: vec!["id".into()],
            columns: self.columns.clone(),
            connector,
            backflow_schema: String::new(),
            writable: Err("the source has no backflow schema".into()),
            run_ledger: false,
        })
    }
}
