//! dbt-redshift 1.7.7: renders like Postgres (its parent for dispatch: `redshift__`, then
//! `postgres__`), identifiers up to 127 characters, its own date and aggregate macros.

use super::{ColumnFlavor, Spec};

pub(super) const SPEC: Spec = Spec {
    name: "redshift",
    dispatch_prefixes: &["redshift", "postgres", "default"],
    quote_char: '"',
    relation_class: "RedshiftRelation",
    quote_policy: [true, true, true],
    max_identifier_len: Some(127),
    macros: &[
        (
            "dbt_postgres",
            "macros/adapters.sql",
            include_str!("postgres.sql"),
        ),
        (
            "dbt_redshift",
            "macros/adapters.sql",
            include_str!("redshift.sql"),
        ),
    ],
    database_aliases: &["dbname"],
    schema_aliases: &[],
    type_labels: &[("STRING", "TEXT")],
    column: ColumnFlavor::Base,
};
