//! Where a run's parts come from: the Reverse ETL model (query, key, columns) with a
//! connector to its warehouse, and the sync's destination, both resolved when the run
//! starts (secrets from the credentials service at that moment, never stored). Two
//! seams, [`ModelSource`] and [`DestinationSource`]: live ones over gRPC and the
//! scheduler's stored destinations, fixed ones for tests and local tools.

use crate::destination_config::SecretResolver;
use crate::destinations::Destination;
use crate::error::RetlError;
use crate::executor::catalog_client::CatalogClient;
use crate::executor::error::ExecError;
use crate::store::SyncStore;
use backflow_platform::credentials_client::CredentialsClient;
use backflow_proto::catalog::v1 as catalog;
use backflow_warehouse::{Connector, SecretMaterial, WarehouseKind};
use std::sync::Arc;

/// Everything a run extracts from.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub retl_model_id: String,
    /// One statement, unwrapped (the connector wraps it read-only).
    pub sql: String,
    pub primary_key: Vec<String>,
    /// Column names of the model, in order.
    pub columns: Vec<String>,
    pub connector: Arc<dyn Connector>,
    /// Schema Backflow may write to in the source (empty: read-only).
    pub backflow_schema: String,
    /// A writer for that schema, or why there is none (no schema, a warehouse whose
    /// writes are not built): decides the warehouse-side diff and the run ledger.
    pub writable: crate::warehouse_diff::strategy::Writable,
    /// The source asks for a run ledger in its Backflow schema.
    pub run_ledger: bool,
}

/// The writer of a source's Backflow schema, or why there is none.
pub fn writable(
    kind: WarehouseKind,
    settings: &backflow_warehouse::SourceSettings,
    secret: &SecretMaterial,
    backflow_schema: &str,
) -> crate::warehouse_diff::strategy::Writable {
    if backflow_schema.trim().is_empty() {
        return Err("the source has no backflow schema (it is read-only to backflow)".into());
    }
    backflow_warehouse::schema_writer(kind, settings, secret.clone(), backflow_schema.trim())
        .map_err(|error| error.to_string())
}

#[async_trait::async_trait]
pub trait ModelSource: Send + Sync + std::fmt::Debug {
    async fn resolve(
        &self,
        workspace_id: &str,
        retl_model_id: &str,
    ) -> Result<ResolvedModel, ExecError>;
}

/// A sync's destination, configured, with its account's shared rate limit.
#[derive(Debug, Clone)]
pub struct ResolvedDestination {
    pub destination: Arc<dyn Destination>,
    /// `None`: the kind's default.
    pub rate_limit_per_second: Option<f64>,
}

#[async_trait::async_trait]
pub trait DestinationSource: Send + Sync + std::fmt::Debug {
    async fn destination(
        &self,
        workspace_id: &str,
        destination_id: &str,
    ) -> Result<ResolvedDestination, ExecError>;
}

/// Destination secrets (and the scheduler's, for destination tests) from credentials.
#[derive(Debug, Clone)]
pub struct CredentialSecrets(pub CredentialsClient);

#[async_trait::async_trait]
impl SecretResolver for CredentialSecrets {
    async fn resolve(
        &self,
        workspace_id: &str,
        credential_id: &str,
        purpose: &str,
    ) -> Result<secrecy::SecretString, RetlError> {
        self.0
            .resolve_text(workspace_id, credential_id, purpose)
            .await
            .map(|(_, material)| material)
            .map_err(|error| {
                if error.is_transient() {
                    RetlError::Unavailable(error.to_string())
                } else {
                    RetlError::FailedPrecondition(error.to_string())
                }
            })
    }
}

/// The scheduler's stored destinations, built with their secret at run start.
#[derive(Debug, Clone)]
pub struct StoreDestinations {
    pub store: SyncStore,
    pub secrets: Arc<dyn SecretResolver>,
}

#[async_trait::async_trait]
impl DestinationSource for StoreDestinations {
    async fn destination(
        &self,
        workspace_id: &str,
        destination_id: &str,
    ) -> Result<ResolvedDestination, ExecError> {
        let record = self
            .store
            .get_destination(workspace_id, destination_id)
            .await?
            .ok_or_else(|| {
                ExecError::Sync(format!("destination {destination_id} no longer exists"))
            })?;
        let secret = if record.credential_id.trim().is_empty() {
            None
        } else {
            let purpose = format!("retl-scheduler deliver to destination {destination_id}");
            Some(
                self.secrets
                    .resolve(workspace_id, &record.credential_id, &purpose)
                    .await?,
            )
        };
        let destination = crate::destinations::build(record.kind, &record.settings, secret)?;
        Ok(ResolvedDestination {
            destination,
            rate_limit_per_second: (record.rate_limit_per_second > 0.0)
                .then_some(record.rate_limit_per_second),
        })
    }
}

/// The warehouse crate's kind for the catalog's wire kind.
pub fn warehouse_kind(kind: i32) -> Result<WarehouseKind, ExecError> {
    match catalog::WarehouseKind::try_from(kind) {
        Ok(catalog::WarehouseKind::Postgres) => Ok(WarehouseKind::Postgres),
        Ok(catalog::WarehouseKind::Redshift) => Ok(WarehouseKind::Redshift),
        Ok(catalog::WarehouseKind::Snowflake) => Ok(WarehouseKind::Snowflake),
        Ok(catalog::WarehouseKind::Bigquery) => Ok(WarehouseKind::Bigquery),
        Ok(catalog::WarehouseKind::Databricks) => Ok(WarehouseKind::Databricks),
        _ => Err(ExecError::Catalog {
            message: format!("warehouse kind {kind} is not known"),
            transient: false,
        }),
    }
}

/// The catalog over gRPC, secrets from credentials.
#[derive(Debug, Clone)]
pub struct LiveModels {
    pub catalog: CatalogClient,
    pub credentials: CredentialsClient,
}

#[async_trait::async_trait]
impl ModelSource for LiveModels {
    async fn resolve(
        &self,
        workspace_id: &str,
        retl_model_id: &str,
    ) -> Result<ResolvedModel, ExecError> {
        let resolved = self
            .catalog
            .resolve_run(workspace_id, retl_model_id)
            .await?;
        let model = resolved.model.unwrap_or_default();
        let source = resolved.source.ok_or_else(|| ExecError::Catalog {
            message: format!("reverse etl model {retl_model_id} came without its source"),
            transient: false,
        })?;
        let kind = warehouse_kind(source.kind)?;
        let purpose = format!("retl-scheduler extract reverse etl model {retl_model_id}");
        let material = if source.credential_id.trim().is_empty() {
            secrecy::SecretString::from(String::new())
        } else {
            let (_, material) = self
                .credentials
                .resolve_text(workspace_id, &source.credential_id, &purpose)
                .await?;
            material
        };
        let settings = source.settings.into_iter().collect();
        let secret = SecretMaterial(material);
        let writable = writable(kind, &settings, &secret, &source.backflow_schema);
        let connector = backflow_warehouse::connect(kind, &settings, secret)?;
        Ok(ResolvedModel {
            retl_model_id: retl_model_id.to_string(),
            sql: resolved.sql,
            primary_key: model.primary_key,
            columns: resolved.columns.into_iter().map(|c| c.name).collect(),
            connector,
            run_ledger: source.run_ledger && !source.backflow_schema.is_empty(),
            backflow_schema: source.backflow_schema,
            writable,
        })
    }
}

/// One model for every sync (tests, local tools).
#[derive(Debug, Clone)]
pub struct FixedModel(pub ResolvedModel);

#[async_trait::async_trait]
impl ModelSource for FixedModel {
    async fn resolve(&self, _: &str, _: &str) -> Result<ResolvedModel, ExecError> {
        Ok(self.0.clone())
    }
}

/// One destination for every sync (tests, local tools).
#[derive(Debug, Clone)]
pub struct FixedDestination(pub Arc<dyn Destination>);

#[async_trait::async_trait]
impl DestinationSource for FixedDestination {
    async fn destination(&self, _: &str, _: &str) -> Result<ResolvedDestination, ExecError> {
        Ok(ResolvedDestination {
            destination: self.0.clone(),
            rate_limit_per_second: None,
        })
    }
}
