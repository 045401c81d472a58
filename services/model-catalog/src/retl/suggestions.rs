//! Primary-key suggestions for a model: columns the dbt project tests `unique` and
//! `not_null` come first (git-sync computes them from the tests), then columns that
//! look like ids among the columns the warehouse described (`id`, `<model>_id`, then
//! other `*_id`, `*_key`, `*uuid`), without repeats.

use backflow_proto::catalog::v1 as pb;

/// At most this many suggestions.
const MAX: usize = 5;

/// How id-like a column name is (lower is better); `None` for not an id.
fn id_rank(model_name: &str, column: &str) -> Option<u8> {
    let name = column.to_ascii_lowercase();
    let model = model_name.to_ascii_lowercase();
    let singular = model.strip_suffix('s').unwrap_or(&model);
    if name == "id" {
        Some(0)
    } else if name == format!("{model}_id") || name == format!("{singular}_id") {
        Some(1)
    } else if name.ends_with("_id") || name.ends_with("_key") {
        Some(2)
    } else if name.ends_with("uuid") || name.ends_with("guid") {
        Some(3)
    } else {
        None
    }
}

/// Tested keys first, then id-like described columns, in column order within a rank.
pub fn suggest(model: &pb::Model, described: &[pb::Column]) -> Vec<String> {
    let mut out: Vec<String> = model.primary_key_suggestions.clone();
    let mut ranked: Vec<(u8, usize, &str)> = described
        .iter()
        .enumerate()
        .filter_map(|(index, column)| {
            id_rank(&model.name, &column.name).map(|rank| (rank, index, column.name.as_str()))
        })
        .collect();
    ranked.sort();
    for (_, _, name) in ranked {
        if !out.iter().any(|known| known.eq_ignore_ascii_case(name)) {
            out.push(name.to_string());
        }
    }
    out.truncate(MAX);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str) -> pb::Column {
        pb::Column {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn tested_keys_come_first_then_id_like_columns() {
        let model = pb::Model {
            name: "customers".into(),
            primary_key_suggestions: vec!["email".into()],
            ..Default::default()
        };
        let described = [
            column("name"),
            column("account_id"),
            column("customer_id"),
            column("ID"),
            column("row_uuid"),
            column("EMAIL"),
        ];
        assert_eq!(
            suggest(&model, &described),
            vec!["email", "ID", "customer_id", "account_id", "row_uuid"]
        );
    }

    #[test]
    fn nothing_id_like_suggests_only_the_tested_keys() {
        let model = pb::Model {
            name: "events".into(),
            ..Default::default()
        };
        assert!(suggest(&model, &[column("payload")]).is_empty());
    }
}
