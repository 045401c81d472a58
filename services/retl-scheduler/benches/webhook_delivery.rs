//! Webhook delivery bench: records per second the delivery path (Batcher → Deliverer →
//! signed Standard Webhooks POSTs) reaches to a local no-op receiver (reads each body,
//! answers 200) on loopback. Batches are generated as a stream (bounded memory); the
//! generation is part of the measured time, as it is in a run. Prints records/s,
//! requests and the time per request. `BENCH_WEBHOOK_RECORDS` (default 1,000,000),
//! `BENCH_WEBHOOK_BATCH` (default 1000) and `BENCH_WEBHOOK_CONCURRENCY` (default 8)
//! override the shape.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use backflow_retl_scheduler::destinations::rate_limit::RateLimits;
use backflow_retl_scheduler::destinations::test_support::sample_records;
use backflow_retl_scheduler::destinations::test_support::webhook::WebhookReceiver;
use backflow_retl_scheduler::destinations::{
    build, Batcher, Deliverer, DeliveryOptions, DestinationKind, DestinationSettings, Operation,
};
use futures::StreamExt;
use secrecy::SecretString;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let total = env("BENCH_WEBHOOK_RECORDS", 1_000_000);
    let batch_size = env("BENCH_WEBHOOK_BATCH", 1000);
    let concurrency = env("BENCH_WEBHOOK_CONCURRENCY", 8);
    let receiver = WebhookReceiver::noop().await;
    let settings = DestinationSettings::from([
        ("url".to_string(), receiver.url()),
        ("batch_size".to_string(), batch_size.to_string()),
        ("max_concurrency".to_string(), concurrency.to_string()),
    ]);
    let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string());
    let destination = build(DestinationKind::Webhook, &settings, Some(secret)).unwrap();
    let deliverer = Deliverer::with_registry(
        destination,
        DeliveryOptions {
            rate_limit_per_second: Some(1e9),
            ..DeliveryOptions::default()
        },
        &RateLimits::new(),
    );
    let chunk = batch_size;
    let batches = futures::stream::iter((0..total.div_ceil(chunk)).map(move |i| {
        let start = i * chunk;
        let end = (start + chunk).min(total);
        let mut batcher = Batcher::new(
            "bench",
            "bench-run",
            Operation::Upsert,
            Arc::default(),
            chunk as usize,
            i,
        );
        let mut out = None;
        for record in sample_records(start..end, false) {
            out = out.or(batcher.push(record));
        }
        out.or_else(|| batcher.finish()).unwrap()
    }));
    let started = Instant::now();
    let delivered: usize = deliverer
        .deliver(batches)
        .map(|b| b.delivered())
        .fold(0, |a, b| async move { a + b })
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(delivered as u64, total);
    let requests = deliverer.requests();
    println!(
        "webhook delivery: {total} records, {batch_size}/request, concurrency {concurrency}, signed: {elapsed:.3} s = {:.0} records/s; {requests} requests ({:.2} ms each, wall / requests × concurrency)",
        total as f64 / elapsed,
        elapsed * 1000.0 * concurrency as f64 / requests.max(1) as f64
    );
}
