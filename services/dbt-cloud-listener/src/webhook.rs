//! What one verified dbt Cloud delivery means for the subscription it arrived on. Pure:
//! the HTTP edge (`http.rs`) verifies and parses the body ([`crate::delivery`]), looks
//! up the subscription, and stores what [`decide`] returns.
//!
//! Only `job.run.completed` with run status 10, for the account and job the subscription
//! was made for, announces a run. Everything else that is signed correctly is recorded
//! (audit, de-duplication) and acknowledged with 200, so dbt Cloud does not retry it.

use crate::delivery::Delivery;
use crate::store::{ReceivedEventRecord, WebhookTarget};
use backflow_proto::dbtcloud::v1::RunCompletedEvent;

/// What to store for one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub record: ReceivedEventRecord,
    /// `Some` when the delivery announces a successful run.
    pub announce: Option<RunCompletedEvent>,
    /// Why a successful-looking delivery is not announced (logged), if it is not.
    pub ignored_because: Option<String>,
}

pub fn decide(target: &WebhookTarget, delivery: &Delivery, received_at_ms: i64) -> Decision {
    let record = ReceivedEventRecord {
        event_id: delivery.event_id.clone(),
        connection_id: target.connection_id.clone(),
        event_type: delivery.event_type.clone(),
        job_id: delivery.job_id,
        run_id: delivery.run_id,
        run_status_code: delivery.run_status_code.unwrap_or(0),
        received_at_ms,
    };
    let mismatch = if delivery.account_id != target.account_id {
        Some(format!(
            "delivery is for account {} but the subscription's connection is account {}",
            delivery.account_id, target.account_id
        ))
    } else if delivery.job_id != target.job_id {
        Some(format!(
            "delivery is for job {} but the subscription is for job {}",
            delivery.job_id, target.job_id
        ))
    } else if !delivery.subscription_id.is_empty()
        && !target.dbt_webhook_id.is_empty()
        && delivery.subscription_id != target.dbt_webhook_id
    {
        Some(format!(
            "delivery names webhook {} but this url belongs to webhook {}",
            delivery.subscription_id, target.dbt_webhook_id
        ))
    } else {
        None
    };
    if !delivery.is_successful_completion() {
        return Decision {
            record,
            announce: None,
            ignored_because: None,
        };
    }
    if let Some(reason) = mismatch {
        return Decision {
            record,
            announce: None,
            ignored_because: Some(reason),
        };
    }
    Decision {
        record,
        announce: Some(successful_run(
            &target.workspace_id,
            &target.connection_id,
            delivery.account_id,
            delivery.job_id,
            delivery.run_id,
        )),
        ignored_because: None,
    }
}

/// The announcement of a successful dbt Cloud run, the same whether its webhook arrived
/// or reconciliation found it, so the two paths are indistinguishable downstream: its
/// COMPLETED part, without node results (the store announces it whole instead when no
/// enabled sync waits on the job; see `artifact_fetch` for the contract).
pub fn successful_run(
    workspace_id: &str,
    connection_id: &str,
    account_id: i64,
    job_id: i64,
    run_id: i64,
) -> RunCompletedEvent {
    RunCompletedEvent {
        workspace_id: workspace_id.to_string(),
        connection_id: connection_id.to_string(),
        account_id,
        job_id,
        run_id,
        run_status_code: crate::delivery::RUN_STATUS_SUCCESS,
        succeeded: true,
        // Node results come from the run's artifact, read after the webhook is acknowledged.
        node_results_known: false,
        origin: "dbt_cloud".into(),
        part: backflow_proto::dbtcloud::v1::RunEventPart::Completed as i32,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::parse;

    fn target() -> WebhookTarget {
        WebhookTarget {
            subscription_id: "sub".into(),
            workspace_id: "ws".into(),
            connection_id: "conn".into(),
            account_id: 1,
            job_id: 123,
            dbt_webhook_id: "wsu_12345abcde".into(),
            hmac_secret_credential_id: "cred".into(),
        }
    }

    fn body(event_type: &str, status: i64, account: i64, job: i64) -> Vec<u8> {
        serde_json::json!({
            "accountId": account,
            "webhooksID": "wsu_12345abcde",
            "eventId": "wev_1",
            "timestamp": "2023-01-31T21:15:20.419714619Z",
            "eventType": event_type,
            "webhookName": "test",
            "data": {"jobId": job.to_string(), "runId": "12345", "runStatusCode": status, "runStatus": "Success"}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_successful_completion_for_the_subscribed_job_announces_the_run() {
        let delivery = parse(&body("job.run.completed", 10, 1, 123)).unwrap();
        let decision = decide(&target(), &delivery, 7);
        let announce = decision.announce.unwrap();
        assert_eq!(
            (
                announce.workspace_id.as_str(),
                announce.job_id,
                announce.run_id
            ),
            ("ws", 123, 12345)
        );
        assert!(announce.succeeded);
        assert_eq!(decision.record.received_at_ms, 7);
        assert_eq!(decision.ignored_because, None);
    }

    #[test]
    fn errored_cancelled_and_started_runs_are_recorded_not_announced() {
        for (event_type, status) in [
            ("job.run.completed", 20),
            ("job.run.completed", 30),
            ("job.run.started", 3),
            ("job.run.errored", 20),
        ] {
            let delivery = parse(&body(event_type, status, 1, 123)).unwrap();
            let decision = decide(&target(), &delivery, 0);
            assert_eq!(decision.announce, None, "{event_type} {status}");
            assert_eq!(decision.ignored_because, None);
            assert_eq!(decision.record.run_status_code, status);
        }
    }

    #[test]
    fn a_delivery_for_another_account_or_job_is_not_announced() {
        for (account, job) in [(2, 123), (1, 999)] {
            let delivery = parse(&body("job.run.completed", 10, account, job)).unwrap();
            let decision = decide(&target(), &delivery, 0);
            assert_eq!(decision.announce, None);
            assert!(decision.ignored_because.is_some());
        }
    }
}
