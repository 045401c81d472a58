//! A sync reads one Reverse ETL model, which lives in the catalog. Creating or changing
//! a sync's mapping asks the catalog for the model's shape ([`RetlModelLookup`], whose
//! gRPC implementation calls `ResolveRetlModelRun`) and checks the mapping against it:
//! mapped columns must exist and a broken model is refused. The check is pure.

use super::{invalid, Mapping};
use crate::error::RetlError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a sync needs to know about its Reverse ETL model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelShape {
    pub primary_key: Vec<String>,
    /// The model's columns, in order (empty when the catalog does not know them).
    pub columns: Vec<String>,
    /// Why the model is broken (gone, disabled, lost a key column ...), if it is.
    pub broken_reason: Option<String>,
    /// The dbt model's unique id (`model.<project>.<name>`); empty when unknown.
    pub unique_id: String,
    /// Unique ids of the dbt model's data tests (for "only if rebuilt").
    pub test_unique_ids: Vec<String>,
    /// Whether its source can keep a warehouse-side diff state (`Err`: why not);
    /// `None` when the catalog did not say.
    pub warehouse_diff: Option<Result<(), String>>,
}

/// Finds a Reverse ETL model of a workspace. A model that does not exist is
/// [`RetlError::ModelNotFound`] naming it; an unreachable catalog
/// [`RetlError::Unavailable`].
#[async_trait::async_trait]
pub trait RetlModelLookup: Send + Sync + std::fmt::Debug {
    async fn resolve(
        &self,
        workspace_id: &str,
        retl_model_id: &str,
    ) -> Result<ModelShape, RetlError>;
}

/// Models given up front, keyed by (workspace, model id): for tests and tools that run
/// the scheduler without a catalog.
#[derive(Debug, Clone, Default)]
pub struct StaticModels {
    models: BTreeMap<(String, String), ModelShape>,
}

impl StaticModels {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, workspace_id: &str, retl_model_id: &str, shape: ModelShape) -> Self {
        self.models
            .insert((workspace_id.to_string(), retl_model_id.to_string()), shape);
        self
    }

    pub fn shared(self) -> Arc<dyn RetlModelLookup> {
        Arc::new(self)
    }
}

#[async_trait::async_trait]
impl RetlModelLookup for StaticModels {
    async fn resolve(
        &self,
        workspace_id: &str,
        retl_model_id: &str,
    ) -> Result<ModelShape, RetlError> {
        self.models
            .get(&(workspace_id.to_string(), retl_model_id.to_string()))
            .cloned()
            .ok_or_else(|| model_not_found(retl_model_id))
    }
}

/// No catalog configured: every lookup is unavailable.
#[derive(Debug, Clone, Default)]
pub struct UnconfiguredModels;

#[async_trait::async_trait]
impl RetlModelLookup for UnconfiguredModels {
    async fn resolve(
        &self,
        _workspace_id: &str,
        retl_model_id: &str,
    ) -> Result<ModelShape, RetlError> {
        Err(RetlError::Unavailable(format!(
            "cannot check reverse etl model {retl_model_id}: no catalog is configured for the scheduler"
        )))
    }
}

/// The error for a model id the workspace does not have.
pub fn model_not_found(retl_model_id: &str) -> RetlError {
    RetlError::ModelNotFound(retl_model_id.to_string())
}

/// Checks mappings against the model: not broken, has a primary key, every mapped
/// column exists (when the catalog knows the columns).
pub fn check_against(
    retl_model_id: &str,
    shape: &ModelShape,
    mappings: &[Mapping],
) -> Result<(), RetlError> {
    if let Some(reason) = &shape.broken_reason {
        return Err(RetlError::FailedPrecondition(format!(
            "reverse etl model {retl_model_id} is broken ({reason}); fix the model before syncing it"
        )));
    }
    if shape.primary_key.is_empty() {
        return Err(RetlError::FailedPrecondition(format!(
            "reverse etl model {retl_model_id} has no primary key"
        )));
    }
    if shape.columns.is_empty() {
        return Ok(());
    }
    for (index, mapping) in mappings.iter().enumerate() {
        if mapping.constant.is_some() {
            continue;
        }
        if !shape.columns.contains(&mapping.source_column) {
            return Err(invalid(format!(
                "mappings[{index}].source_column {:?} is not a column of reverse etl model {retl_model_id} (columns: {})",
                mapping.source_column,
                shape.columns.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> ModelShape {
        ModelShape {
            primary_key: vec!["id".into()],
            columns: vec!["id".into(), "email".into(), "name".into()],
            broken_reason: None,
            ..Default::default()
        }
    }

    #[test]
    fn mapped_columns_must_exist_but_constants_need_none() {
        let mappings = vec![
            Mapping::column("email", "Email"),
            Mapping::constant("source", "backflow"),
        ];
        assert!(check_against("m", &shape(), &mappings).is_ok());
        let wrong = vec![Mapping::column("e_mail", "Email")];
        let error = check_against("m", &shape(), &wrong).err();
        assert!(
            matches!(&error, Some(RetlError::InvalidArgument(m)) if m.contains("\"e_mail\" is not a column") && m.contains("id, email, name")),
            "{error:?}"
        );
    }

    #[test]
    fn broken_or_keyless_models_are_refused() {
        let mut broken = shape();
        broken.broken_reason = Some("model deleted at abc".into());
        assert!(matches!(
            check_against("m", &broken, &[]),
            Err(RetlError::FailedPrecondition(m)) if m.contains("is broken (model deleted at abc)")
        ));
        let mut keyless = shape();
        keyless.primary_key.clear();
        assert!(matches!(
            check_against("m", &keyless, &[]),
            Err(RetlError::FailedPrecondition(_))
        ));
    }

    #[test]
    fn unknown_columns_are_not_checked() {
        let mut unknown = shape();
        unknown.columns.clear();
        assert!(check_against("m", &unknown, &[Mapping::column("anything", "X")]).is_ok());
    }

    #[tokio::test]
    async fn static_models_answer_per_workspace() {
        let models = StaticModels::new().with("ws", "m", shape());
        assert_eq!(models.resolve("ws", "m").await.ok(), Some(shape()));
        assert!(matches!(
            models.resolve("other", "m").await,
            Err(RetlError::ModelNotFound(id)) if id == "m"
        ));
        assert!(matches!(
            UnconfiguredModels.resolve("ws", "m").await,
            Err(RetlError::Unavailable(_))
        ));
    }
}
