//! One request rate per destination account, shared by every sync (and every run) in the
//! process that sends to it: a token bucket per `rate_limit_key`, kept in a process-wide
//! [`RateLimits`] registry, so two syncs to one HubSpot portal together stay under the
//! portal's limit instead of each using all of it.
//!
//! A bucket holds at most one second of tokens (at least one), refills continuously, and
//! can be *paused* until an instant: when any sender gets a 429 with `Retry-After`, every
//! sender of that account waits, not only the one that was told.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket. Cheap to share (`Arc`); waiting happens outside the lock.
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    updated: Instant,
    paused_until: Option<Instant>,
}

impl Bucket {
    fn burst(&self) -> f64 {
        self.rate.max(1.0)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst());
        self.updated = now;
    }
}

/// Smallest rate accepted (one request every 1000 s); anything lower is treated as this.
const MIN_RATE: f64 = 0.001;

impl RateLimiter {
    /// A full bucket of `rate_per_second` tokens per second.
    pub fn new(rate_per_second: f64) -> Self {
        let rate = sane_rate(rate_per_second);
        Self {
            state: Mutex::new(Bucket {
                rate,
                tokens: rate.max(1.0),
                updated: Instant::now(),
                paused_until: None,
            }),
        }
    }

    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    /// Changes the rate (a destination's limit was edited); tokens carry over, capped.
    pub fn set_rate(&self, rate_per_second: f64) {
        let mut bucket = self.lock();
        let now = Instant::now();
        bucket.refill(now);
        bucket.rate = sane_rate(rate_per_second);
        bucket.tokens = bucket.tokens.min(bucket.burst());
    }

    /// Waits until a request may be sent, and takes its token.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut bucket = self.lock();
                let now = Instant::now();
                match bucket.paused_until {
                    Some(until) if until > now => Some(until - now),
                    _ => {
                        bucket.paused_until = None;
                        bucket.refill(now);
                        if bucket.tokens >= 1.0 {
                            bucket.tokens -= 1.0;
                            None
                        } else {
                            let missing = 1.0 - bucket.tokens;
                            Some(Duration::from_secs_f64(missing / bucket.rate))
                        }
                    }
                }
            };
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Holds every sender of this account back for `duration` (a 429's `Retry-After`).
    pub fn pause_for(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut bucket = self.lock();
        if bucket.paused_until.is_none_or(|current| current < until) {
            bucket.paused_until = Some(until);
        }
        bucket.tokens = bucket.tokens.min(1.0);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // A panic while holding this lock cannot leave the bucket inconsistent (plain
        // numbers), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn sane_rate(rate: f64) -> f64 {
    if rate.is_finite() && rate >= MIN_RATE {
        rate
    } else {
        MIN_RATE
    }
}

/// The limiters of one process, by account key. Entries live as long as some sender
/// holds them (weak references), so a finished sync leaves nothing behind.
#[derive(Debug, Default)]
pub struct RateLimits {
    limiters: Mutex<HashMap<String, Weak<RateLimiter>>>,
}

impl RateLimits {
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry shared by the whole process.
    pub fn global() -> &'static RateLimits {
        static GLOBAL: OnceLock<RateLimits> = OnceLock::new();
        GLOBAL.get_or_init(RateLimits::new)
    }

    /// The limiter of `key`, created at `rate_per_second` or updated to it.
    pub fn limiter(&self, key: &str, rate_per_second: f64) -> Arc<RateLimiter> {
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = limiters.get(key).and_then(Weak::upgrade) {
            if (existing.rate() - sane_rate(rate_per_second)).abs() > f64::EPSILON {
                existing.set_rate(rate_per_second);
            }
            return existing;
        }
        limiters.retain(|_, weak| weak.strong_count() > 0);
        let limiter = Arc::new(RateLimiter::new(rate_per_second));
        limiters.insert(key.to_string(), Arc::downgrade(&limiter));
        limiter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_the_rate() {
        let limiter = RateLimiter::new(10.0);
        let start = Instant::now();
        for _ in 0..10 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..5 {
            limiter.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(499) && elapsed <= Duration::from_millis(510),
            "{elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_everyone_back() {
        let limiter = RateLimiter::new(100.0);
        limiter.pause_for(Duration::from_secs(3));
        let start = Instant::now();
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(3));
    }

    #[test]
    fn one_limiter_per_key_while_in_use() {
        let limits = RateLimits::new();
        let a = limits.limiter("hubspot:1", 10.0);
        let b = limits.limiter("hubspot:1", 20.0);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.rate(), 20.0);
        let other = limits.limiter("hubspot:2", 10.0);
        assert!(!Arc::ptr_eq(&a, &other));
        drop((a, b));
        let fresh = limits.limiter("hubspot:1", 5.0);
        assert_eq!(fresh.rate(), 5.0);
        assert_eq!(RateLimiter::new(f64::NAN).rate(), MIN_RATE);
    }
}
