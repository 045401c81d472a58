//! dbt-postgres 1.7.20: double-quoted relations, all parts quoted, 63-character identifiers.

use super::{ColumnFlavor, Spec};

pub(super) const SPEC: Spec = Spec {
    name: "postgres",
    dispatch_prefixes: &["postgres", "default"],
    quote_char: '"',
    relation_class: "PostgresRelation",
    quote_policy: [true, true, true],
    max_identifier_len: Some(63),
    macros: &[(
        "dbt_postgres",
        "macros/adapters.sql",
        include_str!("postgres.sql"),
    )],
    database_aliases: &["dbname"],
    schema_aliases: &[],
    type_labels: &[("STRING", "TEXT")],
    column: ColumnFlavor::Base,
};
