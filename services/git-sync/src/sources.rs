//! What git-sync knows of a warehouse source: only what parsing needs, the dbt adapter
//! (from the source's kind) and the target database (from its settings), learnt from
//! the catalog's `WarehouseSourceChangedEvent`s. Pure: deciding which event wins and
//! what a source means for the parse; the projection table lives in `store/sources.rs`.

use backflow_dbt::Adapter;
use backflow_proto::catalog::v1 as catalog;

/// dbt-databricks' database when the source names no catalog.
const DATABRICKS_DEFAULT_CATALOG: &str = "hive_metastore";

/// One source as the projection holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSource {
    pub workspace_id: String,
    pub source_id: String,
    /// `backflow.catalog.v1.WarehouseKind`.
    pub kind: i32,
    /// The target database dbt renders relations in (BigQuery project, Databricks catalog).
    pub database: String,
    pub version: i64,
    pub deleted: bool,
}

/// Why an event cannot become a [`KnownSource`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceEventError {
    #[error("source event without a source")]
    MissingSource,
    #[error("source event without a source id or workspace id")]
    MissingId,
    #[error("source {id}: kind {kind} is not a warehouse kind")]
    Kind { id: String, kind: i32 },
}

impl KnownSource {
    /// The projection row a catalog event describes.
    pub fn from_event(
        event: &catalog::WarehouseSourceChangedEvent,
    ) -> Result<Self, SourceEventError> {
        let source = event
            .source
            .as_ref()
            .ok_or(SourceEventError::MissingSource)?;
        let workspace_id = if event.workspace_id.is_empty() {
            source.workspace_id.clone()
        } else {
            event.workspace_id.clone()
        };
        if source.id.is_empty() || workspace_id.is_empty() {
            return Err(SourceEventError::MissingId);
        }
        let kind = catalog::WarehouseKind::try_from(source.kind)
            .ok()
            .filter(|kind| *kind != catalog::WarehouseKind::Unspecified)
            .ok_or_else(|| SourceEventError::Kind {
                id: source.id.clone(),
                kind: source.kind,
            })?;
        Ok(Self {
            workspace_id,
            source_id: source.id.clone(),
            kind: kind as i32,
            database: target_database(kind, |key| source.settings.get(key).map(String::as_str)),
            version: source.version,
            deleted: event.deleted,
        })
    }

    /// The dbt adapter that renders this source's SQL.
    pub fn adapter(&self) -> Adapter {
        adapter_of(self.kind)
    }

    /// Whether parsing with `other` instead would render relations differently.
    pub fn parses_like(&self, other: &KnownSource) -> bool {
        self.kind == other.kind && self.database == other.database
    }
}

/// The dbt adapter of a warehouse kind (postgres for an unknown kind).
pub fn adapter_of(kind: i32) -> Adapter {
    match catalog::WarehouseKind::try_from(kind) {
        Ok(catalog::WarehouseKind::Redshift) => Adapter::Redshift,
        Ok(catalog::WarehouseKind::Snowflake) => Adapter::Snowflake,
        Ok(catalog::WarehouseKind::Bigquery) => Adapter::Bigquery,
        Ok(catalog::WarehouseKind::Databricks) => Adapter::Databricks,
        _ => Adapter::Postgres,
    }
}

/// The database dbt's target names: `database` (postgres, redshift, snowflake),
/// `project` (bigquery), `catalog` (databricks, `hive_metastore` when unset).
fn target_database<'a>(
    kind: catalog::WarehouseKind,
    setting: impl Fn(&str) -> Option<&'a str>,
) -> String {
    let value = |key| setting(key).map(str::trim).unwrap_or_default().to_string();
    match kind {
        catalog::WarehouseKind::Bigquery => value("project"),
        catalog::WarehouseKind::Databricks => {
            let catalog = value("catalog");
            if catalog.is_empty() {
                DATABRICKS_DEFAULT_CATALOG.to_string()
            } else {
                catalog
            }
        }
        _ => value("database"),
    }
}

/// Whether an event about a source at `incoming` (version, deleted) replaces what the
/// projection holds. Older versions are dropped; at the same version a delete wins
/// (the catalog deletes without bumping the version) and nothing revives it.
pub fn replaces(stored: Option<(i64, bool)>, incoming: (i64, bool)) -> bool {
    match stored {
        None => true,
        Some((version, deleted)) => incoming.0 > version || (incoming.0 == version && !deleted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        kind: catalog::WarehouseKind,
        settings: &[(&str, &str)],
    ) -> catalog::WarehouseSourceChangedEvent {
        catalog::WarehouseSourceChangedEvent {
            workspace_id: "ws".into(),
            source: Some(catalog::WarehouseSource {
                id: "src".into(),
                workspace_id: "ws".into(),
                kind: kind as i32,
                settings: settings
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                version: 3,
                ..Default::default()
            }),
            deleted: false,
        }
    }

    #[test]
    fn kind_decides_the_adapter_and_settings_the_database() {
        use catalog::WarehouseKind as K;
        let cases = [
            (
                K::Postgres,
                vec![("database", "shop")],
                Adapter::Postgres,
                "shop",
            ),
            (
                K::Redshift,
                vec![("database", "dev")],
                Adapter::Redshift,
                "dev",
            ),
            (
                K::Snowflake,
                vec![("database", "ANALYTICS")],
                Adapter::Snowflake,
                "ANALYTICS",
            ),
            (
                K::Bigquery,
                vec![("project", "acme-prod")],
                Adapter::Bigquery,
                "acme-prod",
            ),
            (
                K::Databricks,
                vec![("catalog", "main")],
                Adapter::Databricks,
                "main",
            ),
            (K::Databricks, vec![], Adapter::Databricks, "hive_metastore"),
        ];
        for (kind, settings, adapter, database) in cases {
            let source = KnownSource::from_event(&event(kind, &settings)).expect("valid");
            assert_eq!(source.adapter(), adapter, "{kind:?}");
            assert_eq!(source.database, database, "{kind:?}");
            assert_eq!(source.version, 3);
        }
    }

    #[test]
    fn events_without_a_usable_source_are_refused() {
        let mut no_source = event(catalog::WarehouseKind::Postgres, &[]);
        no_source.source = None;
        assert_eq!(
            KnownSource::from_event(&no_source),
            Err(SourceEventError::MissingSource)
        );
        let unspecified = event(catalog::WarehouseKind::Unspecified, &[]);
        assert!(matches!(
            KnownSource::from_event(&unspecified),
            Err(SourceEventError::Kind { kind: 0, .. })
        ));
    }

    #[test]
    fn older_events_are_dropped_and_deletes_stick() {
        assert!(replaces(None, (1, false)));
        assert!(replaces(Some((1, false)), (2, false)));
        assert!(replaces(Some((2, false)), (2, false)));
        assert!(replaces(Some((2, false)), (2, true)));
        assert!(!replaces(Some((3, false)), (2, false)));
        assert!(!replaces(Some((2, true)), (2, false)));
        assert!(replaces(Some((2, true)), (3, false)));
    }
}
