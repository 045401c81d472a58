//! The connection operations behind the gRPC API: validation of what a caller sends,
//! a check of the token and account against dbt Cloud (create refuses what the check
//! refuses; `test` stores the outcome as `last_test`), the jobs and runs the account
//! has, then the store. Every operation is scoped to the workspace it names.

use crate::access_url::normalize_access_url_allowing;
use crate::api::{Account, DbtCloudClient, Job, Run, MAX_PAGE};
use crate::connection_check::{failure_of, CheckFailure, Step};
use crate::error::DbtCloudError;
use crate::store::{ConnectionRecord, ConnectionStore, LastTest, ReceivedEventRecord};
use crate::watch::Watcher;
use backflow_proto::dbtcloud::v1::ConnectionProblem;
use std::sync::Arc;

/// Runs listed when a caller asks for none in particular.
pub const DEFAULT_RUNS: usize = 10;

/// A request to create a connection, already decoded from the wire.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub workspace_id: String,
    pub name: String,
    pub access_url: String,
    pub account_id: i64,
    pub api_token_credential_id: String,
}

#[derive(Clone, Debug)]
pub struct Connections {
    store: ConnectionStore,
    watcher: Watcher,
    allowed_access_urls: Arc<Vec<String>>,
}

/// Checks a token against an account: the account, one page of jobs, one page of
/// webhook subscriptions (everything Backflow calls later).
pub async fn check(api: &DbtCloudClient) -> Result<Account, CheckFailure> {
    let failed = |step, error: &crate::api::ApiError| {
        failure_of(step, error, api.base_url(), api.account_id())
    };
    let account = api
        .check_account()
        .await
        .map_err(|error| failed(Step::Account, &error))?;
    api.first_jobs(1)
        .await
        .map_err(|error| failed(Step::Jobs, &error))?;
    api.first_subscriptions(1)
        .await
        .map_err(|error| failed(Step::Webhooks, &error))?;
    Ok(account)
}

impl Connections {
    pub fn new(store: ConnectionStore, watcher: Watcher, allowed_access_urls: Vec<String>) -> Self {
        Self {
            store,
            watcher,
            allowed_access_urls: Arc::new(allowed_access_urls),
        }
    }

    pub fn store(&self) -> &ConnectionStore {
        &self.store
    }

    pub fn watcher(&self) -> &Watcher {
        &self.watcher
    }

    /// Validates, checks the token and account against dbt Cloud, then stores. Jobs
    /// that syncs of the workspace already wait on in this account are then subscribed.
    pub async fn create(&self, new: NewConnection) -> Result<ConnectionRecord, DbtCloudError> {
        let mut record = validate_new(
            new,
            backflow_platform::new_id(),
            backflow_platform::now_unix_ms(),
            &self.allowed_access_urls,
        )?;
        let api = self.client(&record).await?;
        let account = check(&api).await.map_err(DbtCloudError::DbtCloud)?;
        record.last_test = Some(LastTest {
            ok: true,
            problem: ConnectionProblem::Unspecified as i32,
            message: String::new(),
            tested_at_ms: backflow_platform::now_unix_ms(),
            account_name: account.name.clone(),
        });
        self.store.create(&record).await?;
        tracing::info!(
            workspace_id = %record.workspace_id,
            connection_id = %record.id,
            account_id = record.account_id,
            account_name = %account.name,
            access_url = %record.access_url,
            "dbt cloud connection created"
        );
        let watcher = self.watcher.clone();
        let (workspace_id, account_id) = (record.workspace_id.clone(), record.account_id);
        tokio::spawn(async move {
            watcher.sweep(Some((&workspace_id, account_id))).await;
        });
        Ok(record)
    }

    /// Checks the connection's token and account now and stores the outcome. A
    /// credentials service that cannot answer is an error (nothing is stored).
    pub async fn test(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<LastTest, DbtCloudError> {
        let record = self.get(workspace_id, connection_id).await?;
        let tested_at_ms = backflow_platform::now_unix_ms();
        let outcome = match self.client(&record).await {
            Ok(api) => check(&api).await,
            Err(DbtCloudError::Credentials {
                message,
                transient: false,
            }) => Err(CheckFailure {
                problem: ConnectionProblem::Unspecified,
                message,
            }),
            Err(error) => return Err(error),
        };
        let test = match outcome {
            Ok(account) => LastTest {
                ok: true,
                problem: ConnectionProblem::Unspecified as i32,
                message: String::new(),
                tested_at_ms,
                account_name: account.name,
            },
            Err(failure) => LastTest {
                ok: false,
                problem: failure.problem as i32,
                message: failure.message,
                tested_at_ms,
                account_name: String::new(),
            },
        };
        if !self
            .store
            .set_last_test(workspace_id, connection_id, &test)
            .await?
        {
            return Err(DbtCloudError::NotFound(connection_id.to_string()));
        }
        tracing::info!(%workspace_id, %connection_id, ok = test.ok, problem = test.problem, "dbt cloud connection tested");
        Ok(test)
    }

    /// Every job of the connection's account (or of one project), all pages.
    pub async fn jobs(
        &self,
        workspace_id: &str,
        connection_id: &str,
        project_id: Option<i64>,
    ) -> Result<Vec<Job>, DbtCloudError> {
        let record = self.get(workspace_id, connection_id).await?;
        let api = self.client(&record).await?;
        api.jobs(project_id)
            .await
            .map_err(|error| api_failure(&api, Step::Jobs, &error))
    }

    /// The newest runs of one job, newest first (`limit` 0 → [`DEFAULT_RUNS`]).
    pub async fn runs(
        &self,
        workspace_id: &str,
        connection_id: &str,
        job_id: i64,
        limit: i32,
    ) -> Result<Vec<Run>, DbtCloudError> {
        if job_id <= 0 {
            return Err(DbtCloudError::InvalidArgument(format!(
                "job_id must be a positive dbt Cloud job id, got {job_id}"
            )));
        }
        let limit = match usize::try_from(limit) {
            Ok(0) => DEFAULT_RUNS,
            Ok(limit) if limit <= MAX_PAGE => limit,
            _ => {
                return Err(DbtCloudError::InvalidArgument(format!(
                    "limit must be between 1 and {MAX_PAGE} (0 for {DEFAULT_RUNS}), got {limit}"
                )))
            }
        };
        let record = self.get(workspace_id, connection_id).await?;
        let api = self.client(&record).await?;
        api.recent_runs(job_id, limit)
            .await
            .map_err(|error| api_failure(&api, Step::Jobs, &error))
    }

    async fn client(&self, record: &ConnectionRecord) -> Result<DbtCloudClient, DbtCloudError> {
        self.watcher.api_for(record).await
    }

    pub async fn get(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<ConnectionRecord, DbtCloudError> {
        require("workspace_id", workspace_id)?;
        require("connection_id", connection_id)?;
        self.store
            .get(workspace_id, connection_id)
            .await?
            .ok_or_else(|| DbtCloudError::NotFound(connection_id.to_string()))
    }

    pub async fn list(&self, workspace_id: &str) -> Result<Vec<ConnectionRecord>, DbtCloudError> {
        require("workspace_id", workspace_id)?;
        self.store.list(workspace_id).await
    }

    /// Deletes a connection. Its webhook subscriptions are deleted in dbt Cloud first
    /// where dbt Cloud lets us (a revoked token must not keep the connection alive);
    /// the rest is logged.
    pub async fn delete(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<(), DbtCloudError> {
        require("workspace_id", workspace_id)?;
        require("connection_id", connection_id)?;
        for row in self
            .store
            .list_subscriptions(workspace_id, connection_id)
            .await?
        {
            if let Err(error) = self.watcher.remove(&row).await {
                tracing::warn!(
                    %workspace_id,
                    %connection_id,
                    dbt_webhook_id = %row.dbt_webhook_id,
                    %error,
                    "dbt cloud webhook subscription left in dbt cloud; delete it there"
                );
            }
        }
        if self.store.delete(workspace_id, connection_id).await? {
            tracing::info!(%workspace_id, %connection_id, "dbt cloud connection deleted");
            Ok(())
        } else {
            Err(DbtCloudError::NotFound(connection_id.to_string()))
        }
    }

    /// Received events of a connection of this workspace, newest first.
    pub async fn received_events(
        &self,
        workspace_id: &str,
        connection_id: &str,
    ) -> Result<Vec<ReceivedEventRecord>, DbtCloudError> {
        self.get(workspace_id, connection_id).await?;
        self.store.list_received(workspace_id, connection_id).await
    }
}

fn api_failure(api: &DbtCloudClient, step: Step, error: &crate::api::ApiError) -> DbtCloudError {
    DbtCloudError::DbtCloud(failure_of(step, error, api.base_url(), api.account_id()))
}

/// Checks a new connection and builds its record (access URL normalized).
pub fn validate_new(
    new: NewConnection,
    id: String,
    now_ms: i64,
    allowed_access_urls: &[String],
) -> Result<ConnectionRecord, DbtCloudError> {
    require("workspace_id", &new.workspace_id)?;
    require("name", &new.name)?;
    require("api_token_credential_id", &new.api_token_credential_id)?;
    if new.account_id <= 0 {
        return Err(DbtCloudError::InvalidArgument(format!(
            "account_id must be a positive dbt Cloud account id, got {}",
            new.account_id
        )));
    }
    let access_url = normalize_access_url_allowing(&new.access_url, allowed_access_urls)
        .map_err(DbtCloudError::InvalidArgument)?;
    Ok(ConnectionRecord {
        id,
        workspace_id: new.workspace_id,
        name: new.name.trim().to_string(),
        access_url,
        account_id: new.account_id,
        api_token_credential_id: new.api_token_credential_id.trim().to_string(),
        created_at_ms: now_ms,
        last_test: None,
    })
}

fn require(field: &str, value: &str) -> Result<(), DbtCloudError> {
    if value.trim().is_empty() {
        Err(DbtCloudError::InvalidArgument(format!(
            "{field} is required"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_connection() -> NewConnection {
        NewConnection {
            workspace_id: "ws".into(),
            name: " prod ".into(),
            access_url: "acme".into(),
            account_id: 7,
            api_token_credential_id: "cred-1".into(),
        }
    }

    fn invalid(new: NewConnection) -> String {
        match validate_new(new, "id".into(), 1, &[]) {
            Err(DbtCloudError::InvalidArgument(message)) => message,
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn valid_connection_is_normalized() {
        let record = validate_new(new_connection(), "id".into(), 5, &[])
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(record.name, "prod");
        assert_eq!(record.access_url, "https://acme.getdbt.com");
        assert_eq!(record.created_at_ms, 5);
    }

    #[test]
    fn required_fields_are_named() {
        let mut new = new_connection();
        new.workspace_id.clear();
        assert_eq!(invalid(new), "workspace_id is required");
        let mut new = new_connection();
        new.name = "  ".into();
        assert_eq!(invalid(new), "name is required");
        let mut new = new_connection();
        new.api_token_credential_id.clear();
        assert_eq!(invalid(new), "api_token_credential_id is required");
    }

    #[test]
    fn account_id_must_be_positive() {
        let mut new = new_connection();
        new.account_id = 0;
        assert!(invalid(new).contains("account_id"));
    }

    #[test]
    fn foreign_access_url_is_refused() {
        let mut new = new_connection();
        new.access_url = "https://example.com".into();
        assert!(invalid(new).contains("not a dbt Cloud host"));
    }
}
