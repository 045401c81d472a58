//! Sending one batch until it is settled: retryable failures (rate limits, 5xx, dropped
//! connections) are retried with exponential back-off and `Retry-After`; what still
//! fails, or is refused outright, fails every record of the batch with the destination's
//! message. The executor's stop-gap until `destinations::delivery::Deliverer` (shared rate
//! limits, jittered schedules) takes its place.

use crate::destinations::{
    BatchResult, Destination, DestinationError, OutboundBatch, RecordOutcome, RecordResult,
};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Attempts per batch before its records fail.
pub const MAX_ATTEMPTS: u32 = 6;

fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    retry_after
        .unwrap_or_else(|| Duration::from_millis(200u64.saturating_mul(1 << attempt.min(8))))
        .min(Duration::from_secs(60))
}

/// Sends `batch`, retrying what is worth retrying; always one result per record.
pub async fn send(
    destination: &dyn Destination,
    batch: &OutboundBatch,
    cancel: &CancellationToken,
) -> BatchResult {
    let mut requests = 0;
    let mut attempt = 0;
    loop {
        requests += 1;
        let error = match destination.send(batch).await {
            Ok(mut result) => {
                result.requests = result.requests.max(1) + requests - 1;
                return result;
            }
            Err(error) => error,
        };
        let retry_after = match &error {
            DestinationError::RateLimited { retry_after } => Some(*retry_after),
            DestinationError::Transient { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        attempt += 1;
        match retry_after {
            Some(after) if attempt < MAX_ATTEMPTS => {
                let delay = backoff(attempt, after);
                tracing::warn!(batch = %batch.idempotency_key, attempt, %error, retry_in_ms = delay.as_millis() as u64, "batch not delivered; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return failed(batch, &error, requests),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            _ => return failed(batch, &error, requests),
        }
    }
}

fn failed(batch: &OutboundBatch, error: &DestinationError, requests: u64) -> BatchResult {
    let status = match error {
        DestinationError::Transient { status, .. } | DestinationError::Rejected { status, .. } => {
            *status
        }
        DestinationError::RateLimited { .. } => 429,
        _ => 0,
    };
    BatchResult {
        results: batch
            .records
            .iter()
            .map(|record| RecordResult {
                key_hash: record.key_hash,
                outcome: RecordOutcome::Failed {
                    message: error.to_string(),
                    status,
                },
            })
            .collect(),
        requests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_honours_retry_after_and_caps() {
        assert_eq!(backoff(1, None), Duration::from_millis(400));
        assert_eq!(backoff(2, None), Duration::from_millis(800));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(backoff(30, None), Duration::from_millis(51_200));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(600))),
            Duration::from_secs(60)
        );
    }
}
