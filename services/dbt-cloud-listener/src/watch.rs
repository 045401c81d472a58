//! Keeps one dbt Cloud webhook subscription per job that enabled syncs wait on, and none
//! for jobs no enabled sync waits on any more. [`Watcher::follow`] brings one job in line
//! (after a sync event, a new connection, or in the periodic sweep); it is idempotent, so
//! a redelivered event or a second sweep changes nothing, and it recovers from a crash
//! between the dbt Cloud call and the local write by recognising subscriptions by URL
//! (see `subscription_plan`). Calls are serialised in this process; two replicas racing
//! leave a duplicate that the next pass deletes.
//!
//! Whatever stops a job from being subscribed (no public URL, no connection for the
//! account, dbt Cloud or credentials refusing) is logged and stored as the job's
//! problem, shown by `ListSubscriptions`, and retried by the next sweep.

use crate::api::{ApiError, DbtCloudClient, Subscription, SubscriptionRequest};
use crate::connection_check::{failure_of, Step};
use crate::error::DbtCloudError;
use crate::secrets::Secrets;
use crate::store::{
    ConnectionRecord, ConnectionStore, JobKey, SubscriptionRecord, SubscriptionStatus,
};
use crate::subscription_plan::{self, plan, webhook_url, EVENT_TYPE};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What following one job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// The job has an active subscription (`created`: made in dbt Cloud just now).
    Subscribed {
        subscription_id: String,
        created: bool,
    },
    /// No enabled sync waits on the job; this many subscriptions were removed.
    Unsubscribed { removed: usize },
}

#[derive(Clone, Debug)]
pub struct Watcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: ConnectionStore,
    secrets: Secrets,
    /// The checked public URL, or why there is none.
    public_url: Result<String, String>,
    lock: tokio::sync::Mutex<()>,
}

/// dbt Cloud's subscriptions per connection, listed once per pass.
#[derive(Default)]
pub struct Listings {
    by_connection: HashMap<String, Vec<Subscription>>,
}

fn api_error(api: &DbtCloudClient, error: &ApiError) -> DbtCloudError {
    DbtCloudError::DbtCloud(failure_of(
        Step::Webhooks,
        error,
        api.base_url(),
        api.account_id(),
    ))
}

impl Watcher {
    pub fn new(store: ConnectionStore, secrets: Secrets, public_url: &str) -> Self {
        let public_url = if public_url.trim().is_empty() {
            Err("dbt_cloud_listener.public_url is not set, so dbt cloud cannot call backflow back: \
                 set it to the https address that reaches dbt_cloud_listener.http_listen \
                 (e.g. BACKFLOW_DBT_CLOUD_LISTENER__PUBLIC_URL=https://backflow.example.com); \
                 until then runs are found only by reconciliation"
                .to_string())
        } else {
            subscription_plan::validate_public_url(public_url)
        };
        if let Err(problem) = &public_url {
            tracing::warn!(%problem, "dbt cloud webhook subscriptions cannot be created");
        }
        Self {
            inner: Arc::new(Inner {
                store,
                secrets,
                public_url,
                lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn store(&self) -> &ConnectionStore {
        &self.inner.store
    }

    pub fn secrets(&self) -> &Secrets {
        &self.inner.secrets
    }

    /// The URL a subscription is (or will be) called at, when a public URL is set.
    pub fn url_of(&self, subscription_id: &str) -> Option<String> {
        self.inner
            .public_url
            .as_ref()
            .ok()
            .map(|public| webhook_url(public, subscription_id))
    }

    /// A client for the connection's account, with its token read just now.
    pub async fn api_for(
        &self,
        connection: &ConnectionRecord,
    ) -> Result<DbtCloudClient, DbtCloudError> {
        let token = self
            .inner
            .secrets
            .api_token(
                &connection.workspace_id,
                &connection.api_token_credential_id,
            )
            .await?;
        Ok(DbtCloudClient::new(
            &connection.access_url,
            connection.account_id,
            token,
        ))
    }

    /// Brings one job in line; a failure is logged and stored as the job's problem.
    pub async fn follow(&self, key: &JobKey) -> Result<Followed, DbtCloudError> {
        self.follow_with(key, &mut Listings::default()).await
    }

    async fn follow_with(
        &self,
        key: &JobKey,
        listings: &mut Listings,
    ) -> Result<Followed, DbtCloudError> {
        let _serialised = self.inner.lock.lock().await;
        let now = backflow_platform::now_unix_ms();
        match self.follow_locked(key, listings).await {
            Ok(followed) => {
                self.inner.store.clear_subscription_problem(key).await?;
                Ok(followed)
            }
            Err(error) => {
                tracing::error!(
                    workspace_id = %key.workspace_id,
                    account_id = key.account_id,
                    job_id = key.job_id,
                    %error,
                    "dbt cloud webhook subscription not in place"
                );
                if let Err(stored) = self
                    .inner
                    .store
                    .set_subscription_problem(key, &error.to_string(), now)
                    .await
                {
                    tracing::error!(error = %stored, "subscription problem not stored");
                }
                Err(error)
            }
        }
    }

    async fn follow_locked(
        &self,
        key: &JobKey,
        listings: &mut Listings,
    ) -> Result<Followed, DbtCloudError> {
        let store = &self.inner.store;
        let waiting = store.watched_job(key).await?;
        let rows = store.subscriptions_for(key).await?;
        let connection = match waiting {
            None => None,
            Some(_) => Some(
                store
                    .connection_for_account(&key.workspace_id, key.account_id)
                    .await?
                    .ok_or_else(|| {
                        DbtCloudError::Precondition(format!(
                            "no dbt cloud connection for account {} in workspace {}: syncs wait on its job {}; \
                             create one with `backflow dbt-cloud connect`",
                            key.account_id, key.workspace_id, key.job_id
                        ))
                    })?,
            ),
        };
        let mut removed = 0;
        for row in &rows {
            if connection.as_ref().map(|c| &c.id) != Some(&row.connection_id) {
                self.remove_locked(row, listings).await?;
                removed += 1;
            }
        }
        let Some(connection) = connection else {
            return Ok(Followed::Unsubscribed { removed });
        };
        let public_url = self
            .inner
            .public_url
            .clone()
            .map_err(DbtCloudError::Precondition)?;
        self.ensure(&connection, key.job_id, &public_url, listings)
            .await
    }

    async fn listed<'a>(
        &self,
        api: &DbtCloudClient,
        connection_id: &str,
        listings: &'a mut Listings,
    ) -> Result<&'a mut Vec<Subscription>, DbtCloudError> {
        if !listings.by_connection.contains_key(connection_id) {
            let listed = api
                .subscriptions()
                .await
                .map_err(|error| api_error(api, &error))?;
            listings
                .by_connection
                .insert(connection_id.to_string(), listed);
        }
        Ok(listings
            .by_connection
            .entry(connection_id.to_string())
            .or_default())
    }

    async fn ensure(
        &self,
        connection: &ConnectionRecord,
        job_id: i64,
        public_url: &str,
        listings: &mut Listings,
    ) -> Result<Followed, DbtCloudError> {
        let store = &self.inner.store;
        let secrets = &self.inner.secrets;
        let workspace_id = &connection.workspace_id;
        let new_id = backflow_platform::new_id();
        let row = store
            .subscription_or_pending(&SubscriptionRecord {
                id: new_id.clone(),
                workspace_id: workspace_id.clone(),
                connection_id: connection.id.clone(),
                job_id,
                dbt_webhook_id: String::new(),
                hmac_secret_credential_id: String::new(),
                created_at_ms: backflow_platform::now_unix_ms(),
                status: SubscriptionStatus::Pending,
                client_url: webhook_url(public_url, &new_id),
            })
            .await?;
        let expected = webhook_url(public_url, &row.id);
        let api = self.api_for(connection).await?;
        let listed = self.listed(&api, &connection.id, listings).await?.clone();
        // Kept secrets of the listed subscriptions that point at this row, except the
        // one the row already uses: adoptable after a crash, or to delete with theirs.
        let mut kept = BTreeMap::new();
        for sub in listed
            .iter()
            .filter(|s| s.client_url == row.client_url || s.client_url == expected)
            .filter(|s| !(row.status == SubscriptionStatus::Active && s.id == row.dbt_webhook_id))
        {
            if let Some(secret) = secrets.find_webhook_secret(workspace_id, &sub.id).await? {
                kept.insert(sub.id.clone(), secret);
            }
        }
        let plan = plan(&row, &expected, &listed, &kept);
        if let Some(url) = &plan.reset_url {
            store.reset_subscription(&row.id, url).await?;
        }
        for dbt_id in &plan.delete {
            api.delete_subscription(dbt_id)
                .await
                .map_err(|error| api_error(&api, &error))?;
            if let Some(list) = listings.by_connection.get_mut(&connection.id) {
                list.retain(|s| &s.id != dbt_id);
            }
            if let Some(secret) = kept.get(dbt_id) {
                secrets.delete(workspace_id, secret).await?;
            }
            tracing::info!(%workspace_id, job_id, dbt_webhook_id = %dbt_id, "stale dbt cloud webhook subscription deleted");
        }
        let mut created = false;
        if let Some((dbt_id, secret)) = &plan.adopt {
            store.activate_subscription(&row.id, dbt_id, secret).await?;
            tracing::info!(%workspace_id, job_id, dbt_webhook_id = %dbt_id, "dbt cloud webhook subscription adopted");
        } else if plan.create {
            let request = SubscriptionRequest {
                event_types: vec![EVENT_TYPE.to_string()],
                name: format!("Backflow: job {job_id}"),
                client_url: expected.clone(),
                active: true,
                description: format!(
                    "Triggers Backflow Reverse ETL syncs of workspace {workspace_id} when job {job_id} succeeds"
                ),
                job_ids: vec![job_id],
            };
            let made = api
                .create_subscription(&request)
                .await
                .map_err(|error| api_error(&api, &error))?;
            let hmac_secret = made.hmac_secret.clone().ok_or_else(|| {
                api_error(
                    &api,
                    &ApiError::Protocol {
                        path: "webhooks/subscriptions".into(),
                        detail: "the created subscription has no hmac_secret".into(),
                    },
                )
            })?;
            let secret = secrets
                .keep_webhook_secret(workspace_id, &made.id, &hmac_secret)
                .await?;
            store
                .activate_subscription(&row.id, &made.id, &secret)
                .await?;
            if let Some(list) = listings.by_connection.get_mut(&connection.id) {
                list.push(Subscription {
                    hmac_secret: None,
                    ..made.clone()
                });
            }
            created = true;
            tracing::info!(
                %workspace_id,
                connection_id = %connection.id,
                job_id,
                subscription_id = %row.id,
                dbt_webhook_id = %made.id,
                url = %expected,
                "dbt cloud webhook subscription created"
            );
        }
        if let Some(old) = &plan.forget_secret {
            secrets.delete(workspace_id, old).await?;
        }
        Ok(Followed::Subscribed {
            subscription_id: row.id,
            created,
        })
    }

    /// Deletes a subscription in dbt Cloud (with any left from a crash at its URL), its
    /// kept secret, then the row.
    async fn remove_locked(
        &self,
        row: &SubscriptionRecord,
        listings: &mut Listings,
    ) -> Result<(), DbtCloudError> {
        let store = &self.inner.store;
        let secrets = &self.inner.secrets;
        let workspace_id = &row.workspace_id;
        if let Some(connection) = store.get(workspace_id, &row.connection_id).await? {
            let api = self.api_for(&connection).await?;
            let listed = self.listed(&api, &connection.id, listings).await?.clone();
            let mut doomed: BTreeSet<String> = listed
                .iter()
                .filter(|s| !row.client_url.is_empty() && s.client_url == row.client_url)
                .map(|s| s.id.clone())
                .collect();
            if !row.dbt_webhook_id.is_empty() {
                doomed.insert(row.dbt_webhook_id.clone());
            }
            for dbt_id in &doomed {
                api.delete_subscription(dbt_id)
                    .await
                    .map_err(|error| api_error(&api, &error))?;
                if let Some(list) = listings.by_connection.get_mut(&connection.id) {
                    list.retain(|s| &s.id != dbt_id);
                }
                if dbt_id != &row.dbt_webhook_id {
                    if let Some(secret) = secrets.find_webhook_secret(workspace_id, dbt_id).await? {
                        secrets.delete(workspace_id, &secret).await?;
                    }
                }
            }
        }
        secrets
            .delete(workspace_id, &row.hmac_secret_credential_id)
            .await?;
        store.delete_subscription(workspace_id, &row.id).await?;
        tracing::info!(
            %workspace_id,
            job_id = row.job_id,
            subscription_id = %row.id,
            dbt_webhook_id = %row.dbt_webhook_id,
            "dbt cloud webhook subscription deleted"
        );
        Ok(())
    }

    /// Removes one subscription now (its connection is being deleted).
    pub async fn remove(&self, row: &SubscriptionRecord) -> Result<(), DbtCloudError> {
        let _serialised = self.inner.lock.lock().await;
        self.remove_locked(row, &mut Listings::default()).await
    }

    /// Every job some sync waits on or some subscription exists for, in this workspace
    /// and account (a connection was created), or everywhere (`None`).
    pub async fn jobs_to_follow(
        &self,
        scope: Option<(&str, i64)>,
    ) -> Result<Vec<JobKey>, DbtCloudError> {
        let store = &self.inner.store;
        let mut keys: BTreeSet<JobKey> = store
            .watched_jobs()
            .await?
            .into_iter()
            .map(|watched| watched.key)
            .collect();
        keys.extend(store.subscribed_jobs().await?);
        Ok(keys
            .into_iter()
            .filter(|key| {
                scope
                    .is_none_or(|(ws, account)| key.workspace_id == ws && key.account_id == account)
            })
            .collect())
    }

    /// Follows every job in `scope`, listing each connection's subscriptions once.
    /// Returns (jobs in line, jobs with a problem).
    pub async fn sweep(&self, scope: Option<(&str, i64)>) -> (usize, usize) {
        let keys = match self.jobs_to_follow(scope).await {
            Ok(keys) => keys,
            Err(error) => {
                tracing::error!(%error, "jobs to follow not read");
                return (0, 1);
            }
        };
        let mut listings = Listings::default();
        let (mut ok, mut failed) = (0, 0);
        for key in keys {
            match self.follow_with(&key, &mut listings).await {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
        }
        (ok, failed)
    }
}

/// One line of `ListSubscriptions`: a subscription row, or a job syncs wait on that has
/// none yet (empty `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    pub id: String,
    pub workspace_id: String,
    pub connection_id: String,
    pub account_id: i64,
    pub job_id: i64,
    pub dbt_webhook_id: String,
    pub url: String,
    pub hmac_secret_credential_id: String,
    pub created_at_ms: i64,
    pub sync_ids: Vec<String>,
    /// `active`, `pending` or `removing`.
    pub state: String,
    pub problem: String,
}

impl Watcher {
    /// The workspace's subscriptions (of one connection, if given) and the jobs syncs
    /// wait on that have none, by account and job.
    pub async fn list(
        &self,
        workspace_id: &str,
        connection_id: Option<&str>,
    ) -> Result<Vec<SubscriptionView>, DbtCloudError> {
        let store = &self.inner.store;
        let rows = store.workspace_subscriptions(workspace_id).await?;
        let watched: BTreeMap<(i64, i64), Vec<String>> = store
            .workspace_watched_jobs(workspace_id)
            .await?
            .into_iter()
            .map(|job| ((job.key.account_id, job.key.job_id), job.sync_ids))
            .collect();
        let problems = store.subscription_problems(workspace_id).await?;
        let mut views = Vec::new();
        let mut covered = BTreeSet::new();
        for (account_id, row) in rows {
            if connection_id.is_some_and(|id| id != row.connection_id) {
                continue;
            }
            let job = (account_id, row.job_id);
            let sync_ids = watched.get(&job).cloned().unwrap_or_default();
            let state = if sync_ids.is_empty() {
                "removing"
            } else {
                covered.insert(job);
                row.status.as_str()
            };
            views.push(SubscriptionView {
                id: row.id,
                workspace_id: row.workspace_id,
                connection_id: row.connection_id,
                account_id,
                job_id: row.job_id,
                dbt_webhook_id: row.dbt_webhook_id,
                url: row.client_url,
                hmac_secret_credential_id: row.hmac_secret_credential_id,
                created_at_ms: row.created_at_ms,
                sync_ids,
                state: state.into(),
                problem: problems.get(&job).cloned().unwrap_or_default(),
            });
        }
        for ((account_id, job_id), sync_ids) in watched {
            if covered.contains(&(account_id, job_id)) {
                continue;
            }
            let connection = store
                .connection_for_account(workspace_id, account_id)
                .await?
                .map(|c| c.id)
                .unwrap_or_default();
            if connection_id.is_some_and(|id| id != connection) {
                continue;
            }
            views.push(SubscriptionView {
                id: String::new(),
                workspace_id: workspace_id.to_string(),
                connection_id: connection,
                account_id,
                job_id,
                dbt_webhook_id: String::new(),
                url: String::new(),
                hmac_secret_credential_id: String::new(),
                created_at_ms: 0,
                sync_ids,
                state: "pending".into(),
                problem: problems
                    .get(&(account_id, job_id))
                    .cloned()
                    .unwrap_or_else(|| "not created yet".into()),
            });
        }
        views.sort_by(|a, b| (a.account_id, a.job_id, &a.id).cmp(&(b.account_id, b.job_id, &b.id)));
        Ok(views)
    }

    /// How many enabled syncs of the workspace wait on each job of `account_id`.
    pub async fn waiting_counts(
        &self,
        workspace_id: &str,
        account_id: i64,
    ) -> Result<BTreeMap<i64, usize>, DbtCloudError> {
        Ok(self
            .inner
            .store
            .workspace_watched_jobs(workspace_id)
            .await?
            .into_iter()
            .filter(|job| job.key.account_id == account_id)
            .map(|job| (job.key.job_id, job.sync_ids.len()))
            .collect())
    }
}
