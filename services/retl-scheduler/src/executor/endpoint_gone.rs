//! What a run does when its destination's endpoint is gone (a webhook answered 410 Gone,
//! which Standard Webhooks defines as "disable the endpoint"): it has already stopped
//! sending (the delivery returned [`DestinationError::EndpointGone`]); here every enabled
//! sync of the workspace using that destination is paused with a reason naming the
//! destination, the 410 and the run, so no schedule fires at a dead endpoint until a user
//! fixes it and runs `backflow syncs resume`. The run then ends failed with
//! [`ExecError::EndpointGone`]. It committed nothing, so every record it did not get
//! delivered is sent again by the next run (none counts towards being given up).
//!
//! The pause is one store update that leaves syncs already paused alone: two runs (on two
//! replicas) meeting the same 410 pause each sync once.

use crate::destinations::DestinationError;
use crate::executor::error::ExecError;
use crate::executor::pipeline::RunContext;
use crate::run::RunRecord;

/// The reason shown on each sync paused for `destination_id`'s endpoint being gone.
pub fn pause_reason(destination_id: &str, endpoint: &str, run_id: &str, message: &str) -> String {
    format!(
        "destination {destination_id} answered 410 gone at {endpoint} in run {run_id} ({message}); \
         fix or replace the endpoint, then resume the sync"
    )
}

/// What the run's error says became of the syncs.
pub fn outcome_text(paused: &Result<Vec<String>, String>) -> String {
    match paused {
        Ok(ids) if ids.is_empty() => "its syncs were already paused".to_string(),
        Ok(ids) => format!(
            "paused its syncs {} until they are resumed (backflow syncs resume)",
            ids.join(", ")
        ),
        Err(error) => format!("pausing its syncs failed (tried again at the next 410): {error}"),
    }
}

/// Pauses the destination's syncs and gives the run's error. `error` is what the
/// delivery ended with; anything but an endpoint gone comes back as it was.
pub async fn handle(
    ctx: &RunContext,
    run: &RunRecord,
    destination_id: &str,
    error: ExecError,
) -> ExecError {
    let ExecError::Destination(DestinationError::EndpointGone { endpoint, message }) = error else {
        return error;
    };
    let reason = pause_reason(destination_id, &endpoint, &run.id, &message);
    let paused = ctx
        .store
        .pause_syncs_of_destination(&run.workspace_id, destination_id, &reason)
        .await
        .map_err(|error| error.to_string());
    match &paused {
        Ok(ids) => tracing::warn!(
            run_id = %run.id, sync_id = %run.sync_id, %destination_id, %endpoint,
            paused = ids.len(), "destination endpoint gone (410): its syncs are paused"
        ),
        Err(error) => tracing::error!(
            run_id = %run.id, sync_id = %run.sync_id, %destination_id, %endpoint, %error,
            "destination endpoint gone (410), and its syncs could not be paused"
        ),
    }
    ExecError::EndpointGone {
        destination_id: destination_id.to_string(),
        endpoint,
        message,
        outcome: outcome_text(&paused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_and_the_outcome_name_the_destination_and_the_410() {
        assert_eq!(
            pause_reason("hook", "127.0.0.1:80", "r-1", "unsubscribed"),
            "destination hook answered 410 gone at 127.0.0.1:80 in run r-1 (unsubscribed); \
             fix or replace the endpoint, then resume the sync"
        );
        assert_eq!(
            outcome_text(&Ok(vec!["a".into(), "b".into()])),
            "paused its syncs a, b until they are resumed (backflow syncs resume)"
        );
        assert_eq!(
            outcome_text(&Ok(Vec::new())),
            "its syncs were already paused"
        );
        assert_eq!(
            outcome_text(&Err("database away".into())),
            "pausing its syncs failed (tried again at the next 410): database away"
        );
        let error = ExecError::EndpointGone {
            destination_id: "hook".into(),
            endpoint: "127.0.0.1:80".into(),
            message: "unsubscribed".into(),
            outcome: outcome_text(&Ok(vec!["a".into()])),
        };
        assert_eq!(
            error.to_string(),
            "destination hook answered 410 gone at 127.0.0.1:80 (unsubscribed): the run stopped \
             sending and committed nothing; paused its syncs a until they are resumed (backflow syncs resume)"
        );
        assert!(!error.is_outage());
    }
}
