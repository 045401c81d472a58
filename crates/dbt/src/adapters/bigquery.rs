//! dbt-bigquery 1.7.9: backtick-quoted `project`.`dataset`.`table` (database = project,
//! schema = dataset), BigQuery type labels (INT64, FLOAT64, string).

use super::{ColumnFlavor, Spec};

pub(super) const SPEC: Spec = Spec {
    name: "bigquery",
    dispatch_prefixes: &["bigquery", "default"],
    quote_char: '`',
    relation_class: "BigQueryRelation",
    quote_policy: [true, true, true],
    max_identifier_len: None,
    macros: &[(
        "dbt_bigquery",
        "macros/adapters.sql",
        include_str!("bigquery.sql"),
    )],
    database_aliases: &["project"],
    schema_aliases: &["dataset"],
    type_labels: &[
        ("TEXT", "STRING"),
        ("FLOAT", "FLOAT64"),
        ("INTEGER", "INT64"),
    ],
    column: ColumnFlavor::Bigquery,
};
