//! The Segment-compatible destination against the `/v1/batch` stand-in in both flavours
//! (Segment, RudderStack): identify / track / group mapping, write key as Basic auth,
//! deterministic `messageId`s deduplicating resends, the 32 KB message and 500 KB request
//! limits, and retries on 500 / 429 / lost answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use backflow_retl_scheduler::destinations::rate_limit::RateLimits;
use backflow_retl_scheduler::destinations::test_support::segment::{
    Flavor, SegmentStandIn, WRITE_KEY,
};
use backflow_retl_scheduler::destinations::test_support::{
    as_deletes, batch, sample_records, Fault,
};
use backflow_retl_scheduler::destinations::{
    build, Deliverer, DeliveryOptions, Destination, DestinationError, DestinationKind,
    DestinationSettings, Operation, RecordOutcome, RetrySchedule,
};
use secrecy::SecretString;
use serde_json::json;

fn segment(endpoint: &str, key: &str) -> Arc<dyn Destination> {
    let mut settings = DestinationSettings::new();
    settings.insert("endpoint".into(), endpoint.into());
    build(
        DestinationKind::Segment,
        &settings,
        Some(SecretString::from(key.to_string())),
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
            ..DeliveryOptions::default()
        },
        &RateLimits::new(),
    )
}

#[tokio::test]
async fn identify_track_and_group_on_both_flavours() {
    for flavor in [Flavor::Segment, Flavor::RudderStack] {
        let api = SegmentStandIn::start(flavor).await;
        let d = deliverer(segment(&api.endpoint(), WRITE_KEY));
        assert_eq!(d.destination().test().await, Ok(()), "{flavor:?}");

        let done = d
            .send(batch(
                "r1",
                0,
                Operation::Upsert,
                &[],
                sample_records(1..=3, true),
            ))
            .await;
        assert_eq!(done.delivered(), 3, "{flavor:?} {:?}", done.error);
        let track = [("call", "track"), ("event", "Score Changed")];
        let done = d
            .send(batch(
                "r1",
                1,
                Operation::Upsert,
                &track,
                sample_records(1..=2, false),
            ))
            .await;
        assert_eq!(done.delivered(), 2);
        let group = [
            ("call", "group"),
            ("group_id_field", "name"),
            ("user_id_field", "id"),
        ];
        let done = d
            .send(batch(
                "r1",
                2,
                Operation::Upsert,
                &group,
                sample_records([7], false),
            ))
            .await;
        assert_eq!(done.delivered(), 1);

        let holds = api.holds();
        assert_eq!(
            holds.records["2"],
            json!({"email": "user2@example.com", "name": "User 2", "score": 2})
        );
        assert_eq!(holds.records["group:User 7"]["score"], json!(7));
        assert_eq!(api.events()["Score Changed"], 2);
        let messages = api.messages();
        assert_eq!(messages.len(), 6);
        assert_eq!(messages[0]["type"], json!("identify"));
        assert_eq!(messages[0]["userId"], json!("1"));
        let hash = sample_records([1], true)[0].key_hash;
        assert_eq!(
            messages[0]["messageId"],
            json!(format!("r1:upsert:0:{hash:016x}"))
        );
        assert_eq!(messages[5]["userId"], json!("7"));
        assert!(api.dropped().is_empty());
    }
}

#[tokio::test]
async fn a_wrong_write_key_and_deletes_fail() {
    let api = SegmentStandIn::start(Flavor::RudderStack).await;
    let d = deliverer(segment(&api.endpoint(), "not-the-key"));
    assert!(
        matches!(d.destination().test().await, Err(DestinationError::Authentication(m)) if m.contains("Invalid Authorization Header"))
    );
    let done = d
        .send(batch(
            "r",
            0,
            Operation::Upsert,
            &[],
            sample_records(1..=2, false),
        ))
        .await;
    assert!(matches!(
        done.error,
        Some(DestinationError::Authentication(_))
    ));
    assert_eq!(done.failed(), 2);

    let d = deliverer(segment(&api.endpoint(), WRITE_KEY));
    let deletes = as_deletes(&sample_records(1..=2, false));
    let done = d.send(batch("r", 1, Operation::Delete, &[], deletes)).await;
    assert!(matches!(done.error, Some(DestinationError::Unsupported(_))));
    assert!(
        matches!(&done.results[0].outcome, RecordOutcome::Failed { message, .. } if message.contains("deletes"))
    );
    assert_eq!(done.requests, 0);
}

#[tokio::test]
async fn size_limits_split_requests_and_fail_single_messages() {
    let api = SegmentStandIn::start(Flavor::Segment).await;
    let d = deliverer(segment(&api.endpoint(), WRITE_KEY));
    let mut records = sample_records(1..=60, false);
    for r in &mut records {
        r.fields.insert("bio".into(), json!("x".repeat(20_000)));
    }
    records[10]
        .fields
        .insert("bio".into(), json!("x".repeat(40_000)));
    records[11].key.insert("id".into(), json!(null));
    let done = d.send(batch("r", 0, Operation::Upsert, &[], records)).await;
    assert_eq!(done.delivered(), 58);
    assert!(
        matches!(&done.results[10].outcome, RecordOutcome::Failed { message, status: 0 } if message.contains("32000-byte limit"))
    );
    assert!(
        matches!(&done.results[11].outcome, RecordOutcome::Failed { message, .. } if message.contains("no user id"))
    );
    let sizes = api.body_sizes();
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 500_000), "{sizes:?}");
    assert_eq!(done.requests, 3);
    assert_eq!(api.holds().records.len(), 58);
}

#[tokio::test]
async fn resends_are_deduplicated_by_message_id() {
    let api = SegmentStandIn::start(Flavor::Segment).await;
    let d = deliverer(segment(&api.endpoint(), WRITE_KEY));
    let records = sample_records(1..=5, false);

    api.push_fault(Fault::Status(500));
    let done = d
        .send(batch("r", 0, Operation::Upsert, &[], records[..2].to_vec()))
        .await;
    assert_eq!((done.attempts, done.delivered()), (2, 2));

    api.push_fault(Fault::DropAfterApply);
    let done = d
        .send(batch(
            "r",
            1,
            Operation::Upsert,
            &[],
            records[2..4].to_vec(),
        ))
        .await;
    assert_eq!((done.attempts, done.delivered()), (2, 2));

    api.push_fault(Fault::RateLimited {
        retry_after_secs: 1,
    });
    let started = Instant::now();
    let done = d
        .send(batch("r", 2, Operation::Upsert, &[], records[4..].to_vec()))
        .await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!((done.attempts, done.delivered()), (2, 1));

    // A whole run resent after a crash: same keys, nothing applied twice.
    let again = d
        .send(batch("r", 0, Operation::Upsert, &[], records[..2].to_vec()))
        .await;
    assert_eq!(again.delivered(), 2);

    let holds = api.holds();
    assert_eq!(holds.records.len(), 5);
    assert_eq!(holds.duplicates, 4); // the lost-answer pair and the resent pair
    assert_eq!(api.messages().len(), 5);
}
