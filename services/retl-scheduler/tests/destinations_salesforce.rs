//! The Salesforce destination against the Bulk API 2.0 stand-in: one upsert job per batch
//! (create, CSV upload to the opaque `contentUrl`, UploadComplete, polling), per-record
//! errors from `failedResults/`, deletes through an Id query and a delete job, the org
//! limit (403 `REQUEST_LIMIT_EXCEEDED`) and 500 / dropped connections retried.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use backflow_retl_scheduler::destinations::rate_limit::RateLimits;
use backflow_retl_scheduler::destinations::test_support::salesforce::{SalesforceStandIn, TOKEN};
use backflow_retl_scheduler::destinations::test_support::{
    as_deletes, batch, sample_records, Fault,
};
use backflow_retl_scheduler::destinations::{
    build, Deliverer, DeliveryOptions, Destination, DestinationError, DestinationKind,
    DestinationSettings, Operation, RecordOutcome, RetrySchedule,
};
use secrecy::SecretString;
use serde_json::json;

const OPTIONS: &[(&str, &str)] = &[
    ("object", "Account"),
    ("external_id_field", "customExtIdField__c"),
];

fn salesforce(instance: &str, token: &str) -> Arc<dyn Destination> {
    let mut settings = DestinationSettings::new();
    settings.insert("instance_url".into(), instance.into());
    settings.insert("api_version".into(), "62.0".into());
    build(
        DestinationKind::Salesforce,
        &settings,
        Some(SecretString::from(token.to_string())),
    )
    .unwrap()
}

fn deliverer(destination: Arc<dyn Destination>) -> Deliverer {
    Deliverer::with_registry(
        destination,
        DeliveryOptions {
            retry: RetrySchedule {
                max_attempts: 4,
                initial: Duration::from_millis(10),
                multiplier: 2.0,
                max_delay: Duration::from_millis(50),
                max_retry_after: Duration::from_secs(5),
            },
            rate_limit_per_second: Some(1000.0),
            ..DeliveryOptions::default()
        },
        &RateLimits::new(),
    )
}

#[tokio::test]
async fn upsert_jobs_land_and_failed_results_fail_their_records() {
    let api = SalesforceStandIn::start().await;
    api.reject("2");
    let d = deliverer(salesforce(&api.instance_url(), TOKEN));
    assert_eq!(d.destination().test().await, Ok(()));

    let mut records = sample_records(1..=3, false);
    records[2].fields.insert("name".into(), json!(null));
    let done = d
        .send(batch("r", 0, Operation::Upsert, OPTIONS, records))
        .await;
    assert_eq!(done.error, None);
    assert_eq!(done.results[0].outcome, RecordOutcome::Delivered);
    assert!(
        matches!(&done.results[1].outcome, RecordOutcome::Failed { message, status: 0 } if message.starts_with("REQUIRED_FIELD_MISSING"))
    );
    assert_eq!(done.results[2].outcome, RecordOutcome::Delivered);
    // create + upload + close + polls (InProgress, JobComplete) + failedResults
    assert_eq!(done.requests, 6);

    assert_eq!(
        api.jobs()[0],
        json!({"object": "Account", "operation": "upsert", "externalIdFieldName": "customExtIdField__c",
               "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA"})
    );
    assert_eq!(
        api.uploads()[0].lines().next().unwrap(),
        "customExtIdField__c,email,name,score"
    );
    let holds = api.holds();
    assert_eq!(
        holds.records.keys().cloned().collect::<Vec<_>>(),
        ["1", "3"]
    );
    assert_eq!(
        holds.records["1"],
        json!({"email": "user1@example.com", "name": "User 1", "score": "1"})
    );
    assert_eq!(
        holds.records["3"]["name"],
        json!(null),
        "null is written #N/A"
    );
}

#[tokio::test]
async fn deletes_look_up_ids_and_run_a_delete_job() {
    let api = SalesforceStandIn::start().await;
    let d = deliverer(salesforce(&api.instance_url(), TOKEN));
    let done = d
        .send(batch(
            "r",
            0,
            Operation::Upsert,
            OPTIONS,
            sample_records(1..=3, false),
        ))
        .await;
    assert_eq!(done.delivered(), 3);

    let deletes = as_deletes(&sample_records([1, 3, 9], false));
    let done = d
        .send(batch("r", 0, Operation::Delete, OPTIONS, deletes))
        .await;
    assert_eq!(done.delivered(), 3, "{:?}", done.results);
    let holds = api.holds();
    assert_eq!(holds.records.keys().cloned().collect::<Vec<_>>(), ["2"]);
    assert_eq!(
        holds.deleted.iter().cloned().collect::<Vec<_>>(),
        ["1", "3"]
    );
    let delete_job = &api.jobs()[1];
    assert_eq!(delete_job["operation"], json!("delete"));
    assert!(
        api.uploads()[1].starts_with("Id\n\"001"),
        "{}",
        api.uploads()[1]
    );
}

#[tokio::test]
async fn org_limits_and_faults_are_retried() {
    let api = SalesforceStandIn::start().await;
    let d = deliverer(salesforce(&api.instance_url(), TOKEN));
    api.push_fault(Fault::RateLimited {
        retry_after_secs: 0,
    });
    api.push_fault(Fault::Status(500));
    let done = d
        .send(batch(
            "r",
            0,
            Operation::Upsert,
            OPTIONS,
            sample_records(1..=2, false),
        ))
        .await;
    assert_eq!((done.attempts, done.delivered()), (3, 2));

    // A dropped connection while creating the job: a new job next attempt.
    api.push_fault(Fault::DropConnection);
    let done = d
        .send(batch(
            "r",
            1,
            Operation::Upsert,
            OPTIONS,
            sample_records(3..=4, false),
        ))
        .await;
    assert_eq!((done.attempts, done.delivered()), (2, 2));
    assert_eq!(api.holds().records.len(), 4);

    let wrong = deliverer(salesforce(&api.instance_url(), "00Dwrong"));
    assert!(
        matches!(wrong.destination().test().await, Err(DestinationError::Authentication(m)) if m.contains("INVALID_SESSION_ID"))
    );
    let done = wrong
        .send(batch(
            "r",
            2,
            Operation::Upsert,
            OPTIONS,
            sample_records([5], false),
        ))
        .await;
    assert_eq!(done.attempts, 1);
    assert!(matches!(
        &done.results[0].outcome,
        RecordOutcome::Failed { status: 401, .. }
    ));
}
