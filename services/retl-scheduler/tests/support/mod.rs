//! What the scheduler's tests share: a Reverse ETL model shape given up front (the
//! catalog is another service) and destinations stored directly (their kinds are
//! tested elsewhere).

#![allow(dead_code)]

use backflow_retl_scheduler::destination_config::DestinationRecord;
use backflow_retl_scheduler::destinations::DestinationKind;
use backflow_retl_scheduler::store::SyncStore;
use backflow_retl_scheduler::sync::{ModelShape, StaticModels};

/// A model keyed by `id` with columns `id`, `email`, `name`.
pub fn contacts_model() -> ModelShape {
    ModelShape {
        primary_key: vec!["id".into()],
        columns: vec!["id".into(), "email".into(), "name".into()],
        broken_reason: None,
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
