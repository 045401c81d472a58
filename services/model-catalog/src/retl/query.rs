//! The query a Reverse ETL model runs against its warehouse: by default
//! `select * from <relation>` with the relation exactly as the source's dbt adapter
//! renders it, or the model's compiled SQL. Either way it is one read-only statement
//! ([`ReadOnlyQuery`]); a model that cannot give one is refused with a reason a user
//! can act on.

use backflow_proto::catalog::v1 as pb;
use backflow_warehouse::{ReadOnlyQuery, RelationRef, WarehouseError};

/// Prefix git-sync gives a compile error that only means "needs a live warehouse".
const NEEDS_WAREHOUSE_PREFIX: &str = "needs a live warehouse";

/// Which SQL a Reverse ETL model runs (stored as `backflow.catalog.v1.QueryMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryMode {
    #[default]
    Relation,
    CompiledSql,
}

impl QueryMode {
    /// Decodes the wire value; unspecified is the default (relation).
    pub fn from_wire(value: i32) -> Result<Self, String> {
        match pb::QueryMode::try_from(value) {
            Ok(pb::QueryMode::Unspecified) | Ok(pb::QueryMode::Relation) => Ok(Self::Relation),
            Ok(pb::QueryMode::CompiledSql) => Ok(Self::CompiledSql),
            Err(_) => Err(format!("query_mode {value} is not a known query mode")),
        }
    }

    pub fn to_wire(self) -> pb::QueryMode {
        match self {
            Self::Relation => pb::QueryMode::Relation,
            Self::CompiledSql => pb::QueryMode::CompiledSql,
        }
    }
}

/// Why a model gives no query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryRefusal {
    #[error("model {unique_id} does not compile: {reason}")]
    DoesNotCompile { unique_id: String, reason: String },
    #[error("model {unique_id} compiles only against a live warehouse ({reason}); use query mode relation")]
    NeedsWarehouse { unique_id: String, reason: String },
    #[error("model {unique_id} has no relation in the warehouse (materialized {materialized:?}); use query mode compiled-sql")]
    NoRelation {
        unique_id: String,
        materialized: String,
    },
    #[error("model {unique_id} has no compiled sql")]
    NoCompiledSql { unique_id: String },
    #[error("the compiled sql of model {unique_id} is not a single statement ({detail}); a reverse etl model runs exactly one read-only query, so a ';' may only end it")]
    NotSingleStatement { unique_id: String, detail: String },
}

/// The model's relation as the adapter rendered it, with its unquoted parts.
pub fn relation_of(model: &pb::Model) -> Option<RelationRef> {
    if model.relation_name.trim().is_empty() || model.materialized == "ephemeral" {
        return None;
    }
    Some(RelationRef {
        database: model.database.clone(),
        schema: model.schema.clone(),
        identifier: model.alias.clone(),
        rendered: model.relation_name.clone(),
    })
}

/// The compile error that stops the compiled SQL, if any ("needs a warehouse" apart).
fn compile_refusal(model: &pb::Model) -> Option<QueryRefusal> {
    let error = model.compile_error.trim();
    if error.is_empty() {
        return None;
    }
    let unique_id = model.unique_id.clone();
    Some(match error.strip_prefix(NEEDS_WAREHOUSE_PREFIX) {
        Some(reason) => QueryRefusal::NeedsWarehouse {
            unique_id,
            reason: reason.trim_start_matches(':').trim().to_string(),
        },
        None => QueryRefusal::DoesNotCompile {
            unique_id,
            reason: error.to_string(),
        },
    })
}

/// Whether the model is unusable at this commit in this mode (compile errors break
/// compiled-SQL models; any compile error but "needs a warehouse" breaks relation ones,
/// since `dbt run` would fail and leave the relation stale).
pub fn breakage(model: &pb::Model, mode: QueryMode) -> Option<QueryRefusal> {
    match (compile_refusal(model), mode) {
        (Some(QueryRefusal::NeedsWarehouse { .. }), QueryMode::Relation) => None,
        (Some(refusal), _) => Some(refusal),
        (None, _) => query_for(model, mode).err(),
    }
}

/// The one statement the model runs in `mode`.
pub fn query_for(model: &pb::Model, mode: QueryMode) -> Result<ReadOnlyQuery, QueryRefusal> {
    match mode {
        QueryMode::Relation => relation_of(model)
            .map(|relation| ReadOnlyQuery::select_all(&relation))
            .ok_or_else(|| QueryRefusal::NoRelation {
                unique_id: model.unique_id.clone(),
                materialized: model.materialized.clone(),
            }),
        QueryMode::CompiledSql => {
            if let Some(refusal) = compile_refusal(model) {
                return Err(refusal);
            }
            if model.compiled_sql.trim().is_empty() {
                return Err(QueryRefusal::NoCompiledSql {
                    unique_id: model.unique_id.clone(),
                });
            }
            ReadOnlyQuery::from_sql(&model.compiled_sql).map_err(|error| match error {
                WarehouseError::NotSingleStatement { detail } => QueryRefusal::NotSingleStatement {
                    unique_id: model.unique_id.clone(),
                    detail,
                },
                other => QueryRefusal::NotSingleStatement {
                    unique_id: model.unique_id.clone(),
                    detail: other.to_string(),
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> pb::Model {
        pb::Model {
            unique_id: "model.shop.customers".into(),
            name: "customers".into(),
            database: "analytics".into(),
            schema: "public".into(),
            alias: "customers".into(),
            relation_name: "\"analytics\".\"public\".\"customers\"".into(),
            materialized: "table".into(),
            compiled_sql: "select 1 as id\n;\n".into(),
            ..Default::default()
        }
    }

    #[test]
    fn relation_mode_selects_the_rendered_relation() {
        let query = query_for(&model(), QueryMode::Relation).unwrap();
        assert_eq!(
            query.sql(),
            "select * from \"analytics\".\"public\".\"customers\""
        );
        let relation = relation_of(&model()).unwrap();
        assert_eq!(relation.identifier, "customers");
        assert_eq!(relation.schema, "public");
    }

    #[test]
    fn compiled_mode_runs_the_compiled_sql_without_its_trailing_semicolon() {
        let query = query_for(&model(), QueryMode::CompiledSql).unwrap();
        assert_eq!(query.sql(), "select 1 as id");
    }

    #[test]
    fn a_semicolon_inside_is_refused_and_the_message_says_so() {
        let mut m = model();
        m.compiled_sql = "select 1; delete from customers".into();
        let refusal = query_for(&m, QueryMode::CompiledSql).unwrap_err();
        assert!(matches!(refusal, QueryRefusal::NotSingleStatement { .. }));
        assert!(refusal.to_string().contains("';'"), "{refusal}");
    }

    #[test]
    fn compile_failures_and_warehouse_needs_are_refused_clearly() {
        let mut m = model();
        m.compile_error = "'ref' to unknown model 'nope'".into();
        let refusal = query_for(&m, QueryMode::CompiledSql).unwrap_err();
        assert!(matches!(refusal, QueryRefusal::DoesNotCompile { .. }));
        assert!(breakage(&m, QueryMode::Relation).is_some());
        m.compile_error = "needs a live warehouse: run_query".into();
        let refusal = query_for(&m, QueryMode::CompiledSql).unwrap_err();
        assert_eq!(
            refusal,
            QueryRefusal::NeedsWarehouse {
                unique_id: m.unique_id.clone(),
                reason: "run_query".into()
            }
        );
        // the relation is still there, built by `dbt run`
        assert!(query_for(&m, QueryMode::Relation).is_ok());
        assert_eq!(breakage(&m, QueryMode::Relation), None);
    }

    #[test]
    fn ephemeral_models_have_no_relation() {
        let mut m = model();
        m.materialized = "ephemeral".into();
        assert!(matches!(
            query_for(&m, QueryMode::Relation),
            Err(QueryRefusal::NoRelation { .. })
        ));
        assert!(query_for(&m, QueryMode::CompiledSql).is_ok());
    }

    #[test]
    fn query_modes_round_trip_and_unspecified_is_relation() {
        assert_eq!(QueryMode::from_wire(0), Ok(QueryMode::Relation));
        for mode in [QueryMode::Relation, QueryMode::CompiledSql] {
            assert_eq!(QueryMode::from_wire(mode.to_wire() as i32), Ok(mode));
        }
        assert!(QueryMode::from_wire(9).is_err());
    }
}
