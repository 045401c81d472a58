//! dbt's `run_results.json`, read for what it says about each node: which models (and
//! seeds, snapshots) were built, and which tests passed. Both triggers use it — a dbt
//! Cloud run's artifact fetched through the API, and a dbt Core run posted to Backflow
//! by any orchestrator — so a sync that asks for it runs only when its model was rebuilt
//! and its tests passed.
//!
//! Format: dbt-core 1.7 writes schema v5 (`metadata.dbt_schema_version` ends in
//! `run-results/v5.json`); v4–v6 have the same `results[].unique_id` / `results[].status`
//! fields, so any `run-results/vN` is accepted. Statuses per dbt's `RunStatus` and
//! `TestStatus`: `success`, `pass` and `warn` count as succeeded (a warning does not stop
//! `dbt build`); `error`, `fail`, `skipped` and `runtime error` as failed. Pure.

use serde_json::Value;

/// What one `run_results.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeResults {
    /// `metadata.invocation_id`: unique per dbt invocation (dedupe key of a dbt Core run).
    pub invocation_id: String,
    /// `args.which` (`run`, `build`, `test`, ...); empty when absent.
    pub command: String,
    pub succeeded: Vec<String>,
    pub failed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunResultsError {
    #[error("run_results.json is not json: {0}")]
    NotJson(String),
    #[error("run_results.json has no {0}")]
    Missing(&'static str),
    #[error("run_results.json schema {0:?} is not a dbt run-results schema")]
    Schema(String),
    #[error("run_results.json result {index} has no unique_id")]
    ResultWithoutId { index: usize },
}

pub fn parse(body: &[u8]) -> Result<NodeResults, RunResultsError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| RunResultsError::NotJson(err.to_string()))?;
    from_value(&value)
}

pub fn from_value(value: &Value) -> Result<NodeResults, RunResultsError> {
    let metadata = value
        .get("metadata")
        .ok_or(RunResultsError::Missing("metadata"))?;
    let schema = metadata
        .get("dbt_schema_version")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !schema.contains("run-results/v") {
        return Err(RunResultsError::Schema(schema.to_string()));
    }
    let results = value
        .get("results")
        .and_then(Value::as_array)
        .ok_or(RunResultsError::Missing("results"))?;
    let mut out = NodeResults {
        invocation_id: metadata
            .get("invocation_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        command: value
            .pointer("/args/which")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        ..NodeResults::default()
    };
    for (index, result) in results.iter().enumerate() {
        let unique_id = result
            .get("unique_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or(RunResultsError::ResultWithoutId { index })?;
        let status = result
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if succeeded(status) {
            out.succeeded.push(unique_id.to_string());
        } else {
            out.failed.push(unique_id.to_string());
        }
    }
    Ok(out)
}

fn succeeded(status: &str) -> bool {
    matches!(
        status.to_ascii_lowercase().as_str(),
        "success" | "pass" | "warn"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(results: Value) -> Vec<u8> {
        serde_json::json!({
            "metadata": {
                "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v5.json",
                "dbt_version": "1.7.20",
                "generated_at": "2026-12-01T10:00:00.000000Z",
                "invocation_id": "4b1c3c3e-0000-4000-8000-000000000001",
                "env": {}
            },
            "results": results,
            "elapsed_time": 1.5,
            "args": {"which": "build"}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn splits_nodes_into_succeeded_and_failed_by_status() {
        let parsed = parse(&body(serde_json::json!([
            {"unique_id": "model.shop.customers", "status": "success"},
            {"unique_id": "model.shop.orders", "status": "error"},
            {"unique_id": "model.shop.payments", "status": "skipped"},
            {"unique_id": "test.shop.unique_customers_id.c1", "status": "pass"},
            {"unique_id": "test.shop.not_null_orders_id.c2", "status": "fail"},
            {"unique_id": "test.shop.accepted_values.c3", "status": "warn"},
            {"unique_id": "seed.shop.raw", "status": "success"}
        ])))
        .unwrap();
        assert_eq!(parsed.invocation_id, "4b1c3c3e-0000-4000-8000-000000000001");
        assert_eq!(parsed.command, "build");
        assert_eq!(
            parsed.succeeded,
            [
                "model.shop.customers",
                "test.shop.unique_customers_id.c1",
                "test.shop.accepted_values.c3",
                "seed.shop.raw"
            ]
        );
        assert_eq!(
            parsed.failed,
            [
                "model.shop.orders",
                "model.shop.payments",
                "test.shop.not_null_orders_id.c2"
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_a_run_results_file() {
        assert!(matches!(parse(b"nope"), Err(RunResultsError::NotJson(_))));
        assert_eq!(
            parse(br#"{"results": []}"#),
            Err(RunResultsError::Missing("metadata"))
        );
        assert!(matches!(
            parse(br#"{"metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v11.json"}, "results": []}"#),
            Err(RunResultsError::Schema(_))
        ));
        assert_eq!(
            parse(&body(serde_json::json!([{"status": "success"}]))),
            Err(RunResultsError::ResultWithoutId { index: 0 })
        );
    }
}
