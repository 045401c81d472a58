//! The warehouse adapters dbt 1.7 compiles for — postgres, redshift, snowflake, bigquery,
//! databricks — and everything about them that changes dbt's output: the `target` fields,
//! how relations are quoted and rendered, the `adapter.dispatch` prefix order, the adapter's
//! own built-in macros, `adapter.quote` and the `api.Column` type labels. The engine asks
//! this module; no adapter name is tested anywhere else.
//!
//! Each adapter is one declarative [`Spec`] in its own file, written from `dbt-<adapter>` 1.7.x
//! (the conformance oracle: dbt-core 1.7.20 with dbt-postgres 1.7.20, dbt-redshift 1.7.7,
//! dbt-snowflake 1.7.5, dbt-bigquery 1.7.9, dbt-databricks 1.7.17 on dbt-spark 1.7.1).

mod bigquery;
mod databricks;
mod postgres;
mod redshift;
mod snowflake;

use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;

/// A dbt adapter (the profile's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Adapter {
    #[default]
    Postgres,
    Redshift,
    Snowflake,
    Bigquery,
    Databricks,
}

/// What dbt-<adapter> contributes, as data.
#[derive(Debug)]
pub struct Spec {
    /// the profile `type` (`target.type`, `adapter.type()`)
    pub name: &'static str,
    /// `adapter.dispatch` prefixes, most specific first (the adapter, its parents, `default`)
    pub dispatch_prefixes: &'static [&'static str],
    /// quote character of identifiers (`adapter.quote`, rendered relations)
    pub quote_char: char,
    /// the Relation class' name, as `relation.metadata.type` reports it
    pub relation_class: &'static str,
    /// the Relation class' default quote policy (database, schema, identifier)
    pub quote_policy: [bool; 3],
    /// the longest relation identifier the warehouse accepts, when dbt checks it
    pub max_identifier_len: Option<usize>,
    /// the adapter's macro packages: (package, path, macros), e.g. `dbt_snowflake`
    pub macros: &'static [(&'static str, &'static str, &'static str)],
    /// `target` keys that alias `database` / `schema` (`project`, `dataset`, `catalog`, `dbname`)
    pub database_aliases: &'static [&'static str],
    pub schema_aliases: &'static [&'static str],
    /// `api.Column`'s type labels (upper-case name -> label) and its quirks
    pub type_labels: &'static [(&'static str, &'static str)],
    pub column: ColumnFlavor,
}

/// How an adapter's `api.Column` class differs from dbt's base `Column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnFlavor {
    /// `Column` (postgres, redshift, snowflake)
    Base,
    /// `BigQueryColumn`: `numeric_type` ignores precision and scale
    Bigquery,
    /// `DatabricksColumn`: labels lower-cased; `numeric_type` is `decimal`
    Databricks,
}

impl Adapter {
    pub const ALL: [Adapter; 5] = [
        Adapter::Postgres,
        Adapter::Redshift,
        Adapter::Snowflake,
        Adapter::Bigquery,
        Adapter::Databricks,
    ];

    pub fn spec(self) -> &'static Spec {
        match self {
            Adapter::Postgres => &postgres::SPEC,
            Adapter::Redshift => &redshift::SPEC,
            Adapter::Snowflake => &snowflake::SPEC,
            Adapter::Bigquery => &bigquery::SPEC,
            Adapter::Databricks => &databricks::SPEC,
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// `adapter.quote(s)`.
    pub fn quote(self, s: &str) -> String {
        let q = self.spec().quote_char;
        format!("{q}{s}{q}")
    }

    /// The `target` object of the Jinja context (the fields dbt takes from the profile
    /// output, with the adapter's aliases for database and schema).
    pub fn target_map(self, name: &str, database: &str, schema: &str) -> Map<String, Value> {
        let spec = self.spec();
        let mut m = Map::new();
        m.insert("name".into(), Value::from(name));
        m.insert("target_name".into(), Value::from(name));
        m.insert("type".into(), Value::from(spec.name));
        m.insert("database".into(), Value::from(database));
        m.insert("schema".into(), Value::from(schema));
        for k in spec.database_aliases {
            m.insert((*k).into(), Value::from(database));
        }
        for k in spec.schema_aliases {
            m.insert((*k).into(), Value::from(schema));
        }
        m.insert("profile_name".into(), Value::from("default"));
        m.insert("user".into(), Value::from("dbt"));
        m.insert("threads".into(), Value::from(4));
        m
    }

    /// `api.Column.translate_type(dtype)`.
    pub fn translate_type(self, dtype: &str) -> String {
        let spec = self.spec();
        let upper = dtype.to_uppercase();
        let label = spec
            .type_labels
            .iter()
            .find(|(k, _)| *k == upper)
            .map_or(dtype.to_string(), |(_, v)| (*v).to_string());
        match spec.column {
            ColumnFlavor::Databricks => label.to_lowercase(),
            _ => label,
        }
    }

    /// `api.Column.numeric_type(dtype, precision, scale)`; `None` = not given.
    pub fn numeric_type(self, dtype: &str, precision_scale: Option<(String, String)>) -> String {
        match (self.spec().column, precision_scale) {
            (ColumnFlavor::Bigquery, _) => dtype.to_string(),
            (ColumnFlavor::Databricks, None) => "decimal".into(),
            (ColumnFlavor::Databricks, Some((p, s))) => format!("decimal({p},{s})"),
            (ColumnFlavor::Base, None) => dtype.to_string(),
            (ColumnFlavor::Base, Some((p, s))) => format!("{dtype}({p},{s})"),
        }
    }

    /// `api.Column.string_type(size)`.
    pub fn string_type(self, size: i64) -> String {
        format!("character varying({size})")
    }
}

impl fmt::Display for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An adapter name that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown adapter '{0}' (expected postgres, redshift, snowflake, bigquery or databricks)")]
pub struct UnknownAdapter(pub String);

impl FromStr for Adapter {
    type Err = UnknownAdapter;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Adapter::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownAdapter(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_others() {
        assert_eq!("Snowflake".parse::<Adapter>(), Ok(Adapter::Snowflake));
        assert_eq!(
            "oracle".parse::<Adapter>(),
            Err(UnknownAdapter("oracle".into()))
        );
        for a in Adapter::ALL {
            assert_eq!(a.name().parse::<Adapter>(), Ok(a));
        }
    }

    #[test]
    fn dispatch_order_follows_parents() {
        assert_eq!(
            Adapter::Redshift.spec().dispatch_prefixes,
            ["redshift", "postgres", "default"]
        );
        assert_eq!(
            Adapter::Databricks.spec().dispatch_prefixes,
            ["databricks", "spark", "default"]
        );
    }

    #[test]
    fn column_types_as_dbt_1_7() {
        // measured with dbt-core 1.7.20 + each adapter (conformance/dbt_offline.py)
        let labels = |a: Adapter| {
            format!(
                "{}|{}|{}|{}",
                a.translate_type("string"),
                a.translate_type("integer"),
                a.translate_type("float"),
                a.numeric_type("numeric", Some(("28".into(), "6".into())))
            )
        };
        assert_eq!(
            labels(Adapter::Snowflake),
            "TEXT|integer|float|numeric(28,6)"
        );
        assert_eq!(labels(Adapter::Bigquery), "string|INT64|FLOAT64|numeric");
        assert_eq!(
            labels(Adapter::Databricks),
            "string|integer|float|decimal(28,6)"
        );
        assert_eq!(Adapter::Bigquery.quote("x"), "`x`");
        assert_eq!(Adapter::Snowflake.quote("x"), "\"x\"");
    }
}
