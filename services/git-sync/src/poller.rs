//! The fallback for missed webhooks: every `poll_interval_seconds`, compare each
//! connection's remote branch head (no fetch) with the last synced commit and queue a
//! sync when it moved.

use crate::git;
use crate::store::GitSyncStore;
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
        if let Err(error) = poll_once(&store, &runner).await {
            tracing::warn!(%error, "poll round failed");
        }
    }
}

/// One round; returns how many syncs were queued.
pub async fn poll_once(
    store: &GitSyncStore,
    runner: &SyncRunner,
) -> Result<usize, crate::GitSyncError> {
    let mut queued = 0;
    for (connection, last_synced) in store.poll_targets().await? {
        let auth = match runner.auth_for(&connection).await {
            Ok(auth) => auth,
            Err(error) => {
                tracing::warn!(connection_id = %connection.id, %error, "poll skipped");
                continue;
            }
        };
        let (url, branch, timeout) = (
            connection.settings.repository_url.clone(),
            connection.settings.branch.clone(),
            runner.fetch_timeout(),
        );
        let head =
            tokio::task::spawn_blocking(move || git::remote_head(&url, &branch, &auth, timeout))
                .await;
        match head {
            Ok(Ok(head)) if head != last_synced => {
                store
                    .trigger_sync(
                        &connection.workspace_id,
                        &connection.id,
                        pb::SyncTrigger::Poll,
                    )
                    .await?;
                queued += 1;
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(connection_id = %connection.id, %error, "remote head check failed")
            }
            Err(error) => {
                tracing::warn!(connection_id = %connection.id, %error, "remote head task failed")
            }
        }
    }
    Ok(queued)
}
