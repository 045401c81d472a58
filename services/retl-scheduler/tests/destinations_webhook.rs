//! The webhook destination against the Standard Webhooks stand-in receiver, through the
//! [`Deliverer`]: signed batches land as the receiver holds them, single records can be
//! refused, 500 / 429 + `Retry-After` / dropped connections are retried on the schedule
//! with the same `webhook-id`, a lost ack is deduplicated by the receiver, one rate limit
//! is shared by two deliverers to the same account, and the throughput to a no-op
//! receiver is measured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use backflow_retl_scheduler::destinations::rate_limit::RateLimits;
use backflow_retl_scheduler::destinations::test_support::webhook::WebhookReceiver;
use backflow_retl_scheduler::destinations::test_support::{
    as_deletes, batch, sample_records, Fault,
};
use backflow_retl_scheduler::destinations::{
    build, Batcher, Deliverer, DeliveryOptions, Destination, DestinationError, DestinationKind,
    DestinationSettings, Operation, RecordOutcome, RetrySchedule,
};
use secrecy::SecretString;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn fast_retries() -> RetrySchedule {
    RetrySchedule {
        max_attempts: 4,
        initial: Duration::from_millis(10),
        multiplier: 2.0,
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    }
}

fn webhook(url: &str, secret: Option<&str>, extra: &[(&str, &str)]) -> Arc<dyn Destination> {
    let mut settings = DestinationSettings::new();
    settings.insert("url".into(), url.into());
    for (k, v) in extra {
        settings.insert(k.to_string(), v.to_string());
    }
    build(
        DestinationKind::Webhook,
        &settings,
        secret.map(|s| SecretString::from(s.to_string())),
    )
    .unwrap()
}

fn deliverer(destination: Arc<dyn Destination>) -> Deliverer {
    Deliverer::with_registry(
        destination,
        DeliveryOptions {
            retry: fast_retries(),
            ..DeliveryOptions::default()
        },
        &RateLimits::new(),
    )
}

#[tokio::test]
async fn signed_batches_land_and_deletes_remove() {
    let receiver = WebhookReceiver::start(Some(SECRET)).await;
    let d = deliverer(webhook(
        &receiver.url(),
        Some(SECRET),
        &[("batch_size", "3")],
    ));
    assert_eq!(d.destination().test().await, Ok(()));

    let mut batcher = Batcher::new(
        "s",
        "run-1",
        Operation::Upsert,
        Arc::default(),
        d.max_batch_records(),
        0,
    );
    let mut batches: Vec<_> = sample_records(1..=7, false)
        .into_iter()
        .filter_map(|r| batcher.push(r))
        .collect();
    batches.extend(batcher.finish());
    assert_eq!(batches.len(), 3);
    let delivered = d.deliver_all(batches).await;
    assert!(delivered.iter().all(|b| b.failed() == 0 && b.attempts == 1));

    let deletes = as_deletes(&sample_records([2, 5], false));
    let done = d
        .send(batch("run-1", 0, Operation::Delete, &[], deletes))
        .await;
    assert_eq!(done.delivered(), 2);

    let holds = receiver.holds();
    assert_eq!(
        holds.records.keys().cloned().collect::<Vec<_>>(),
        ["1", "3", "4", "6", "7"]
    );
    assert_eq!(
        holds.records["3"],
        serde_json::json!({"email": "user3@example.com", "name": "User 3", "score": 3})
    );
    assert_eq!(
        holds.deleted.iter().cloned().collect::<Vec<_>>(),
        ["2", "5"]
    );
    assert_eq!(receiver.unauthorized(), 0);
    assert_eq!(holds.requests, 5); // test + 3 upserts + 1 delete
    assert_eq!(d.requests(), 4);
    let mut ids: Vec<_> = receiver
        .received()
        .into_iter()
        .map(|r| r.webhook_id)
        .collect();
    ids.sort();
    assert!(ids[4].starts_with("test_"), "{ids:?}");
    assert_eq!(
        ids[..4],
        [
            "run-1:delete:0",
            "run-1:upsert:0",
            "run-1:upsert:1",
            "run-1:upsert:2"
        ]
    );
}

#[tokio::test]
async fn a_wrong_secret_fails_every_record_with_the_status() {
    let receiver = WebhookReceiver::start(Some(SECRET)).await;
    let other = "whsec_c2VjcmV0LW9mLWFub3RoZXItZW5kcG9pbnQ=";
    let d = deliverer(webhook(&receiver.url(), Some(other), &[]));
    assert!(matches!(
        d.destination().test().await,
        Err(DestinationError::Authentication(_))
    ));
    let done = d
        .send(batch(
            "r",
            0,
            Operation::Upsert,
            &[],
            sample_records(1..=2, false),
        ))
        .await;
    assert_eq!(done.attempts, 1, "credentials are not retried");
    assert!(matches!(
        done.error,
        Some(DestinationError::Authentication(_))
    ));
    for r in &done.results {
        assert!(
            matches!(&r.outcome, RecordOutcome::Failed { status: 401, message } if message.contains("no v1 signature matches"))
        );
    }
    assert!(receiver.holds().records.is_empty());
}

#[tokio::test]
async fn the_receiver_may_refuse_single_records() {
    let receiver = WebhookReceiver::start(None).await;
    receiver.refuse("2", "user 2 is locked");
    let d = deliverer(webhook(&receiver.url(), None, &[]));
    let records = sample_records(1..=3, false);
    let done = d
        .send(batch("r", 0, Operation::Upsert, &[], records.clone()))
        .await;
    assert_eq!(done.results.len(), 3);
    assert_eq!(done.results[0].outcome, RecordOutcome::Delivered);
    assert_eq!(done.results[1].key_hash, records[1].key_hash);
    assert_eq!(
        done.results[1].outcome,
        RecordOutcome::Failed {
            message: "user 2 is locked".into(),
            status: 200
        }
    );
    assert_eq!(done.results[2].outcome, RecordOutcome::Delivered);
    assert_eq!(receiver.holds().records.len(), 2);
}

#[tokio::test]
async fn failures_are_retried_with_the_same_webhook_id() {
    let receiver = WebhookReceiver::start(Some(SECRET)).await;
    let d = deliverer(webhook(&receiver.url(), Some(SECRET), &[]));
    let records = sample_records(1..=4, false);

    // 500 then 200.
    receiver.push_fault(Fault::Status(500));
    let done = d
        .send(batch("r", 0, Operation::Upsert, &[], records[..2].to_vec()))
        .await;
    assert_eq!((done.attempts, done.delivered(), done.requests), (2, 2, 2));

    // Connection dropped before the batch was applied, then fine.
    receiver.push_fault(Fault::DropConnection);
    let done = d
        .send(batch(
            "r",
            1,
            Operation::Upsert,
            &[],
            records[2..3].to_vec(),
        ))
        .await;
    assert_eq!((done.attempts, done.delivered()), (2, 1));

    // Applied, but the answer was lost: the resend is recognised and not applied twice.
    receiver.push_fault(Fault::DropAfterApply);
    let done = d
        .send(batch("r", 2, Operation::Upsert, &[], records[3..].to_vec()))
        .await;
    assert_eq!((done.attempts, done.delivered()), (2, 1));

    let received = receiver.received();
    let ids: Vec<&str> = received.iter().map(|r| r.webhook_id.as_str()).collect();
    // The dropped-before-apply attempt never reached the body parsing, so it is not listed.
    assert_eq!(
        ids,
        ["r:upsert:0", "r:upsert:1", "r:upsert:2", "r:upsert:2"]
    );
    let holds = receiver.holds();
    assert_eq!(holds.records.len(), 4);
    assert_eq!(
        (holds.duplicates, holds.overwrites, holds.batches),
        (1, 0, 3)
    );
    assert_eq!(holds.requests, 6);
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let receiver = WebhookReceiver::start(None).await;
    let d = deliverer(webhook(&receiver.url(), None, &[]));
    receiver.push_fault(Fault::RateLimited {
        retry_after_secs: 1,
    });
    let started = Instant::now();
    let done = d
        .send(batch(
            "r",
            0,
            Operation::Upsert,
            &[],
            sample_records(1..=2, false),
        ))
        .await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((done.attempts, done.delivered()), (2, 2));
}

#[tokio::test]
async fn persistent_failures_fail_every_record_after_the_last_attempt() {
    let receiver = WebhookReceiver::start(None).await;
    let d = deliverer(webhook(&receiver.url(), None, &[]));
    for _ in 0..4 {
        receiver.push_fault(Fault::Status(503));
    }
    receiver.push_fault(Fault::Status(500)); // never reached
    let done = d
        .send(batch(
            "r",
            0,
            Operation::Upsert,
            &[],
            sample_records(1..=3, false),
        ))
        .await;
    assert_eq!(done.attempts, 4);
    assert!(matches!(
        done.error,
        Some(DestinationError::Transient { status: 503, .. })
    ));
    for r in &done.results {
        assert!(
            matches!(&r.outcome, RecordOutcome::Failed { status: 503, message } if message.contains("injected failure"))
        );
    }
    assert_eq!(receiver.holds().requests, 4);

    // 410 Gone is final at once.
    let gone = WebhookReceiver::start(None).await;
    gone.push_fault(Fault::Status(410));
    let d = deliverer(webhook(&gone.url(), None, &[]));
    let done = d
        .send(batch(
            "r",
            1,
            Operation::Upsert,
            &[],
            sample_records(1..=1, false),
        ))
        .await;
    assert_eq!(done.attempts, 1);
    assert!(matches!(
        &done.error,
        Some(DestinationError::EndpointGone { message, .. }) if message == "injected failure"
    ));
    assert!(
        matches!(
            &done.results[0].outcome,
            RecordOutcome::Failed { status: 410, .. }
        ),
        "{:?}",
        done.results
    );
    // the deliverer remembers: a later batch fails the same way without a request
    let later = d
        .send(batch(
            "r",
            2,
            Operation::Upsert,
            &[],
            sample_records(2..=3, false),
        ))
        .await;
    assert_eq!((later.attempts, later.requests), (0, 0));
    assert!(matches!(
        later.error,
        Some(DestinationError::EndpointGone { .. })
    ));
    assert_eq!(gone.holds().requests, 1);
}

#[tokio::test]
async fn two_deliverers_to_one_account_share_its_rate_limit() {
    let receiver = WebhookReceiver::start(None).await;
    let registry = RateLimits::new();
    let options = DeliveryOptions {
        retry: fast_retries(),
        rate_limit_per_second: Some(20.0),
        max_concurrency: Some(4),
    };
    // Two syncs (two destinations built separately) to the same host and port.
    let a = Deliverer::with_registry(
        webhook(&receiver.url(), None, &[]),
        options.clone(),
        &registry,
    );
    let b = Deliverer::with_registry(webhook(&receiver.url(), None, &[]), options, &registry);
    let batches = |run: &str| -> Vec<_> {
        (0..20)
            .map(|i| batch(run, i, Operation::Upsert, &[], sample_records([i], false)))
            .collect()
    };
    let started = Instant::now();
    let (da, db) = tokio::join!(a.deliver_all(batches("ra")), b.deliver_all(batches("rb")));
    let elapsed = started.elapsed();
    assert_eq!(da.len() + db.len(), 40);
    // A bucket of 20/s holds 20 tokens: 40 requests need at least (40 − 20) / 20 = 1 s
    // together, while each alone would have been sent at once.
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    assert_eq!(a.requests() + b.requests(), 40);

    let alone = Deliverer::with_registry(
        webhook(&receiver.url(), None, &[]),
        DeliveryOptions {
            rate_limit_per_second: Some(20.0),
            ..DeliveryOptions::default()
        },
        &RateLimits::new(),
    );
    let started = Instant::now();
    alone.deliver_all(batches("rc")).await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

/// Records per second the webhook path reaches to a local receiver that reads each body
/// and answers 200 (debug build unless run with `--release`). Prints the number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_to_a_noop_receiver() {
    let receiver = WebhookReceiver::noop().await;
    let d = Deliverer::with_registry(
        webhook(
            &receiver.url(),
            Some(SECRET),
            &[("batch_size", "1000"), ("max_concurrency", "8")],
        ),
        DeliveryOptions {
            rate_limit_per_second: Some(1_000_000.0),
            ..DeliveryOptions::default()
        },
        &RateLimits::new(),
    );
    let total: u64 = std::env::var("WEBHOOK_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let records = sample_records(0..total, false);
    let mut batcher = Batcher::new(
        "s",
        "bench",
        Operation::Upsert,
        Arc::default(),
        d.max_batch_records(),
        0,
    );
    let mut batches: Vec<_> = records
        .into_iter()
        .filter_map(|r| batcher.push(r))
        .collect();
    batches.extend(batcher.finish());
    let started = Instant::now();
    let done = d.deliver_all(batches).await;
    let elapsed = started.elapsed();
    let delivered: usize = done.iter().map(|b| b.delivered()).sum();
    assert_eq!(delivered as u64, total);
    println!(
        "webhook throughput: {total} records in {:.3} s = {:.0} records/s, {} requests ({} records/request, concurrency 8, signed)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        d.requests(),
        1000
    );
}

#[tokio::test]
async fn a_429_holds_back_every_sender_to_the_account() {
    let receiver = WebhookReceiver::start(None).await;
    let registry = RateLimits::new();
    let options = DeliveryOptions {
        retry: fast_retries(),
        ..DeliveryOptions::default()
    };
    let a = Deliverer::with_registry(
        webhook(&receiver.url(), None, &[]),
        options.clone(),
        &registry,
    );
    let b = Deliverer::with_registry(webhook(&receiver.url(), None, &[]), options, &registry);
    receiver.push_fault(Fault::RateLimited {
        retry_after_secs: 1,
    });
    let first = async {
        a.send(batch(
            "ra",
            0,
            Operation::Upsert,
            &[],
            sample_records([1], false),
        ))
        .await
    };
    let second = async {
        // Once `a` has been told to wait, `b` (another sync to the same account) waits too.
        let deadline = Instant::now() + Duration::from_secs(5);
        while receiver.holds().requests == 0 {
            assert!(Instant::now() < deadline, "the first request never arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let done = b
            .send(batch(
                "rb",
                0,
                Operation::Upsert,
                &[],
                sample_records([2], false),
            ))
            .await;
        (done, started.elapsed())
    };
    let (first, (second, waited)) = tokio::join!(first, second);
    assert_eq!((first.attempts, second.attempts), (2, 1));
    assert!(waited >= Duration::from_millis(800), "{waited:?}");
    assert_eq!(receiver.holds().records.len(), 2);
}
