//! Turns what the dbt engine read into what the catalog stores: one `Model` per enabled
//! dbt model with its relation, compiled SQL, columns, tests (by name per column, and
//! the unique ids of every data test of the model, so a trigger can tell whether they
//! passed in a dbt run) and primary-key suggestions (columns that carry both `unique`
//! and `not_null` tests). Pure.

use backflow_dbt::catalog::{Catalog, CompileStatus, Node};
use backflow_proto::catalog::v1 as pb;
use std::collections::{BTreeMap, BTreeSet};

/// Generic tests per (model, column): test names such as `unique`, `not_null`.
type ColumnTests = BTreeMap<(String, String), BTreeSet<String>>;

/// Unique ids of the data tests of each model.
type ModelTests = BTreeMap<String, BTreeSet<String>>;

pub fn models_of(catalog: &Catalog, connection_id: &str, commit_sha: &str) -> Vec<pb::Model> {
    let tests = column_tests(catalog);
    let test_ids = model_tests(catalog);
    catalog
        .models()
        .map(|node| {
            let mut model = model_of(node, &tests, connection_id, commit_sha);
            model.test_unique_ids = test_ids
                .get(&node.unique_id)
                .map(|ids| ids.iter().cloned().collect())
                .unwrap_or_default();
            model
        })
        .collect()
}

/// A test belongs to the node it is attached to (generic tests: dbt's `attached_node`);
/// a test attached to nothing (singular tests) belongs to every model it depends on.
fn model_tests(catalog: &Catalog) -> ModelTests {
    let mut out = ModelTests::new();
    for node in catalog.nodes.values() {
        for test in &node.tests {
            out.entry(node.unique_id.clone())
                .or_default()
                .insert(test.clone());
        }
    }
    for test in catalog.nodes.values().filter(|n| n.resource_type == "test") {
        match &test.attached_node {
            Some(attached) => {
                out.entry(attached.clone())
                    .or_default()
                    .insert(test.unique_id.clone());
            }
            None => {
                for parent in &test.depends_on.nodes {
                    out.entry(parent.clone())
                        .or_default()
                        .insert(test.unique_id.clone());
                }
            }
        }
    }
    out
}

fn column_tests(catalog: &Catalog) -> ColumnTests {
    let mut tests = ColumnTests::new();
    for node in catalog.nodes.values().filter(|n| n.resource_type == "test") {
        let (Some(attached), Some(column)) = (&node.attached_node, &node.column_name) else {
            continue;
        };
        let name = node
            .test_metadata
            .as_ref()
            .and_then(|meta| meta.get("name"))
            .and_then(|name| name.as_str())
            .unwrap_or(&node.name);
        tests
            .entry((attached.clone(), column.clone()))
            .or_default()
            .insert(name.to_string());
    }
    tests
}

fn model_of(node: &Node, tests: &ColumnTests, connection_id: &str, commit_sha: &str) -> pb::Model {
    let tests_of = |column: &str| -> Vec<String> {
        tests
            .get(&(node.unique_id.clone(), column.to_string()))
            .map(|names| names.iter().cloned().collect())
            .unwrap_or_default()
    };
    let columns: Vec<pb::Column> = node
        .columns
        .iter()
        .map(|column| pb::Column {
            name: column.name.clone(),
            description: column.description.clone(),
            data_type: column.data_type.clone().unwrap_or_default(),
            tests: tests_of(&column.name),
            origin: pb::ColumnOrigin::Yaml as i32,
            nullable: true,
            ..Default::default()
        })
        .collect();
    let primary_key_suggestions = primary_key_suggestions(node, tests);
    let compile_error = match (
        &node.compile_status,
        &node.compile_error,
        &node.needs_warehouse,
    ) {
        (CompileStatus::Success, _, _) => String::new(),
        (_, Some(error), _) => error.clone(),
        (_, None, Some(reason)) => format!("needs a live warehouse: {reason}"),
        (_, None, None) => "not compiled".into(),
    };
    pb::Model {
        unique_id: node.unique_id.clone(),
        connection_id: connection_id.to_string(),
        commit_sha: commit_sha.to_string(),
        name: node.name.clone(),
        package_name: node.package_name.clone(),
        original_file_path: node.original_file_path.clone(),
        database: node.database.clone().unwrap_or_default(),
        schema: node.schema.clone(),
        alias: node.alias.clone(),
        relation_name: node.relation_name.clone().unwrap_or_default(),
        materialized: node.materialized.clone(),
        description: node.description.clone(),
        tags: node.tags.clone(),
        columns,
        depends_on: node.depends_on.nodes.clone(),
        compiled_sql: node.compiled_code.clone().unwrap_or_default(),
        checksum: node.checksum.clone(),
        primary_key_suggestions,
        compile_error,
        test_unique_ids: Vec::new(),
    }
}

/// Columns tested both `unique` and `not_null`, in column order (declared columns
/// first, then any tested column not declared in YAML).
fn primary_key_suggestions(node: &Node, tests: &ColumnTests) -> Vec<String> {
    let is_key = |column: &str| {
        tests
            .get(&(node.unique_id.clone(), column.to_string()))
            .is_some_and(|names| names.contains("unique") && names.contains("not_null"))
    };
    let mut suggestions: Vec<String> = node
        .columns
        .iter()
        .map(|column| column.name.clone())
        .filter(|name| is_key(name))
        .collect();
    for ((model, column), _) in tests.range((node.unique_id.clone(), String::new())..) {
        if model != &node.unique_id {
            break;
        }
        if is_key(column) && !suggestions.contains(column) {
            suggestions.push(column.clone());
        }
    }
    suggestions
}

#[cfg(test)]
mod tests {
    use super::*;
    use backflow_dbt::ParseOptions;
    use std::path::Path;

    fn write(dir: &Path, path: &str, text: &str) {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
    }

    #[test]
    fn suggests_keys_from_unique_and_not_null_tests() {
        let dir = std::env::temp_dir().join(format!("snapshot-builder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write(
            &dir,
            "dbt_project.yml",
            "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n",
        );
        write(&dir, "models/customers.sql", "select 1 as id, 'a' as email");
        write(
            &dir,
            "models/orders.sql",
            "select * from {{ ref('customers') }}",
        );
        write(
            &dir,
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: customers\n    columns:\n      - name: id\n        tests: [unique, not_null]\n      - name: email\n        tests: [unique]\n",
        );
        let catalog = backflow_dbt::parse_project(&dir, &ParseOptions::default()).expect("parses");
        let models = models_of(&catalog, "conn", "abc");
        assert_eq!(models.len(), 2);
        let customers = models
            .iter()
            .find(|m| m.name == "customers")
            .expect("customers");
        assert_eq!(customers.primary_key_suggestions, vec!["id".to_string()]);
        assert_eq!(
            customers.columns[0].tests,
            vec!["not_null".to_string(), "unique".to_string()]
        );
        assert_eq!(
            customers.relation_name,
            "\"warehouse\".\"analytics\".\"customers\""
        );
        assert_eq!(customers.test_unique_ids.len(), 3, "{customers:?}");
        assert!(customers
            .test_unique_ids
            .iter()
            .all(|id| id.starts_with("test.shop.")));
        assert!(customers
            .test_unique_ids
            .iter()
            .any(|id| id.starts_with("test.shop.not_null_customers_id")));
        let orders = models.iter().find(|m| m.name == "orders").expect("orders");
        assert_eq!(orders.test_unique_ids, Vec::<String>::new());
        assert_eq!(orders.depends_on, vec!["model.shop.customers".to_string()]);
        assert!(orders
            .compiled_sql
            .contains("\"warehouse\".\"analytics\".\"customers\""));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
