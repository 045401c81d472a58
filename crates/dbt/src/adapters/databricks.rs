//! dbt-databricks 1.7.17 on dbt-spark 1.7.1: backtick-quoted `catalog`.`schema`.`table`
//! (database = catalog), dispatch `databricks__`, then `spark__`, then `default__`.

use super::{ColumnFlavor, Spec};

pub(super) const SPEC: Spec = Spec {
    name: "databricks",
    dispatch_prefixes: &["databricks", "spark", "default"],
    quote_char: '`',
    relation_class: "DatabricksRelation",
    quote_policy: [true, true, true],
    max_identifier_len: None,
    macros: &[
        (
            "dbt_spark",
            "macros/adapters.sql",
            include_str!("spark.sql"),
        ),
        (
            "dbt_databricks",
            "macros/adapters.sql",
            include_str!("databricks.sql"),
        ),
    ],
    database_aliases: &["catalog"],
    schema_aliases: &[],
    type_labels: &[("LONG", "BIGINT")],
    column: ColumnFlavor::Databricks,
};
