//! The catalog's one door to a customer's warehouse. Preview, describe, key checks and
//! connection tests all need "a connector for source S": load the source, resolve its
//! secret from the credentials service at that moment (never stored here), check the
//! secret can log in to that kind of warehouse, and build the connector with
//! `backflow_warehouse::connect`. Warehouse failures come back as
//! [`CatalogError::Warehouse`], which the gRPC edge maps to a status in one place, and
//! as a [`pb::SourceTestResult`] for tests (see [`crate::source_kinds::problem_of`]).

use crate::error::CatalogError;
use crate::source_kinds;
use crate::store::{CatalogStore, SourceRecord};
use backflow_platform::credentials_client::CredentialsClient;
use backflow_proto::catalog::v1 as pb;
use backflow_warehouse::{Connector, SecretMaterial, WarehouseError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a built connector (and its connection pool) is reused for one source
/// version. Short, so a rotated secret is picked up soon.
const CONNECTOR_TTL: Duration = Duration::from_secs(60);
/// A connection test that takes longer than this is reported as a timeout.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where connectors come from.
#[derive(Clone)]
enum Connectors {
    /// Resolve the secret from credentials and build the kind's connector.
    Live(CredentialsClient),
    /// Every source connects to this connector (tests and local tools).
    Fixed(Arc<dyn Connector>),
}

/// Cache key: a source at one version with one credential.
type CacheKey = (String, String, i64, String);
/// Built connectors and when they were built.
type Cache = HashMap<CacheKey, (Instant, Arc<dyn Connector>)>;

#[derive(Clone)]
pub struct WarehouseAccess {
    store: CatalogStore,
    connectors: Connectors,
    cache: Arc<Mutex<Cache>>,
}

impl std::fmt::Debug for WarehouseAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.connectors {
            Connectors::Live(_) => "live",
            Connectors::Fixed(_) => "fixed",
        };
        f.debug_struct("WarehouseAccess")
            .field("connectors", &mode)
            .finish_non_exhaustive()
    }
}

impl WarehouseAccess {
    pub fn new(store: CatalogStore, credentials: CredentialsClient) -> Self {
        Self {
            store,
            connectors: Connectors::Live(credentials),
            cache: Arc::default(),
        }
    }

    /// Every source (that exists in the store) connects to `connector`: for tests of
    /// code that uses connectors, without credentials or a warehouse.
    pub fn fixed(store: CatalogStore, connector: Arc<dyn Connector>) -> Self {
        Self {
            store,
            connectors: Connectors::Fixed(connector),
            cache: Arc::default(),
        }
    }

    /// A connector for a source of the workspace (reused for a minute per source version).
    #[tracing::instrument(name = "warehouse.connector", skip(self))]
    pub async fn connector(
        &self,
        workspace_id: &str,
        source_id: &str,
    ) -> Result<Arc<dyn Connector>, CatalogError> {
        let source = self.store.get_source(workspace_id, source_id).await?;
        let key = (
            source.workspace_id.clone(),
            source.id.clone(),
            source.version,
            source.credential_id.clone(),
        );
        if let Some(connector) = self.cached(&key) {
            return Ok(connector);
        }
        let connector = self.connect(&source).await?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (built, _)| built.elapsed() < CONNECTOR_TTL);
            cache.insert(key, (Instant::now(), connector.clone()));
        }
        Ok(connector)
    }

    fn cached(&self, key: &CacheKey) -> Option<Arc<dyn Connector>> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(key)
            .filter(|(built, _)| built.elapsed() < CONNECTOR_TTL)
            .map(|(_, connector)| connector.clone())
    }

    /// Builds a new connector for `source`: resolves its secret, checks the secret
    /// kind fits, validates settings (dials nothing).
    pub async fn connect(&self, source: &SourceRecord) -> Result<Arc<dyn Connector>, CatalogError> {
        let kind = source_kinds::warehouse_kind(source.kind)?;
        let credentials = match &self.connectors {
            Connectors::Fixed(connector) => return Ok(connector.clone()),
            Connectors::Live(credentials) => credentials,
        };
        if source.credential_id.trim().is_empty() {
            return Err(WarehouseError::Credential {
                reason: "the source names no credential (credential_id)".into(),
            }
            .into());
        }
        let purpose = format!("model-catalog connect to warehouse source {}", source.id);
        let secret = credentials
            .resolve(&source.workspace_id, &source.credential_id, &purpose)
            .await
            .map_err(|error| {
                if error.is_transient() {
                    CatalogError::Unavailable(format!("credentials service: {error}"))
                } else {
                    WarehouseError::Credential {
                        reason: error.to_string(),
                    }
                    .into()
                }
            })?;
        source_kinds::check_secret_kind(kind, &source.settings, secret.kind)?;
        let material =
            secret
                .text(&source.credential_id)
                .map_err(|error| WarehouseError::Credential {
                    reason: error.to_string(),
                })?;
        let connector =
            backflow_warehouse::connect(kind, &source.settings, SecretMaterial(material))?;
        Ok(connector)
    }

    /// Tests `source` as stored or about to be stored: connects with a fresh connector
    /// and checks usage on [`source_kinds::tested_schema`]. What is wrong with the
    /// source comes back as a failed result; only the catalog's own trouble (storage,
    /// credentials unreachable) is an error.
    #[tracing::instrument(name = "warehouse.test", skip_all, fields(source_id = %source.id))]
    pub async fn test(&self, source: &SourceRecord) -> Result<pb::SourceTestResult, CatalogError> {
        let now = backflow_platform::now_unix_ms();
        let connector = match self.connect(source).await {
            Ok(connector) => connector,
            Err(CatalogError::Warehouse(error)) => {
                return Ok(source_kinds::failed_test(&error, now))
            }
            Err(error) => return Err(error),
        };
        let schema = source_kinds::tested_schema(&source.settings, &source.backflow_schema);
        let tested = tokio::time::timeout(TEST_TIMEOUT, connector.test(schema.as_deref()))
            .await
            .unwrap_or(Err(WarehouseError::Timeout {
                after: TEST_TIMEOUT,
            }));
        let result = match tested {
            Ok(report) => pb::SourceTestResult {
                ok: true,
                problem: pb::SourceProblem::Unspecified as i32,
                message: String::new(),
                tested_at_unix_ms: now,
                server_version: report.server_version.unwrap_or_default(),
            },
            Err(error) => source_kinds::failed_test(&error, now),
        };
        tracing::info!(source_id = %source.id, ok = result.ok, problem = %source_kinds::problem_name(result.problem), "warehouse source tested");
        Ok(result)
    }
}

/// Preview, describe and key checks (grpc/preview.rs) get their connectors here.
#[tonic::async_trait]
impl crate::grpc::preview::ConnectorSource for WarehouseAccess {
    async fn connector(
        &self,
        workspace_id: &str,
        source_id: &str,
    ) -> Result<Arc<dyn Connector>, CatalogError> {
        WarehouseAccess::connector(self, workspace_id, source_id).await
    }
}
