//! dbt Core, any orchestrator: `POST /dbt-core/run-results` takes the `run_results.json`
//! of a finished `dbt run` / `dbt build` (Airflow, Dagster, cron, CI — or `backflow
//! dbt-run notify`) and announces it like a successful dbt Cloud run, with its node
//! results, so the scheduler triggers the syncs whose models were rebuilt.
//!
//! The caller authenticates with a Backflow API token (`Authorization: Bearer bf_…`),
//! verified by the credentials service like every gRPC call: a workspace admin token
//! notifies its own workspace; an operator or service token names the workspace with
//! `?workspace=<id>`; viewers are refused. A run is announced once per invocation id
//! (posting the same file again changes nothing).

use crate::run_results::{self, NodeResults};
use crate::store::{Received, ReceivedEventRecord};
use backflow_platform::auth::{Principal, Role};
use backflow_proto::dbtcloud::v1::RunCompletedEvent;

/// `connection_id` under which dbt Core runs are recorded.
pub const CORE_CONNECTION: &str = "dbt-core";
/// run_results.json of a large project is a few MiB (compiled code inline).
pub const MAX_RUN_RESULTS_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("a bearer token is required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
}

/// The workspace a caller may notify.
pub fn workspace_of(
    principal: Option<&Principal>,
    requested: Option<&str>,
) -> Result<String, NotifyError> {
    let requested = requested.map(str::trim).filter(|ws| !ws.is_empty());
    match principal {
        None => Err(NotifyError::Unauthenticated),
        Some(Principal::Service) => requested.map(str::to_string).ok_or_else(|| {
            NotifyError::BadRequest("service tokens must name ?workspace=<id>".into())
        }),
        Some(Principal::Tool { role, .. }) if *role != Role::Admin => Err(NotifyError::Forbidden(
            "notifying a dbt run needs an admin token".into(),
        )),
        Some(Principal::Tool {
            workspace_id: Some(own),
            ..
        }) => match requested {
            Some(other) if other != own => Err(NotifyError::Forbidden(format!(
                "token is for workspace {own:?}, not {other:?}"
            ))),
            _ => Ok(own.clone()),
        },
        Some(Principal::Tool {
            workspace_id: None, ..
        }) => requested.map(str::to_string).ok_or_else(|| {
            NotifyError::BadRequest("operator tokens must name ?workspace=<id>".into())
        }),
    }
}

/// Longest project name accepted (`?project=`).
pub const MAX_PROJECT_NAME: usize = 256;

/// The cause id the scheduler gives the runs a dbt Core invocation triggers (told to the
/// notifier so it can find them).
pub fn cause_of(invocation_id: &str) -> String {
    format!("dbt-core:{invocation_id}")
}

/// The `?project=` a notifier named: trimmed, a dbt project name (letters, digits, `_`).
pub fn project_of(requested: Option<&str>) -> Result<String, NotifyError> {
    let project = requested.map(str::trim).unwrap_or_default();
    let valid = project.len() <= MAX_PROJECT_NAME
        && project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(project.to_string())
    } else {
        Err(NotifyError::BadRequest(format!(
            "project {project:?} is not a dbt project name (letters, digits and _)"
        )))
    }
}

/// What to store and announce for one notified run.
pub fn decide(
    workspace_id: &str,
    project: Option<&str>,
    body: &[u8],
    received_at_ms: i64,
) -> Result<(ReceivedEventRecord, RunCompletedEvent, NodeResults), NotifyError> {
    let project_name = project_of(project)?;
    let results =
        run_results::parse(body).map_err(|error| NotifyError::BadRequest(error.to_string()))?;
    if results.invocation_id.is_empty() {
        return Err(NotifyError::BadRequest(
            "run_results.json has no metadata.invocation_id".into(),
        ));
    }
    let record = ReceivedEventRecord {
        event_id: format!("core:{}", results.invocation_id),
        connection_id: CORE_CONNECTION.into(),
        event_type: format!("dbt.core.{}", non_empty(&results.command, "run")),
        job_id: 0,
        run_id: 0,
        run_status_code: 0,
        received_at_ms,
    };
    let event = RunCompletedEvent {
        workspace_id: workspace_id.to_string(),
        connection_id: CORE_CONNECTION.into(),
        succeeded: true,
        node_results_known: true,
        succeeded_node_ids: results.succeeded.clone(),
        failed_node_ids: results.failed.clone(),
        origin: "dbt_core".into(),
        invocation_id: results.invocation_id.clone(),
        project_name,
        ..Default::default()
    };
    Ok((record, event, results))
}

fn non_empty<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() {
        default
    } else {
        value
    }
}

/// The reply body's `status`.
pub fn status_name(received: Received) -> &'static str {
    match received {
        Received::Duplicate => "duplicate",
        _ => "announced",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(workspace: Option<&str>, role: Role) -> Principal {
        Principal::Tool {
            token_id: "t".into(),
            workspace_id: workspace.map(str::to_string),
            role,
        }
    }

    #[test]
    fn the_workspace_comes_from_the_token_or_the_query_for_operators() {
        let admin = tool(Some("ws"), Role::Admin);
        assert_eq!(workspace_of(Some(&admin), None), Ok("ws".into()));
        assert_eq!(workspace_of(Some(&admin), Some("ws")), Ok("ws".into()));
        assert!(matches!(
            workspace_of(Some(&admin), Some("other")),
            Err(NotifyError::Forbidden(_))
        ));
        assert!(matches!(
            workspace_of(Some(&tool(Some("ws"), Role::Viewer)), None),
            Err(NotifyError::Forbidden(_))
        ));
        let operator = tool(None, Role::Admin);
        assert_eq!(workspace_of(Some(&operator), Some("w2")), Ok("w2".into()));
        assert!(matches!(
            workspace_of(Some(&operator), None),
            Err(NotifyError::BadRequest(_))
        ));
        assert_eq!(
            workspace_of(Some(&Principal::Service), Some("w3")),
            Ok("w3".into())
        );
        assert_eq!(
            workspace_of(None, Some("w")),
            Err(NotifyError::Unauthenticated)
        );
    }

    #[test]
    fn a_run_is_identified_by_its_invocation_and_carries_node_results() {
        let body = serde_json::json!({
            "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v5.json",
                         "invocation_id": "inv-1"},
            "results": [{"unique_id": "model.p.a", "status": "success"},
                        {"unique_id": "test.p.t", "status": "fail"}],
            "args": {"which": "build"}
        })
        .to_string();
        let (record, event, _) = decide("ws", Some(" p "), body.as_bytes(), 5).unwrap();
        assert_eq!(event.invocation_id, "inv-1");
        assert_eq!(event.project_name, "p");
        assert_eq!(cause_of(&event.invocation_id), "dbt-core:inv-1");
        assert!(matches!(
            decide("ws", Some("a/b"), body.as_bytes(), 5),
            Err(NotifyError::BadRequest(m)) if m.contains("not a dbt project name")
        ));
        assert_eq!(record.event_id, "core:inv-1");
        assert_eq!(record.event_type, "dbt.core.build");
        assert_eq!(event.origin, "dbt_core");
        assert_eq!(event.succeeded_node_ids, ["model.p.a"]);
        assert_eq!(event.failed_node_ids, ["test.p.t"]);
        assert!(event.node_results_known);
    }
}
