//! Which diff strategy a run uses: `BACKFLOW` always Backflow-side; `WAREHOUSE` needs a
//! writable Backflow schema on a warehouse whose SQL is built (PostgreSQL), else the run
//! fails saying why; `AUTO` (and unset) is warehouse-side exactly when that is possible.
//!
//! A state belongs to one strategy (the hashes differ): when a sync's effective strategy
//! changes (a schema is added to its source under AUTO), its first run under the new one
//! starts from an empty state, as after a reset.

use backflow_proto::retl::v1::DiffStrategy;
use backflow_warehouse::SchemaWriter;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Strategy {
    Backflow,
    Warehouse(Arc<dyn SchemaWriter>),
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Backflow => "backflow",
            Strategy::Warehouse(_) => "warehouse",
        }
    }
}

/// The writer of the model's source, or why there is none (no schema, unsupported kind).
pub type Writable = Result<Arc<dyn SchemaWriter>, String>;

/// The strategy of a run, or why the configured one cannot run.
pub fn choose(configured: DiffStrategy, writable: &Writable) -> Result<Strategy, String> {
    match (configured, writable) {
        (DiffStrategy::Backflow, _) => Ok(Strategy::Backflow),
        (DiffStrategy::Warehouse, Ok(writer)) => Ok(Strategy::Warehouse(writer.clone())),
        (DiffStrategy::Warehouse, Err(why)) => Err(format!(
            "diff_strategy warehouse needs a source whose backflow schema backflow may write to: {why}"
        )),
        (DiffStrategy::Auto | DiffStrategy::Unspecified, Ok(writer)) => {
            Ok(Strategy::Warehouse(writer.clone()))
        }
        (DiffStrategy::Auto | DiffStrategy::Unspecified, Err(_)) => Ok(Strategy::Backflow),
    }
}

/// Whether a source (catalog wire kind, Backflow schema) can hold a warehouse-side state:
/// checked when a sync asking for `WAREHOUSE` is created, before any run.
pub fn warehouse_side_possible(kind: i32, backflow_schema: &str) -> Result<(), String> {
    use backflow_proto::catalog::v1::WarehouseKind;
    if backflow_schema.trim().is_empty() {
        return Err(
            "the model's source has no backflow schema (it is read-only to backflow)".into(),
        );
    }
    match WarehouseKind::try_from(kind) {
        Ok(WarehouseKind::Postgres) => Ok(()),
        Ok(other) => Err(format!(
            "the warehouse-side diff is built for postgres only; the model's source is {}",
            other
                .as_str_name()
                .trim_start_matches("WAREHOUSE_KIND_")
                .to_lowercase()
        )),
        Err(_) => Err(format!("warehouse kind {kind} is not known")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_source_and_warehouse_insists() {
        let none: Writable = Err("the source has no backflow schema".into());
        assert!(matches!(
            choose(DiffStrategy::Auto, &none),
            Ok(Strategy::Backflow)
        ));
        assert!(matches!(
            choose(DiffStrategy::Warehouse, &none),
            Err(why) if why.contains("no backflow schema")
        ));
        assert!(matches!(
            choose(DiffStrategy::Backflow, &none),
            Ok(Strategy::Backflow)
        ));
        use backflow_proto::catalog::v1::WarehouseKind;
        assert!(warehouse_side_possible(WarehouseKind::Postgres as i32, "bf").is_ok());
        assert!(matches!(
            warehouse_side_possible(WarehouseKind::Snowflake as i32, "bf"),
            Err(why) if why.ends_with("source is snowflake")
        ));
        assert!(warehouse_side_possible(WarehouseKind::Postgres as i32, " ").is_err());
    }
}
