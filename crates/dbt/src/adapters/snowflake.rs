//! dbt-snowflake 1.7.5: the quote policy is false for every part, so relations render bare
//! (`warehouse.analytics.orders`; dbt upper-cases nothing, Snowflake folds unquoted names
//! itself); `adapter.quote` still uses double quotes.

use super::{ColumnFlavor, Spec};

pub(super) const SPEC: Spec = Spec {
    name: "snowflake",
    dispatch_prefixes: &["snowflake", "default"],
    quote_char: '"',
    relation_class: "SnowflakeRelation",
    quote_policy: [false, false, false],
    max_identifier_len: None,
    macros: &[(
        "dbt_snowflake",
        "macros/adapters.sql",
        include_str!("snowflake.sql"),
    )],
    database_aliases: &[],
    schema_aliases: &[],
    type_labels: &[("STRING", "TEXT")],
    column: ColumnFlavor::Base,
};
