//! Destination operations behind the gRPC API: create and update test the destination
//! (unless `skip_test`) and refuse one that fails with FAILED_PRECONDITION saying what is
//! wrong; test stores its outcome; delete is refused while a sync uses the destination.
//! Testing resolves the secret from credentials at that moment (never stored here) and
//! builds the kind's [`Destination`](crate::destinations::Destination) with `crate::destinations::build`.

use crate::destination_config::{
    check_rate_limit, clean_settings, kind_from_wire, merged_settings, DestinationRecord,
    SecretResolver, TestOutcome,
};
use crate::destinations::{DestinationError, DestinationSettings};
use crate::error::RetlError;
use crate::store::SyncStore;
use crate::sync::require;
use std::sync::Arc;
use std::time::Duration;

/// A connection test that takes longer than this fails as a timeout.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A decoded `CreateDestinationRequest`.
#[derive(Debug, Clone)]
pub struct NewDestination {
    pub workspace_id: String,
    pub name: String,
    /// Raw wire kind.
    pub kind: i32,
    pub settings: DestinationSettings,
    pub credential_id: String,
    pub rate_limit_per_second: f64,
    pub skip_test: bool,
}

/// A decoded `UpdateDestinationRequest` (unset fields keep their value).
#[derive(Debug, Clone, Default)]
pub struct DestinationUpdate {
    pub name: Option<String>,
    pub settings: DestinationSettings,
    pub replace_settings: bool,
    pub credential_id: Option<String>,
    pub rate_limit_per_second: Option<f64>,
    pub skip_test: bool,
}

#[derive(Debug, Clone)]
pub struct DestinationAdmin {
    store: SyncStore,
    secrets: Arc<dyn SecretResolver>,
}

impl DestinationAdmin {
    pub fn new(store: SyncStore, secrets: Arc<dyn SecretResolver>) -> Self {
        Self { store, secrets }
    }

    pub async fn create(&self, new: NewDestination) -> Result<DestinationRecord, RetlError> {
        require("workspace_id", &new.workspace_id)?;
        require("name", &new.name)?;
        let kind = kind_from_wire(new.kind)?;
        let now = backflow_platform::now_unix_ms();
        let mut record = DestinationRecord {
            id: backflow_platform::new_id(),
            workspace_id: new.workspace_id,
            name: new.name.trim().to_string(),
            kind,
            settings: clean_settings(new.settings)?,
            credential_id: new.credential_id.trim().to_string(),
            rate_limit_per_second: check_rate_limit(new.rate_limit_per_second)?,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
            last_test: None,
        };
        if !new.skip_test {
            let outcome = self.run_test(&record).await?;
            refuse_failed(&outcome)?;
            record.last_test = Some(outcome);
        }
        self.store.create_destination(&record).await?;
        tracing::info!(workspace_id = %record.workspace_id, destination_id = %record.id, kind = ?record.kind, tested = !new.skip_test, "destination created");
        Ok(record)
    }

    pub async fn get(
        &self,
        workspace_id: &str,
        destination_id: &str,
    ) -> Result<DestinationRecord, RetlError> {
        require("workspace_id", workspace_id)?;
        require("destination_id", destination_id)?;
        self.store
            .get_destination(workspace_id, destination_id)
            .await?
            .ok_or_else(|| RetlError::DestinationNotFound(destination_id.to_string()))
    }

    pub async fn list(&self, workspace_id: &str) -> Result<Vec<DestinationRecord>, RetlError> {
        require("workspace_id", workspace_id)?;
        self.store.list_destinations(workspace_id).await
    }

    pub async fn update(
        &self,
        workspace_id: &str,
        destination_id: &str,
        update: DestinationUpdate,
    ) -> Result<DestinationRecord, RetlError> {
        let current = self.get(workspace_id, destination_id).await?;
        let mut record = current.clone();
        if let Some(name) = update.name {
            require("name", &name)?;
            record.name = name.trim().to_string();
        }
        record.settings = merged_settings(
            &current.settings,
            clean_settings(update.settings)?,
            update.replace_settings,
        );
        if let Some(credential_id) = update.credential_id {
            record.credential_id = credential_id.trim().to_string();
        }
        if let Some(rate) = update.rate_limit_per_second {
            record.rate_limit_per_second = check_rate_limit(rate)?;
        }
        let reaches_elsewhere =
            record.settings != current.settings || record.credential_id != current.credential_id;
        if !update.skip_test {
            let outcome = self.run_test(&record).await?;
            refuse_failed(&outcome)?;
            record.last_test = Some(outcome);
        } else if reaches_elsewhere {
            // The old result says nothing about the new settings.
            record.last_test = None;
        }
        record.version = current.version + 1;
        record.updated_at_ms = backflow_platform::now_unix_ms();
        self.store
            .update_destination(&record, current.version)
            .await?;
        tracing::info!(%workspace_id, %destination_id, version = record.version, "destination updated");
        Ok(record)
    }

    pub async fn delete(&self, workspace_id: &str, destination_id: &str) -> Result<(), RetlError> {
        require("workspace_id", workspace_id)?;
        require("destination_id", destination_id)?;
        self.store
            .delete_destination(workspace_id, destination_id)
            .await?;
        tracing::info!(%workspace_id, %destination_id, "destination deleted");
        Ok(())
    }

    /// Tests a stored destination and records the outcome (a failed test is a result,
    /// not an error).
    pub async fn test(
        &self,
        workspace_id: &str,
        destination_id: &str,
    ) -> Result<TestOutcome, RetlError> {
        let record = self.get(workspace_id, destination_id).await?;
        let outcome = self.run_test(&record).await?;
        self.store
            .record_destination_test(workspace_id, destination_id, &outcome)
            .await?;
        Ok(outcome)
    }

    /// Settings the kind refuses are INVALID_ARGUMENT; everything the destination itself
    /// answers (credentials, reachability) is a failed outcome.
    async fn run_test(&self, record: &DestinationRecord) -> Result<TestOutcome, RetlError> {
        let secret = if record.credential_id.is_empty() {
            None
        } else {
            Some(
                self.secrets
                    .resolve(
                        &record.workspace_id,
                        &record.credential_id,
                        &format!("test destination {}", record.id),
                    )
                    .await?,
            )
        };
        let destination = match crate::destinations::build(record.kind, &record.settings, secret) {
            Ok(destination) => destination,
            Err(DestinationError::Settings(message)) => {
                return Err(RetlError::InvalidArgument(format!("settings: {message}")))
            }
            Err(DestinationError::Unsupported(what)) => {
                return Err(RetlError::FailedPrecondition(format!(
                    "this scheduler does not support {what}"
                )))
            }
            Err(other) => return Ok(outcome(Err(other.to_string()))),
        };
        let tested = tokio::time::timeout(TEST_TIMEOUT, destination.test()).await;
        Ok(outcome(match tested {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!(
                "no answer within {} seconds",
                TEST_TIMEOUT.as_secs()
            )),
        }))
    }
}

fn outcome(result: Result<(), String>) -> TestOutcome {
    let tested_at_ms = backflow_platform::now_unix_ms();
    match result {
        Ok(()) => TestOutcome {
            ok: true,
            message: "ok".into(),
            tested_at_ms,
        },
        Err(message) => TestOutcome {
            ok: false,
            message,
            tested_at_ms,
        },
    }
}

/// FAILED_PRECONDITION for a failed test, with the destination's message.
fn refuse_failed(outcome: &TestOutcome) -> Result<(), RetlError> {
    if outcome.ok {
        return Ok(());
    }
    Err(RetlError::FailedPrecondition(format!(
        "destination test failed: {}; fix the settings or credential, or pass skip_test to store it anyway",
        outcome.message
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_test_is_refused_with_its_message() {
        let failed = outcome(Err("destination refused the credentials: 401".into()));
        assert!(matches!(
            refuse_failed(&failed),
            Err(RetlError::FailedPrecondition(m)) if m.starts_with("destination test failed: destination refused the credentials: 401;")
        ));
        assert!(refuse_failed(&outcome(Ok(()))).is_ok());
    }
}
