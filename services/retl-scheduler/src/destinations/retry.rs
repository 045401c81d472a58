//! Retry schedules as data: how long the delivery layer waits before resending a batch
//! that failed for a retryable reason, and when it gives up.
//!
//! Exponential back-off with *full jitter* (each wait drawn uniformly from
//! `[0, min(max_delay, initial × multiplier^(n-1))]`), so many executors retrying against
//! one account spread out instead of arriving together. A `Retry-After` the destination
//! sent is a floor: the wait is never shorter than what the server asked for. A
//! `Retry-After` longer than [`RetrySchedule::max_retry_after`] (HubSpot's daily limit,
//! an endpoint asking for an hour) ends the retries at once: the batch fails, its records
//! are retried by the next run with fresh values instead of parking a run for hours.
//!
//! Only [`DestinationError::RateLimited`] and [`DestinationError::Transient`] are retried;
//! credentials, settings, refused batches and an endpoint gone (410) would fail the same
//! way again.

use std::time::Duration;

use super::DestinationError;

/// When and how often a batch is resent. Plain data: stored, compared and tested as is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySchedule {
    /// Attempts in total, the first send included (1 = never retry).
    pub max_attempts: u32,
    /// Ceiling of the first back-off.
    pub initial: Duration,
    /// Growth of the ceiling per attempt.
    pub multiplier: f64,
    /// Largest ceiling.
    pub max_delay: Duration,
    /// Longest `Retry-After` worth waiting for within a run.
    pub max_retry_after: Duration,
}

impl Default for RetrySchedule {
    /// 6 attempts, ceilings 0.5 s, 1 s, 2 s, 4 s, 8 s (at most 30 s), `Retry-After` up to
    /// two minutes.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial: Duration::from_millis(500),
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then send again.
    RetryAfter(Duration),
    /// Stop: the error is final for this run.
    GiveUp,
}

impl RetrySchedule {
    /// A schedule that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The back-off ceiling after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let factor = self.multiplier.max(1.0).powi(exponent);
        let secs = (self.initial.as_secs_f64() * factor).min(self.max_delay.as_secs_f64());
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_delay)
    }

    /// Decides after failed attempt `attempt` (1-based) with `error`. `jitter` is a
    /// uniform draw from `[0, 1)` (a parameter so the decision is pure and testable).
    pub fn next(&self, attempt: u32, error: &DestinationError, jitter: f64) -> Next {
        let retry_after = match error {
            DestinationError::RateLimited { retry_after, .. } => *retry_after,
            DestinationError::Transient { retry_after, .. } => *retry_after,
            _ => return Next::GiveUp,
        };
        if attempt >= self.max_attempts {
            return Next::GiveUp;
        }
        if retry_after.is_some_and(|after| after > self.max_retry_after) {
            return Next::GiveUp;
        }
        let jittered = self.ceiling(attempt).mul_f64(jitter.clamp(0.0, 1.0));
        Next::RetryAfter(retry_after.map_or(jittered, |after| after.max(jittered)))
    }
}

/// Whether the delivery layer retries `error` at all.
pub fn is_retryable(error: &DestinationError) -> bool {
    matches!(
        error,
        DestinationError::RateLimited { .. } | DestinationError::Transient { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(retry_after: Option<Duration>) -> DestinationError {
        DestinationError::Transient {
            message: "502".into(),
            status: 502,
            retry_after,
        }
    }

    #[test]
    fn ceilings_grow_exponentially_up_to_the_cap() {
        let s = RetrySchedule {
            max_attempts: 10,
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(1),
        };
        let ceilings: Vec<u128> = (1..=5).map(|a| s.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let s = RetrySchedule::default();
        assert_eq!(
            s.next(1, &transient(None), 0.0),
            Next::RetryAfter(Duration::ZERO)
        );
        assert_eq!(
            s.next(2, &transient(None), 0.5),
            Next::RetryAfter(Duration::from_millis(500))
        );
        assert_eq!(
            s.next(2, &transient(None), 7.0),
            Next::RetryAfter(Duration::from_secs(1))
        );
    }

    #[test]
    fn retry_after_is_a_floor_and_a_long_one_gives_up() {
        let s = RetrySchedule::default();
        let limited = |secs| DestinationError::RateLimited {
            retry_after: Some(Duration::from_secs(secs)),
            status: 429,
            message: "429: slow down".into(),
        };
        assert_eq!(
            s.next(1, &limited(7), 0.9),
            Next::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(s.next(1, &limited(3600), 0.9), Next::GiveUp);
        assert_eq!(
            s.next(1, &transient(Some(Duration::from_secs(2))), 0.1),
            Next::RetryAfter(Duration::from_secs(2))
        );
    }

    #[test]
    fn attempts_are_bounded_and_final_errors_never_retried() {
        let s = RetrySchedule {
            max_attempts: 3,
            ..RetrySchedule::default()
        };
        assert!(matches!(
            s.next(2, &transient(None), 0.5),
            Next::RetryAfter(_)
        ));
        assert_eq!(s.next(3, &transient(None), 0.5), Next::GiveUp);
        for e in [
            DestinationError::Rejected {
                message: "bad".into(),
                status: 400,
            },
            DestinationError::Authentication("no".into()),
            DestinationError::Settings("url".into()),
            DestinationError::Unsupported("deletes".into()),
            DestinationError::EndpointGone {
                endpoint: "hooks.example.com:443".into(),
                message: "gone".into(),
            },
        ] {
            assert_eq!(s.next(1, &e, 0.5), Next::GiveUp, "{e}");
            assert!(!is_retryable(&e));
        }
        assert_eq!(
            RetrySchedule::none().next(1, &transient(None), 0.5),
            Next::GiveUp
        );
    }
}
