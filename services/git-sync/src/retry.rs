//! What the poller does after a failure, so a broken connection stays quiet.
//!
//! A run that failed for good at head H (a dbt error, a missing branch, a refused
//! credential) is not run again by the poller until the head moves, the settings or
//! the credential change, or a user asks (manual trigger, push webhook). A transient
//! failure (network, timeout, the credentials service unreachable) is retried, but
//! only after a back-off that grows along [`BACKOFF_SCHEDULE`]; failed head checks
//! back off the same way. Pure: the store keeps a [`PollState`] per connection and
//! the poller asks [`decide`].

use std::time::Duration;

/// Waits after the 1st, 2nd, 3rd and every later consecutive transient failure.
pub const BACKOFF_SCHEDULE: [Duration; 4] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(60 * 60),
];

/// The wait after `failures` consecutive transient failures (none for 0).
pub fn backoff_after(failures: i64) -> Duration {
    match usize::try_from(failures) {
        Ok(0) | Err(_) => Duration::ZERO,
        Ok(n) => BACKOFF_SCHEDULE[(n - 1).min(BACKOFF_SCHEDULE.len() - 1)],
    }
}

/// A connection's failure memory, stored with the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollState {
    /// Head the last run failed at ('' when the last run succeeded or it is unknown).
    pub failed_commit: String,
    /// The credential's version when that run failed.
    pub failed_credential_version: String,
    /// Whether that failure was transient (then it is retried after the back-off).
    pub failure_transient: bool,
    /// Consecutive transient failures (runs and head checks).
    pub backoff_failures: i64,
    /// The poller leaves the connection alone until then.
    pub retry_after_ms: i64,
}

/// What the poller should do with one connection now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollAction {
    /// Backing off: don't even check the head.
    Wait,
    /// Nothing new: the head is the synced commit.
    Idle,
    /// The head is the one that failed for good with this credential: stay quiet.
    Quiet,
    /// Queue a sync of this head.
    Sync,
}

impl PollState {
    /// After a failed run at `commit` (empty if the run never learnt it).
    pub fn after_run_failure(
        &self,
        commit: &str,
        credential_version: &str,
        transient: bool,
        now_ms: i64,
    ) -> Self {
        let backoff_failures = if transient {
            self.backoff_failures + 1
        } else {
            0
        };
        Self {
            failed_commit: commit.to_string(),
            failed_credential_version: credential_version.to_string(),
            failure_transient: transient,
            backoff_failures,
            retry_after_ms: retry_after(now_ms, backoff_failures),
        }
    }

    /// After a head check that failed (it never queues a run, so it only backs off).
    pub fn after_head_check_failure(&self, now_ms: i64) -> Self {
        let backoff_failures = self.backoff_failures + 1;
        Self {
            backoff_failures,
            retry_after_ms: retry_after(now_ms, backoff_failures),
            ..self.clone()
        }
    }

    /// After a head check that worked: head-check back-off ends (a pending retry of a
    /// transient run failure keeps its count, so the next failure waits longer).
    pub fn after_head_check_success(&self) -> Self {
        if self.failure_transient {
            self.clone()
        } else {
            Self {
                backoff_failures: 0,
                retry_after_ms: 0,
                ..self.clone()
            }
        }
    }
}

fn retry_after(now_ms: i64, failures: i64) -> i64 {
    let wait = i64::try_from(backoff_after(failures).as_millis()).unwrap_or(i64::MAX);
    now_ms.saturating_add(wait)
}

/// Before the head check: may the poller look at this connection now?
pub fn may_check(state: &PollState, now_ms: i64) -> bool {
    now_ms >= state.retry_after_ms
}

/// After a successful head check.
pub fn decide(
    state: &PollState,
    last_synced: &str,
    head: &str,
    credential_version: &str,
    now_ms: i64,
) -> PollAction {
    if !may_check(state, now_ms) {
        return PollAction::Wait;
    }
    if head == last_synced {
        return PollAction::Idle;
    }
    let same_failure = !state.failed_commit.is_empty()
        && state.failed_commit == head
        && state.failed_credential_version == credential_version;
    if same_failure && !state.failure_transient {
        PollAction::Quiet
    } else {
        PollAction::Sync
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn backoff_follows_the_schedule() {
        let waits: Vec<u64> = (0..6).map(|n| backoff_after(n).as_secs() / 60).collect();
        assert_eq!(waits, vec![0, 1, 5, 15, 60, 60]);
    }

    #[test]
    fn a_permanent_failure_is_quiet_until_something_changes() {
        let state = PollState::default().after_run_failure("h1", "v1", false, 0);
        assert_eq!(state.retry_after_ms, 0);
        assert_eq!(decide(&state, "h0", "h1", "v1", 10), PollAction::Quiet);
        assert_eq!(
            decide(&state, "h0", "h1", "v1", 1000 * MIN),
            PollAction::Quiet
        );
        // the head moved, or the credential changed
        assert_eq!(decide(&state, "h0", "h2", "v1", 10), PollAction::Sync);
        assert_eq!(decide(&state, "h0", "h1", "v2", 10), PollAction::Sync);
        // a failure at an unknown commit does not silence every head
        let unknown = PollState::default().after_run_failure("", "v1", false, 0);
        assert_eq!(decide(&unknown, "h0", "h1", "v1", 10), PollAction::Sync);
    }

    #[test]
    fn transient_failures_back_off_then_retry_the_same_head() {
        let first = PollState::default().after_run_failure("h1", "v1", true, 0);
        assert_eq!(decide(&first, "h0", "h1", "v1", MIN - 1), PollAction::Wait);
        assert_eq!(decide(&first, "h0", "h1", "v1", MIN), PollAction::Sync);
        let second = first.after_run_failure("h1", "v1", true, MIN);
        assert_eq!(second.retry_after_ms, MIN + 5 * MIN);
        let third = second.after_run_failure("h1", "v1", true, 6 * MIN);
        assert_eq!(third.retry_after_ms, 6 * MIN + 15 * MIN);
        let fourth = third.after_run_failure("h1", "v1", true, 21 * MIN);
        let fifth = fourth.after_run_failure("h1", "v1", true, 81 * MIN);
        assert_eq!(fourth.retry_after_ms, 81 * MIN);
        assert_eq!(fifth.retry_after_ms, 141 * MIN);
        // a permanent failure afterwards ends the back-off and silences the head
        let permanent = fifth.after_run_failure("h1", "v1", false, 141 * MIN);
        assert_eq!(permanent.backoff_failures, 0);
        assert_eq!(
            decide(&permanent, "h0", "h1", "v1", 141 * MIN),
            PollAction::Quiet
        );
    }

    #[test]
    fn failed_head_checks_back_off_and_a_good_one_resets() {
        let state = PollState::default().after_head_check_failure(0);
        assert!(!may_check(&state, MIN - 1));
        assert!(may_check(&state, MIN));
        let state = state.after_head_check_failure(MIN);
        assert_eq!(state.retry_after_ms, 6 * MIN);
        let ok = state.after_head_check_success();
        assert_eq!((ok.backoff_failures, ok.retry_after_ms), (0, 0));
        assert_eq!(decide(&ok, "h0", "h0", "v1", 0), PollAction::Idle);
    }
}
