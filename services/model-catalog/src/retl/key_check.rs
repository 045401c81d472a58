//! The primary-key check: one scalar query over the model's query counting rows,
//! distinct keys, keys that occur more than once, and rows with a null key column,
//! plus a second query for a few duplicate examples when there are any. Key columns
//! are resolved against the model's known columns first, so a missing one is named
//! before anything runs, and quoted the way the warehouse quotes identifiers.

use backflow_warehouse::{ReadOnlyQuery, WarehouseKind};

/// How many duplicate keys the check shows as examples.
pub const EXAMPLES: u64 = 5;

/// Key columns that are not columns of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingKeyColumns {
    pub missing: Vec<String>,
    pub available: Vec<String>,
}

impl std::fmt::Display for MissingKeyColumns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = self
            .missing
            .iter()
            .map(|name| format!("{name:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (noun, verb, what) = if self.missing.len() == 1 {
            ("column", "is", "a column")
        } else {
            ("columns", "are", "columns")
        };
        write!(
            f,
            "primary key {noun} {names} {verb} not {what} of the model (its columns: {})",
            self.available.join(", ")
        )
    }
}

impl std::error::Error for MissingKeyColumns {}

/// Each requested key column as the model spells it: an exact match, else the one
/// column equal to it without case (warehouses fold unquoted names).
pub fn resolve_key_columns(
    requested: &[String],
    columns: &[String],
) -> Result<Vec<String>, MissingKeyColumns> {
    let mut resolved = Vec::new();
    let mut missing = Vec::new();
    for key in requested {
        let exact = columns.iter().find(|c| *c == key);
        let folded: Vec<&String> = columns
            .iter()
            .filter(|c| c.eq_ignore_ascii_case(key))
            .collect();
        match (exact, folded.as_slice()) {
            (Some(column), _) => resolved.push(column.clone()),
            (None, [column]) => resolved.push((*column).clone()),
            _ => missing.push(key.clone()),
        }
    }
    if missing.is_empty() {
        Ok(resolved)
    } else {
        Err(MissingKeyColumns {
            missing,
            available: columns.to_vec(),
        })
    }
}

/// Quotes an identifier as `kind` does (`"x"`, or `` `x` `` on BigQuery and Databricks).
pub fn quote(kind: WarehouseKind, name: &str) -> String {
    match kind {
        WarehouseKind::Bigquery | WarehouseKind::Databricks => {
            format!("`{}`", name.replace('`', "``"))
        }
        _ => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

fn any_null(kind: WarehouseKind, keys: &[String]) -> String {
    keys.iter()
        .map(|key| format!("{} is null", quote(kind, key)))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn key_list(kind: WarehouseKind, keys: &[String]) -> String {
    keys.iter()
        .map(|key| quote(kind, key))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row: row_count, distinct_keys, duplicate_keys, null_keys. One pass: group by
/// the key, then sum over the groups.
pub fn counts_query(kind: WarehouseKind, base: &ReadOnlyQuery, keys: &[String]) -> String {
    let keys_sql = key_list(kind, keys);
    let null = any_null(kind, keys);
    format!(
        "select cast(coalesce(sum(backflow_n), 0) as bigint) as row_count, \
         cast(coalesce(sum(case when backflow_null = 0 then 1 else 0 end), 0) as bigint) as distinct_keys, \
         cast(coalesce(sum(case when backflow_null = 0 and backflow_n > 1 then 1 else 0 end), 0) as bigint) as duplicate_keys, \
         cast(coalesce(sum(case when backflow_null = 1 then backflow_n else 0 end), 0) as bigint) as null_keys \
         from (select count(*) as backflow_n, case when {null} then 1 else 0 end as backflow_null \
         from ({base}) as backflow_q group by {keys_sql}) as backflow_k",
        base = base.sql()
    )
}

/// Duplicate keys with their counts, most frequent first (the caller limits the rows).
pub fn duplicates_query(kind: WarehouseKind, base: &ReadOnlyQuery, keys: &[String]) -> String {
    let keys_sql = key_list(kind, keys);
    let not_null = keys
        .iter()
        .map(|key| format!("{} is not null", quote(kind, key)))
        .collect::<Vec<_>>()
        .join(" and ");
    format!(
        "select {keys_sql}, count(*) as backflow_count from ({base}) as backflow_q \
         where {not_null} group by {keys_sql} having count(*) > 1 \
         order by count(*) desc, {keys_sql}",
        base = base.sql()
    )
}

/// The four counts as the check reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyCounts {
    pub row_count: i64,
    pub distinct_keys: i64,
    pub duplicate_keys: i64,
    pub null_keys: i64,
}

impl KeyCounts {
    /// From the scalar row of [`counts_query`]; a NULL cell counts 0.
    pub fn from_row(row: &[Option<i64>]) -> Option<Self> {
        match row {
            [rows, distinct, duplicates, nulls] => Some(Self {
                row_count: rows.unwrap_or(0),
                distinct_keys: distinct.unwrap_or(0),
                duplicate_keys: duplicates.unwrap_or(0),
                null_keys: nulls.unwrap_or(0),
            }),
            _ => None,
        }
    }

    pub fn unique(&self) -> bool {
        self.duplicate_keys == 0 && self.null_keys == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn key_columns_resolve_exactly_or_without_case() {
        let columns = names(&["ID", "email", "Email2"]);
        assert_eq!(
            resolve_key_columns(&names(&["id", "email"]), &columns),
            Ok(names(&["ID", "email"]))
        );
    }

    #[test]
    fn missing_key_columns_are_named_with_the_columns_there_are() {
        let error =
            resolve_key_columns(&names(&["id", "nope"]), &names(&["id", "email"])).unwrap_err();
        assert_eq!(error.missing, names(&["nope"]));
        assert_eq!(
            error.to_string(),
            "primary key column \"nope\" is not a column of the model (its columns: id, email)"
        );
    }

    #[test]
    fn identifiers_are_quoted_per_warehouse() {
        assert_eq!(quote(WarehouseKind::Postgres, "a\"b"), "\"a\"\"b\"");
        assert_eq!(quote(WarehouseKind::Bigquery, "a`b"), "`a``b`");
        assert_eq!(quote(WarehouseKind::Snowflake, "ID"), "\"ID\"");
    }

    #[test]
    fn the_counts_query_is_one_statement_over_the_model_query() {
        let base = ReadOnlyQuery::from_sql("select * from t").unwrap();
        let sql = counts_query(WarehouseKind::Postgres, &base, &names(&["a", "b"]));
        assert!(sql.contains("from (select * from t) as backflow_q group by \"a\", \"b\""));
        assert!(sql.contains("case when \"a\" is null or \"b\" is null then 1 else 0 end"));
        assert!(!sql.contains(';'));
        let dups = duplicates_query(WarehouseKind::Databricks, &base, &names(&["a"]));
        assert!(dups.contains("where `a` is not null group by `a` having count(*) > 1"));
    }

    #[test]
    fn counts_come_from_the_scalar_row() {
        let counts = KeyCounts::from_row(&[Some(10), Some(7), Some(2), None]).unwrap();
        assert_eq!(
            counts,
            KeyCounts {
                row_count: 10,
                distinct_keys: 7,
                duplicate_keys: 2,
                null_keys: 0
            }
        );
        assert!(!counts.unique());
        assert!(KeyCounts::from_row(&[Some(1)]).is_none());
    }
}
