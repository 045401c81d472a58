//! Issue 7, acceptance 5 (poll back-off): a connection whose remote cannot be checked
//! (here: the credentials service is unreachable, a transient failure) is looked at
//! again only after 1 min, then 5, 15 and 60 — the schedule in `retry.rs` — and never
//! gets a run queued meanwhile. Time is passed in, so the test waits for nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic with its message

use backflow_git_sync::app::MIGRATIONS;
use backflow_git_sync::poller::{poll_once, PollRound};
use backflow_git_sync::settings::Settings;
use backflow_git_sync::store::GitSyncStore;
use backflow_git_sync::sync::SyncRunner;
use backflow_platform::credentials_client::CredentialsClient;
use backflow_platform::db::Database;
use backflow_platform::outbox::Outbox;
use backflow_platform::testing;
use backflow_proto::gitsync::v1 as pb;
use std::time::Duration;

const MIN: i64 = 60_000;

fn settings() -> Settings {
    Settings::from_proto(Some(pb::ConnectionSettings {
        provider: pb::GitProvider::Generic as i32,
        protocol: pb::GitProtocol::Https as i32,
        repository_url: "https://git.example.invalid/acme/dbt.git".into(),
        branch: "main".into(),
        dbt_version: "1.7".into(),
        default_schema: "analytics".into(),
        project_path: String::new(),
        credential_id: "cred-1".into(),
        warehouse_source_id: "wh-1".into(),
        webhook_secret_credential_id: String::new(),
    }))
    .expect("valid settings")
}

fn checked(check_failed: usize) -> PollRound {
    PollRound {
        check_failed,
        ..PollRound::default()
    }
}

fn waiting() -> PollRound {
    PollRound {
        waiting: 1,
        ..PollRound::default()
    }
}

#[tokio::test]
async fn a_broken_remote_is_checked_ever_less_often() -> anyhow::Result<()> {
    let db = Database::connect(&testing::fresh_sqlite_url("quiet"), &MIGRATIONS).await?;
    let store = GitSyncStore::new(db.clone(), Outbox::new());
    // Nothing listens there: every credential lookup fails as unavailable.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let credentials =
        CredentialsClient::new("git_sync", &format!("http://127.0.0.1:{port}"), "svc", None)?;
    let work = std::env::temp_dir().join(format!("backflow-quiet-{}", backflow_platform::new_id()));
    let runner = SyncRunner::new(store.clone(), credentials, work, Duration::from_secs(2));
    let (connection, _) = store.create_connection("ws", "dbt", &settings()).await?;
    let runs_before = store.list_runs("ws", &connection.id, 10).await?.len();

    let t0 = backflow_platform::now_unix_ms();
    // (offset from t0, expected round): checks at 0, +1, +5, +15, +60, +60 minutes
    let script: Vec<(i64, PollRound)> = vec![
        (0, checked(1)),
        (MIN / 2, waiting()),
        (MIN, checked(1)),
        (MIN + 4 * MIN, waiting()),
        (MIN + 5 * MIN, checked(1)),
        (6 * MIN + 14 * MIN, waiting()),
        (6 * MIN + 15 * MIN, checked(1)),
        (21 * MIN + 59 * MIN, waiting()),
        (21 * MIN + 60 * MIN, checked(1)),
        (81 * MIN + 59 * MIN, waiting()),
        (81 * MIN + 60 * MIN, checked(1)),
    ];
    for (offset, expected) in script {
        let round = poll_once(&store, &runner, t0 + offset).await?;
        assert_eq!(round, expected, "at +{} s", offset / 1000);
    }
    let target = &store.poll_targets().await?[0];
    assert_eq!(target.state.backoff_failures, 6);
    // a broken remote never queues runs
    assert_eq!(
        store.list_runs("ws", &connection.id, 10).await?.len(),
        runs_before
    );

    // a settings change forgets the back-off: checked at once
    let mut changed = settings();
    changed.branch = "develop".into();
    store
        .update_settings("ws", &connection.id, &changed, 0)
        .await?;
    assert_eq!(
        poll_once(&store, &runner, t0 + 142 * MIN).await?,
        checked(1)
    );
    db.close().await;
    Ok(())
}
