//! The fallback for missed webhooks: every `poll_interval_seconds`, compare each
//! connection's remote branch head (no fetch) with the last synced commit and queue a
//! sync when it moved — quietly: a head that failed for good is not re-run, and a
//! broken remote is checked ever less often ([`crate::retry`]).

use crate::git;
use crate::retry::{self, PollAction};
use crate::store::{GitSyncStore, PollTarget};
use crate::sync::SyncRunner;
use backflow_platform::shutdown::Shutdown;
use backflow_proto::gitsync::v1 as pb;
use std::time::Duration;

pub async fn run(store: GitSyncStore, runner: SyncRunner, interval: Duration, shutdown: Shutdown) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {},
        }
        let now = backflow_platform::now_unix_ms();
        if let Err(error) = poll_once(&store, &runner, now).await {
            tracing::warn!(%error, "poll round failed");
        }
    }
}

/// What one round did, per connection (for logs and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollRound {
    pub queued: usize,
    /// Left alone because of a back-off.
    pub waiting: usize,
    /// Head unchanged since a permanent failure.
    pub quiet: usize,
    /// Head check failed (backs off).
    pub check_failed: usize,
}

/// One round at `now_ms`.
pub async fn poll_once(
    store: &GitSyncStore,
    runner: &SyncRunner,
    now_ms: i64,
) -> Result<PollRound, crate::GitSyncError> {
    let mut round = PollRound::default();
    for target in store.poll_targets().await? {
        let PollTarget {
            connection,
            last_synced_commit,
            state,
        } = target;
        if !retry::may_check(&state, now_ms) {
            round.waiting += 1;
            continue;
        }
        let head = match runner.auth_for(&connection).await {
            Ok(access) => {
                let (url, branch, timeout) = (
                    connection.settings.repository_url.clone(),
                    connection.settings.branch.clone(),
                    runner.fetch_timeout(),
                );
                let auth = access.auth;
                tokio::task::spawn_blocking(move || git::remote_head(&url, &branch, &auth, timeout))
                    .await
                    .map_err(|error| error.to_string())
                    .and_then(|head| head.map_err(|error| error.to_string()))
                    .map(|head| (head, access.credential_version))
            }
            Err(error) => Err(error),
        };
        let (head, credential_version) = match head {
            Ok(found) => found,
            Err(error) => {
                let state = store
                    .record_head_check(&connection.id, false, now_ms)
                    .await?;
                round.check_failed += 1;
                tracing::warn!(connection_id = %connection.id, %error, failures = state.backoff_failures, retry_after_ms = state.retry_after_ms, "remote head check failed; backing off");
                continue;
            }
        };
        let state = store
            .record_head_check(&connection.id, true, now_ms)
            .await?;
        match retry::decide(
            &state,
            &last_synced_commit,
            &head,
            &credential_version,
            now_ms,
        ) {
            PollAction::Sync => {
                store
                    .trigger_sync_at(
                        &connection.workspace_id,
                        &connection.id,
                        pb::SyncTrigger::Poll,
                        &head,
                    )
                    .await?;
                round.queued += 1;
            }
            PollAction::Quiet => {
                tracing::debug!(connection_id = %connection.id, head = %head, "head failed before; not re-running");
                round.quiet += 1;
            }
            PollAction::Wait => round.waiting += 1,
            PollAction::Idle => {}
        }
    }
    Ok(round)
}
