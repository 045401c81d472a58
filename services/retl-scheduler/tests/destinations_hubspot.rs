//! The HubSpot destination against the CRM v3 stand-in: upsert by `idProperty` with string
//! properties, per-record failures from a 207, deletes as read + archive, 429 policies
//! (ten-secondly retried after `Retry-After`, daily refused at once), 500 and dropped
//! connections retried, and resends converging on the same objects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use backflow_retl_scheduler::destinations::rate_limit::RateLimits;
use backflow_retl_scheduler::destinations::test_support::hubspot::{HubspotStandIn, TOKEN};
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
    ("object", "contacts"),
    ("id_property", "email"),
    ("id_field", "email"),
];

fn hubspot(base: &str, token: &str) -> Arc<dyn Destination> {
    let mut settings = DestinationSettings::new();
    settings.insert("base_url".into(), base.into());
    build(
        DestinationKind::Hubspot,
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
async fn upserts_by_id_property_and_archives_deletes() {
    let api = HubspotStandIn::start().await;
    let d = deliverer(hubspot(&api.base_url(), TOKEN));
    assert_eq!(d.destination().test().await, Ok(()));
    assert_eq!(d.max_batch_records(), 100);

    let done = d
        .send(batch(
            "r",
            0,
            Operation::Upsert,
            OPTIONS,
            sample_records(1..=3, false),
        ))
        .await;
    assert_eq!(done.delivered(), 3, "{:?}", done.error);
    let input = &api.upsert_inputs()[0];
    let hash = sample_records([1], false)[0].key_hash;
    assert_eq!(
        *input,
        json!({"idProperty": "email", "id": "user1@example.com", "objectWriteTraceId": format!("{hash:016x}"),
               "properties": {"email": "user1@example.com", "name": "User 1", "score": "1"}})
    );

    // Changed values update the same objects.
    let mut changed = sample_records([2], false);
    changed[0].fields.insert("score".into(), json!(20));
    let done = d
        .send(batch("r2", 0, Operation::Upsert, OPTIONS, changed))
        .await;
    assert_eq!(done.delivered(), 1);

    // Delete 1 and 3, and 9 which HubSpot never had (already gone: delivered).
    let deletes = as_deletes(&sample_records([1, 3, 9], false))
        .into_iter()
        .map(|mut r| {
            let i = r.key["id"].as_u64().unwrap();
            r.key
                .insert("email".into(), json!(format!("user{i}@example.com")));
            r
        })
        .collect();
    let done = d
        .send(batch("r2", 0, Operation::Delete, OPTIONS, deletes))
        .await;
    assert_eq!(done.delivered(), 3, "{:?}", done.error);
    assert_eq!(done.requests, 2, "read + archive");

    let holds = api.holds();
    assert_eq!(
        holds.records.keys().cloned().collect::<Vec<_>>(),
        ["user2@example.com"]
    );
    assert_eq!(holds.records["user2@example.com"]["score"], json!("20"));
    assert_eq!(
        holds.deleted.iter().cloned().collect::<Vec<_>>(),
        ["user1@example.com", "user3@example.com"]
    );
}

#[tokio::test]
async fn a_multi_status_fails_only_the_refused_records() {
    let api = HubspotStandIn::start().await;
    api.reject_property("favorite_colour");
    let d = deliverer(hubspot(&api.base_url(), TOKEN));
    let mut records = sample_records(1..=3, false);
    records[1]
        .fields
        .insert("favorite_colour".into(), json!("teal"));
    let done = d
        .send(batch("r", 0, Operation::Upsert, OPTIONS, records))
        .await;
    assert_eq!(done.results[0].outcome, RecordOutcome::Delivered);
    assert!(
        matches!(&done.results[1].outcome, RecordOutcome::Failed { status: 207, message }
        if message.contains("PROPERTY_DOESNT_EXIST") && message.starts_with("VALIDATION_ERROR"))
    );
    assert_eq!(done.results[2].outcome, RecordOutcome::Delivered);
    assert_eq!(api.holds().records.len(), 2);
}

#[tokio::test]
async fn rate_limits_and_faults() {
    let api = HubspotStandIn::start().await;
    let d = deliverer(hubspot(&api.base_url(), TOKEN));
    let records = sample_records(1..=4, false);

    api.push_fault(Fault::RateLimited {
        retry_after_secs: 1,
    });
    let started = Instant::now();
    let done = d
        .send(batch(
            "r",
            0,
            Operation::Upsert,
            OPTIONS,
            records[..1].to_vec(),
        ))
        .await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!((done.attempts, done.delivered()), (2, 1));

    api.push_fault(Fault::Status(500));
    api.push_fault(Fault::DropConnection);
    let done = d
        .send(batch(
            "r",
            1,
            Operation::Upsert,
            OPTIONS,
            records[1..2].to_vec(),
        ))
        .await;
    assert_eq!((done.attempts, done.delivered()), (3, 1));

    // The answer is lost after the upsert applied: the resend converges (upsert by key).
    api.push_fault(Fault::DropAfterApply);
    let done = d
        .send(batch(
            "r",
            2,
            Operation::Upsert,
            OPTIONS,
            records[2..3].to_vec(),
        ))
        .await;
    assert_eq!((done.attempts, done.delivered()), (2, 1));

    // The daily limit is not retried within the run.
    api.push_fault(Fault::Status(429));
    let done = d
        .send(batch(
            "r",
            3,
            Operation::Upsert,
            OPTIONS,
            records[3..].to_vec(),
        ))
        .await;
    assert_eq!(done.attempts, 1);
    assert!(
        matches!(&done.results[0].outcome, RecordOutcome::Failed { status: 429, message } if message.contains("daily limit"))
    );

    let holds = api.holds();
    assert_eq!(holds.records.len(), 3);

    let wrong = deliverer(hubspot(&api.base_url(), "pat-wrong"));
    assert!(
        matches!(wrong.destination().test().await, Err(DestinationError::Authentication(m)) if m.contains("INVALID_AUTHENTICATION"))
    );
}

#[tokio::test]
async fn options_are_required() {
    let api = HubspotStandIn::start().await;
    let d = deliverer(hubspot(&api.base_url(), TOKEN));
    let done = d
        .send(batch(
            "r",
            0,
            Operation::Upsert,
            &[("object", "contacts")],
            sample_records([1], false),
        ))
        .await;
    assert!(matches!(done.error, Some(DestinationError::Settings(m)) if m.contains("id_property")));
    assert_eq!(api.holds().requests, 0);
}
